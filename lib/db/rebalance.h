/*
 * rebalance.h - vm-rebalance's plan: the global approach to balance.
 *
 * From what the VMDB holds (every host's reserved capacity, kept by the
 * triggers, and its last poll), it plans a short list of live moves that
 * lower the spread the policy cares about; vm-rebalance carries them out
 * with vm-migrate's library call (migrate.h).  Reads the VMDB only.
 *
 * The metric per host: memory use (reserved / what the host may give)
 * for least-load and random2; the session count for least-sessions and
 * round-robin; sticky balances as its fallback does.  pack concentrates
 * on purpose and has nothing to balance (2).  The spread is the fullest
 * host's value minus the mean, over the hosts that can take sessions
 * (active, up, freshly polled).
 *
 * The plan is greedy, one move at a time, each the one that lowers the
 * sum of squared deviations (the standard deviation, as OpenStack
 * Watcher's workload_stabilization) the most, from the fullest
 * host to one of the emptiest that passes every filter.  Hysteresis,
 * so hosts do not ping-pong:
 *   - nothing moves unless the spread exceeds threshold;
 *   - a move must leave its destination below where its source was
 *     (so the same pair never swaps back), and gain at least min_gain;
 *   - a session moved within rest seconds stays (oVirt moves one VM per
 *     cluster per interval); at most max_moves per run.
 * Sessions that are not running desktops (starting, moving, a first
 * boot) never move.
 */
#ifndef VDI_REBALANCE_H
#define VDI_REBALANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "err.h"
#include "sched.h"

enum vdi_rebalance_metric { VDI_METRIC_MEMORY, VDI_METRIC_SESSIONS };

/* The metric a policy balances: 0, or 2 (VDI_EUSAGE) for pack. */
int vdi_rebalance_metric(enum vdi_policy p, enum vdi_rebalance_metric *m, struct vdi_err *err);

/* What the pure planner is given (the VMDB loader fills these). */
struct vdi_rebalance_host {
	int64_t id;
	char *name;
	char *pool;
	char **tags;                  /* NULL-terminated, or NULL */
	bool eligible;                /* active, up, fresh: counts in the spread and may take sessions */
	int64_t mem_cap, vcpu_cap;    /* what it may give (sched.h) */
	int64_t max_sessions;         /* -1: no limit */
	int64_t mem_used, vcpus_used, sessions;
	double before, after;         /* out: its metric before and after the plan */
};

struct vdi_rebalance_session {
	int64_t id;
	char *user;
	size_t host;                  /* index into the hosts */
	char *pool;
	char **tags;                  /* the user VM's, NULL-terminated, or NULL */
	int64_t mem, vcpus;
	bool movable;                 /* a running desktop, not moved within rest, not excluded */
};

struct vdi_rebalance_move {
	int64_t session;
	const char *user;             /* borrowed from the plan's sessions */
	size_t from, to;              /* indexes into the plan's hosts */
	int64_t mem;
	double spread_after;
};

struct vdi_rebalance_opts {
	enum vdi_policy policy;
	int64_t max_moves;            /* at most this many moves */
	double threshold;             /* act only above this spread (points: percent, or sessions) */
	double min_gain;              /* a move must lower the spread's square sum by this much (0: any) */
	int64_t rest;                 /* seconds a moved session stays where it went */
	int64_t now, max_age;         /* seconds; max_age: poll_max_age */
	const int64_t *exclude;       /* sessions not to move (failed earlier) */
	size_t nexclude;
};

struct vdi_rebalance_plan {
	enum vdi_rebalance_metric metric;
	double spread_before, spread_after;
	struct vdi_rebalance_host *hosts;
	size_t nhosts;
	struct vdi_rebalance_session *sessions;
	size_t nsessions;
	struct vdi_rebalance_move *moves;
	size_t nmoves;
	char why[200];                /* why it stopped: balanced, no move helps, max_moves */
};

/* Plan from the VMDB (one read transaction).  Clear p after. */
int vdi_rebalance_plan(struct vdi_db *db, const struct vdi_rebalance_opts *o, struct vdi_rebalance_plan *p,
		       struct vdi_err *err);
/* The pure planner, on p->hosts and p->sessions as filled: fills the rest of p. */
void vdi_rebalance_compute(struct vdi_rebalance_plan *p, const struct vdi_rebalance_opts *o);
void vdi_rebalance_plan_clear(struct vdi_rebalance_plan *p);

/*
 * One vm-rebalance at a time per VMDB: the lock file DB.rebalance.lock
 * beside its real path.  A second run does not race the first for the
 * same sessions: it waits until the first is done (*waited says so), then
 * plans on the hosts as the first left them, which are level within the
 * threshold, so it usually moves nothing.  1: locked (*fd holds it until
 * closed); -1 with err.
 */
int vdi_rebalance_lock(struct vdi_db *db, void (*waiting)(void *ctx), void *ctx, int *fd, struct vdi_err *err);

#endif
