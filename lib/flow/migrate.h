/*
 * migrate.h - moving a running desktop live to another host.
 *
 * vdi_migrate() moves one session in three steps, each committed before
 * the next slow one (rule 2):
 *   1. reserve: in one BEGIN IMMEDIATE, the destination is chosen (the
 *      scheduler with every filter, the session's own host excluded; or by
 *      hand) and the session becomes 'migrating' with it and this
 *      process's pid: its room is now reserved on both hosts (the
 *      triggers on sessions).                         [step migrate-claimed]
 *   2. move: a managed direct live migration from this process
 *      (virDomainMigrate3 with VIR_MIGRATE_LIVE; the domain stays
 *      transient), with the destination's migration URI, its SPICE
 *      address as the graphics URI (a connected viewer follows: SPICE
 *      seamless migration), and the domain XML made fit for it (SPICE
 *      listen address, network).  A watchdog aborts the job past
 *      timeout_ms; the desktop then stays where it was.  [migrate-running]
 *   3. record: where the domain runs now.  Moved: host_id becomes the
 *      destination and the source's share is given back in the same
 *      transaction; not moved: the destination's reservation is given
 *      back.                                             [migrate-done]
 * A process killed anywhere leaves a session 'migrating' whose pid is
 * dead; vdi_migrate_settle() (vm-reap, the next vm-migrate) asks both
 * hosts where its domain runs and makes it so: a domain running on the
 * destination wins (the paused source is destroyed), else the source
 * is kept (resumed if paused; an unfinished incoming domain on the
 * destination is destroyed).  While a migration job still runs on
 * either host it waits (75).  The domain runs on one host, and the VMDB
 * names it.
 *
 * No VMDB transaction is held across a libvirt call.  The library never
 * prints: results and errors go to the caller's structs.
 */
#ifndef VDI_MIGRATE_H
#define VDI_MIGRATE_H

#include <stdbool.h>
#include <stdint.h>

#include "conns.h"
#include "db.h"
#include "err.h"
#include "sched.h"

struct vdi_migrate_opts {
	struct vdi_conns *conns;   /* borrowed (the batch calls give each worker its own) */
	const char *to;            /* the destination chosen by hand; NULL: the scheduler's pick */
	bool force;                /* with to: past the filters (never onto its own host) */
	enum vdi_policy policy, fallback;
	int64_t max_age;           /* poll_max_age, seconds */
	uint64_t *rng;             /* random2 */
	int64_t timeout_ms;        /* migrate_timeout: abort the job past it (0: no limit) */
	bool unsafe;               /* migrate_unsafe: the pool is shared storage libvirt cannot recognise */
	int64_t bandwidth;         /* migrate_bandwidth: MiB/s (0: no limit) */
};

struct vdi_migrate_result {
	int64_t session;
	char *user, *from, *to;    /* to: where it runs now (with -n: where it would go) */
	char why[256];             /* why that destination */
	int64_t ms;                /* how long the move took */
	int64_t port;              /* its SPICE port where it runs now */
	bool moved;
};

/*
 * Move session id.  0: moved (or with -n: planned).  -1 with err:
 * 3 no such session, 4 no host can take it, 5 it is not a running
 * desktop or another process moves it, 75 a host did not answer, 1 the
 * migration failed or timed out (it stays where it was: r->to is NULL).
 * r is filled as far as it got either way; clear it.
 */
int vdi_migrate(struct vdi_db *db, int64_t id, const struct vdi_migrate_opts *o, struct vdi_migrate_result *r,
		struct vdi_err *err);
void vdi_migrate_result_clear(struct vdi_migrate_result *r);

/*
 * Finish or undo the move of session id, left migrating by a process
 * that died.  0: settled (*moved: it runs on the destination now), 1: it
 * was not migrating, -1 with err (5 its mover is alive; 75 a host did
 * not answer, or a migration job still runs: try later).
 */
int vdi_migrate_settle(struct vdi_db *db, struct vdi_conns *conns, int64_t id, bool *moved, struct vdi_err *err);

/*
 * A batch of moves, migrate_parallel in flight: each worker has its own
 * VMDB handle and connections.  to[i] (to NULL, or to[i] NULL: o->to)
 * names each move's destination.  done() is told each result in input
 * order, under a lock; e is NULL when it moved.
 */
struct vdi_migrate_batch {
	struct vdi_db *db;         /* the caller's: each worker reopens it */
	int64_t timeout_ms;        /* per host connect */
	int parallel;
	void (*done)(void *ctx, size_t i, const struct vdi_migrate_result *r, const struct vdi_err *e);
	void *ctx;
};
void vdi_migrate_many(const int64_t *ids, char *const *to, size_t n, const struct vdi_migrate_opts *o,
		      const struct vdi_migrate_batch *b);

/*
 * Move every running desktop off host (drain --migrate, maintenance
 * --migrate), as a batch; each result goes to b->done.  *left: the
 * sessions that are not ended still there after it (those that could not
 * move, and those not running: assigned, starting, a first boot).  The
 * caller stops new placements there first.  -1 with err: 3 no such host,
 * or the VMDB failed.
 */
int vdi_migrate_away(struct vdi_db *db, const char *host, const struct vdi_migrate_opts *o,
		     const struct vdi_migrate_batch *b, int64_t *left, struct vdi_err *err);

/*
 * Set host's admin state ("draining", "maintenance", or "active" to take it
 * back), the whole sequence of vm-hosts drain, maintenance and undrain.
 * With move (b set), new sessions stop first (draining), its running
 * desktops move away (vdi_migrate_away: each move's result goes to
 * b->done), and only then is maintenance marked (refused while sessions
 * stay, 5, unless force).  *left: sessions that stay.  With -n the moves
 * are planned and no state changes.  -1 with err: the host is unknown, or
 * a mark failed.
 */
int vdi_migrate_drain(struct vdi_db *db, const char *host, const char *admin, bool force,
		      const struct vdi_migrate_opts *o, const struct vdi_migrate_batch *b, int64_t *left,
		      struct vdi_err *err);

/* The settings of cfg that moves use (placement policy, poll_max_age, migrate_timeout, migrate_unsafe). */
struct vdi_config;
void vdi_migrate_opts_config(struct vdi_migrate_opts *o, const struct vdi_config *cfg);

#endif
