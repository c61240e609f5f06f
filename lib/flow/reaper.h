/*
 * reaper.h - vm-reap's executor: ending sessions for real, and the audit.
 *
 * vdi_reaper_end() is the one way a session with libvirt objects ends:
 * stopping is committed first (rule 2), then its domain is destroyed and
 * its overlay deleted, then it is ended with its reason, which frees its
 * host's capacity.  vm-reap, vm-hosts rm --force and vm-copy --rm --force
 * all end sessions through it (and so will the event watcher).
 *
 * vdi_reaper_run() is one whole vm-reap: it reads the live sessions, asks
 * the hosts that have any (every host with --orphans) for their domains,
 * in parallel and bounded, plans with reap.h and carries the plan out,
 * several sessions at once (the items of one session in order).  Each
 * planned item is then told to o->report, in plan order, with its error
 * if it failed.
 * It holds no VMDB transaction across a libvirt call.
 */
#ifndef VDI_REAPER_H
#define VDI_REAPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "conns.h"
#include "db.h"
#include "err.h"
#include "reap.h"
#include "session.h"

/*
 * End session s (as read by the caller): expect is the state the caller
 * saw (NULL: any that is not ended).  0: ended; 1: it moved on meanwhile
 * and was left alone; -1: error (5 when a live vm-start holds it).
 * detail (NULL: none) goes into the session-end event: what was seen.
 */
int vdi_reaper_end(struct vdi_db *db, struct vdi_conns *cs, const struct vdi_session *s, const char *expect,
		   const char *reason, const char *detail, struct vdi_err *err);

struct vdi_reaper_opts {
	struct vdi_reap_opts plan;   /* TTLs, max_age, orphans; users and ids to end (borrowed) */
	char *const *hosts;          /* end every session on these hosts (names, borrowed) */
	size_t nhosts;
	bool expired;                /* also delete user VMs past their expiry */
	int64_t events_keep;         /* seconds events are kept (older ones deleted); 0: forever */
	int64_t timeout_ms;          /* per host */
	int parallel;                /* hosts asked at once */
	struct vdi_conns *conns;     /* borrowed; for the plan's items too when act_parallel <= 1 */
	/*
	 * The plan's items on act_parallel sessions at once, act_parallel_host
	 * of them on one host; each worker reopens db and has its own
	 * connections.  act_parallel 1 (or 0): one at a time on db.
	 */
	int act_parallel, act_parallel_host;
	/* Each item: what, on what, why, and e (NULL: done, or planned with -n). */
	void (*report)(void *ctx, const char *action, const char *object, const char *reason,
		       const struct vdi_err *e);
	void *ctx;
};

/*
 * One reap.  -1 with err: nothing was done (a named user, session or host
 * does not exist, the VMDB failed).  0: *worst is the worst code of the
 * items (75 when a host did not answer and its sessions were left alone).
 */
int vdi_reaper_run(struct vdi_db *db, const struct vdi_reaper_opts *o, int *worst, struct vdi_err *err);
/* The settings of cfg that a reap uses: TTLs, timeouts, how many at once (what it ends is the caller's). */
void vdi_reaper_opts_config(struct vdi_reaper_opts *o, const struct vdi_config *cfg);

/*
 * One vm-reap at a time per VMDB (vdi_db_lock "reap": the file DB.reap.lock beside an
 * SQLite VMDB's real path, never through a symlink; an advisory lock on PostgreSQL).
 * 1 locked (*fd, if not -1, holds it), 0 another run holds it.
 */
int vdi_reaper_lock(struct vdi_db *db, int *fd, struct vdi_err *err);

/*
 * Remove host name.  Its sessions that are not ended refuse it (5) unless
 * force; with force they are ended for real (domains destroyed, overlays
 * deleted) first, and when the host cannot be reached it is refused (75):
 * its guests may still run on their disks, so they are kept until the
 * host answers or is declared lost.  With -n (vdi_db_dry_run) it checks and changes nothing.
 */
int vdi_reaper_host_rm(struct vdi_db *db, struct vdi_conns *cs, const char *name, bool force,
		       struct vdi_err *err);

/*
 * Fencing: a host that does not answer is declared off, so what it ran
 * can be cleaned up (vdi-tools(7), FENCING).  With a fence agent
 * (command: an absolute path, run as COMMAND HOST URI with no shell, given
 * timeout_ms), the agent turns it off first and must exit 0; without one
 * the administrator vouches.  Then the host must not answer (5 if it does:
 * it is not off), and vdi_host_fence() records it: sessions end
 * host-lost, domains are forgotten.  Last, the overlays of every ended
 * session of that host still in its pool are deleted through another host
 * of the pool (left, and counted, when none answers: vm-reap --orphans
 * deletes them later).  With -n it checks, runs no agent, changes nothing.
 */
struct vdi_fence_opts {
	const char *command;     /* NULL or "": no agent */
	int64_t timeout_ms;      /* the agent's */
	struct vdi_conns *conns; /* borrowed: the host is asked through it, the pool through another */
};
struct vdi_fence_result {
	bool agent;              /* the agent ran and said it is off */
	int64_t ended;           /* sessions ended host-lost now */
	size_t deleted, left;    /* overlays deleted; left for vm-reap --orphans */
};
int vdi_reaper_fence(struct vdi_db *db, const char *name, const struct vdi_fence_opts *o,
		     struct vdi_fence_result *res, struct vdi_err *err);

#endif
