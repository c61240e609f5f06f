/*
 * reap.h - what vm-reap should do, decided from the VMDB's sessions and
 * what libvirt shows of each host (agentless: the domain lists with our
 * metadata).  Pure: no I/O; reaper.h carries out the plan.
 *
 * The orphan audit never deletes an overlay that a guest may have open:
 * a pool's overlays are judged only when every host that sees the pool
 * answered, and an overlay whose session's domain runs anywhere is kept
 * (the domain is destroyed first; the overlay goes in a later run).
 */
#ifndef VDI_REAP_H
#define VDI_REAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "report.h"
#include "session.h"

enum vdi_reap_action {
	VDI_REAP_END,            /* destroy its domain, delete its overlay, end it with reason */
	VDI_REAP_END_DB,         /* end it in the VMDB only (its host is lost) */
	VDI_REAP_FINISH_START,   /* its domain runs: record it running */
	VDI_REAP_DESTROY_DOMAIN, /* ours, but no session that is not ended owns it */
	VDI_REAP_DELETE_OVERLAY, /* a session overlay, warm layer or image in the pool that nothing owns */
	VDI_REAP_WAIT,           /* its host does not answer: left alone for now */
	VDI_REAP_SETTLE,         /* left migrating by a process that died: finish or undo the move (migrate.h) */
};

struct vdi_reap_item {
	enum vdi_reap_action action;
	int64_t session;         /* 0 for domains and volumes */
	size_t host;             /* index into the hosts given */
	const char *reason;      /* static: poweroff, expired, admin, host-lost, failed, orphan */
	char object[160];        /* what is acted on, for people */
};

struct vdi_reap_host {
	int64_t id;
	const char *name;
	const char *pool;                /* the pool it sees */
	int64_t down_since;              /* from the VMDB; 0: not known to be down */
	bool fenced;                     /* vouched off: runs nothing of ours, blocks no pool audit */
	const struct vdi_node_report *rep; /* NULL: not asked */
	char *const *volumes;            /* for --orphans: the pool's volume names, NULL-terminated */
};

struct vdi_reap_opts {
	int64_t now;                     /* seconds */
	int64_t assign_ttl, start_ttl, stop_ttl, host_lost_after, max_age; /* seconds; max_age 0: none */
	int64_t prepare_timeout;         /* seconds a first boot may run (0: no limit); max_age is not for them */
	/*
	 * Viewers, as vm-watch recorded them (session.h), trusted only while
	 * the watch of the session's host is live (affirmed within
	 * watch_stale seconds), and timed from no earlier than the watch's
	 * start (events before it may have been missed).  0: no limit.
	 */
	int64_t disconnect_timeout;      /* seconds a desktop may have no viewer: "disconnected" */
	int64_t connect_timeout;         /* seconds a started desktop may wait for one: "never-connected" */
	int64_t watch_stale;
	bool orphans;
	/* end now, reason admin: sessions of these users, these ids, on these hosts */
	char *const *users;
	size_t nusers;
	const int64_t *ids;
	size_t nids;
	const int64_t *hosts;
	size_t nhosts;
	/* --orphans: the warm builds whose files are user VMs' images (the live sessions' are seen in ss) */
	const int64_t *warm_keep;
	size_t nwarm_keep;
	/* Is the claim on a session alive (db.h: vdi_claim_alive)? */
	bool (*claim_alive)(int64_t pid, const char *owner, int64_t lease);
};

/* The plan for the live sessions ss on hosts hs; *items is the caller's to free. */
int vdi_reap_plan(const struct vdi_session *ss, size_t nss, const struct vdi_reap_host *hs, size_t nhs,
		  const struct vdi_reap_opts *o, struct vdi_reap_item **items, size_t *nitems);

const char *vdi_reap_action_name(enum vdi_reap_action a);

#endif
