/*
 * start.h - vm-start's workflow: a user's session as a running desktop.
 *
 * vdi_start() takes one user (or one session, by id) to running:
 *   1. no session that is not ended: assign one (assign.h);
 *   2. claim it: state starting, with this pid, the names of what will be
 *      made and a fresh display password, committed before any libvirt
 *      call (rule 2);
 *   3. adopt a domain of ours by that name (a starter killed after it
 *      started the domain), else make the overlay and the transient
 *      domain: restored from the user VM's warm image when it has one
 *      (o->warm), else booted;
 *   4. record it running, only while the claim is still ours (a vm-reap
 *      that ended it meanwhile wins, and what was made is undone).
 * When the host fails, what was made is undone, the session ends
 * "failed" (its capacity is freed) and the next-best host is tried, up to
 * retries more hosts.  When no other host fits, the host's own failure is
 * returned (exit 1), not "no host" (exit 4).
 *
 * Callable from a CLI, a CGI or a daemon: it prints nothing; each failed
 * host that is retried is told to o->host_failed.
 */
#ifndef VDI_START_H
#define VDI_START_H

#include <stdbool.h>
#include <stdint.h>

#include "assign.h"
#include "batch.h"
#include "conns.h"
#include "db.h"
#include "domlog.h"
#include "err.h"
#include "session.h"

struct vdi_start_opts {
	struct vdi_assign_opts assign;  /* how a host is picked (exclude is the workflow's) */
	int64_t retries;                /* other hosts to try after one fails */
	struct vdi_conns *conns;        /* borrowed */
	/* Told each host failure after which another host is tried (may be NULL; may be called from any thread). */
	void (*host_failed)(void *ctx, const struct vdi_err *e);
	void *ctx;
	struct vdi_gate *host_gate;     /* storm control: starts in flight per host (NULL: no limit) */
	/*
	 * Storm control across processes and brokers: at most this many
	 * sessions 'starting' on one host in the VMDB (0: no limit); a start
	 * waits for a slot up to start_wait_ms, then fails temporary (75).
	 */
	int64_t per_host;
	int64_t start_wait_ms;
	const char *domain_type;        /* auto, kvm, qemu (NULL: auto) */
	const char *mac_prefix;         /* of every NIC's MAC (NULL: the default) */
	const char *console_log_dir;    /* on the host, for DIR/DOMAIN.console.log (NULL: no serial log) */
	struct vdi_domlog_where logs;   /* where this machine reads them, to quote a guest that stopped */
	/*
	 * > 0: a session that runs already gets a fresh display ticket of this
	 * many seconds, as its password may have been spent (vm-start --vv,
	 * --show-password); 0: it is returned as it is.
	 */
	int64_t ticket_ttl;
	/*
	 * Warm desktops (vdi.conf warm): a desktop whose user VM has a warm
	 * image is restored from it (warm.h) rather than booted.  A restore
	 * that fails boots instead, and is told to warm_fallback (may be NULL)
	 * with why, recorded as event session-warm-fallback; the user VM is
	 * then cold until its next warm build.
	 */
	bool warm;
	void (*warm_fallback)(void *ctx, const struct vdi_err *e);
	/*
	 * The browser console (vdi.conf console): a desktop gets a VNC display
	 * beside SPICE, with a password of its own that only vm-console uses.
	 */
	bool console;
};

/* VNC passwords are at most 8 characters (the relay, not the password, keeps strangers out). */
#define VDI_CONSOLE_PASSWORD 8

/*
 * Start user's session (user != NULL), or session id (user == NULL).
 * On success *s (cleared first; the caller clears it) is the running
 * session, with its display address, port and password.
 */
int vdi_start(struct vdi_db *db, const char *user, int64_t id, const struct vdi_start_opts *o,
	      struct vdi_session *s, struct vdi_err *err);

/*
 * A batch: users (or, with users NULL, session ids), n of them, started
 * with at most b->parallel in flight overall and b->per_host on one host
 * (as Horizon's "max concurrent power operations").  Each worker thread
 * has its own VMDB handle and libvirt connections (o->conns is not used).
 * The same user twice is started once.  Users without a session are
 * assigned first, one after another in input order, so placement does not
 * depend on which thread runs first.  Rules 1 and 2 hold per start: no
 * write transaction across a libvirt call, state committed before each
 * slow step.  b->done is told each result in input order, as soon as it
 * and all before it are known (s NULL and e set on failure), under a lock.
 */
struct vdi_start_batch {
	struct vdi_db *db;              /* the caller's: users without a session are assigned on it first, in */
	                                /* order; each worker reopens it */
	int64_t timeout_ms;             /* per host connect */
	int parallel, per_host;
	void (*done)(void *ctx, size_t i, const struct vdi_session *s, const struct vdi_err *e);
	void *ctx;
};
void vdi_start_many(char *const *users, const int64_t *ids, size_t n, const struct vdi_start_opts *o,
		    const struct vdi_start_batch *b);

/* The settings of cfg that starts use, the placement policy included (a -p overrides it after). */
struct vdi_config;
void vdi_start_opts_config(struct vdi_start_opts *o, const struct vdi_config *cfg);

/*
 * Wait up to timeout_ms for running session s's guest to have an address
 * (vdi_domain_address: DHCP lease or ARP, no agent), record it in the
 * VMDB and in s->address.  0 found; 75 not within the time; -1 error.
 */
int vdi_start_address(struct vdi_db *db, struct vdi_conns *cs, struct vdi_session *s, int64_t timeout_ms,
		      struct vdi_err *err);
/* The .rdp file for s (new string): its address and its user, for mstsc, xfreerdp, Remmina. */
char *vdi_start_rdp(const struct vdi_session *s);
/* Write DIR/USER.rdp privately (0600): 5 when something not ours is in the way. */
int vdi_start_write_rdp(const struct vdi_session *s, const char *dir, struct vdi_err *err);

/* A fresh display password of len - 1 characters (unambiguous letters and digits) in buf. */
int vdi_start_password(char *buf, size_t len, struct vdi_err *err);
/* The virt-viewer file for a running session (new string): SPICE, host, port, password. */
char *vdi_start_vv(const struct vdi_session *s);
/* Write DIR/USER.vv privately (file.h): 5 when something not ours is in the way. */
int vdi_start_write_vv(const struct vdi_session *s, const char *dir, struct vdi_err *err);

/*
 * Display tickets (vm-connect's Connect, vm-start on a desktop that runs
 * already): running session s on conn gets a fresh password valid for ttl
 * seconds, with connected='keep' (s->display_password is updated).  Spend:
 * the password is replaced by a fresh one that expired already, so the
 * viewer that is in stays and a replay of the same .vv is refused; vm-watch
 * calls it once a session's first viewer got in.
 */
int vdi_start_ticket(struct vdi_db *db, virConnectPtr conn, struct vdi_session *s, int64_t ttl,
		     struct vdi_err *err);
int vdi_start_ticket_spend(struct vdi_db *db, virConnectPtr conn, const struct vdi_session *s,
			   struct vdi_err *err);

/*
 * --rdp: wait (at most timeout_ms) for the address of user's running desktop,
 * record it, and write DIR/USER.rdp.  0: written; 1: its master serves no
 * RDP, nothing written (err says so, for a warning); -1 with err.
 */
int vdi_start_rdp_wait(struct vdi_db *db, struct vdi_conns *cs, const char *user, const char *dir,
		       int64_t timeout_ms, struct vdi_err *err);

/* The address a host's sessions listen on: its display address, else its URI's host, else 127.0.0.1. */
void vdi_start_listen(const char *display, const char *uri, char *addr, size_t len);

#endif
