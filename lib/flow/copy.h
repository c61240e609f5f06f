/*
 * copy.h - vm-copy's workflow: a user VM from a master (the paper's VMCM).
 *
 * vdi_copy() makes one user's VM: the master is named or chosen by OS and
 * apps; the 'creating' claim is committed before any volume is made (rule
 * 2); leftovers of a copy that died are deleted; then the thin qcow2
 * overlay on the master and the cloud-init seed are made, and the user VM
 * is ready, or preparing when its master prepares itself on first boot
 * (then prepare.h runs that boot).  Any failure undoes the volumes and
 * the claim.  A user VM whose first boot failed is made again from its
 * master, as it was asked for, and is preparing again.  With -n (vdi_db_dry_run)
 * everything up to the claim runs (and is rolled back), nothing is made.
 *
 * vdi_copy_rm() removes a user VM; with force its session is ended for
 * real first (domain destroyed, overlay deleted: reaper.h), never only in
 * the VMDB, so no disk is deleted under a running guest.
 */
#ifndef VDI_COPY_H
#define VDI_COPY_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conns.h"
#include "db.h"
#include "err.h"
#include "request.h"

/* One user's request (borrowed strings). */
struct vdi_copy_req {
	const char *user;
	const char *master;        /* by name, or NULL: chosen by os and apps */
	const char *os;
	char *const *apps;
	size_t napps;
	int64_t mem, vcpus, disk;  /* <= 0: the master's */
	int64_t home;              /* a home disk of this size; 0: the master's default (none if it has none) */
};

struct vdi_copy_opts {
	const char *host;          /* the host to reach the pool through; NULL: any that sees it */
	char *const *tags;         /* tags the user VM needs of hosts (borrowed) */
	size_t ntags;
	int64_t expires;           /* Unix time; 0: never */
	bool force;                /* vdi_copy_rm: end a live session first */
	bool purge_home;           /* vdi_copy_rm: delete the user's home disk too (else it is kept) */
	int64_t home_max;          /* the largest home disk (vdi.conf home_max); 0: no limit */
	const char *home_mount;    /* where Linux guests mount it (vdi.conf home_mount) */
	struct vdi_conns *conns;   /* borrowed */
	const volatile sig_atomic_t *interrupted; /* set by a signal handler: stop and undo */
};

/* What vdi_copy_rm did with the user's home disk. */
enum vdi_copy_home_rm {
	VDI_COPY_HOME_NONE,        /* the user had none */
	VDI_COPY_HOME_KEPT,        /* kept, for the user's next user VM */
	VDI_COPY_HOME_PURGED,      /* deleted with the user VM */
	VDI_COPY_HOME_PURGED_ONLY, /* deleted: the user had no user VM, only the home disk they kept */
};

/* What was made; owns its strings (vdi_copy_result_clear). */
struct vdi_copy_result {
	char *master, *volume;
	int64_t disk, mem, vcpus;
	char **apps_added;         /* requested apps the master lacks, put in the seed */
	size_t napps_added;
	bool prepare;              /* it is preparing: its first boot comes next (prepare.h) */
	bool again;                /* a failed user VM made again from its master */
	int64_t home;              /* its home disk's size (0: none) */
	bool home_kept;            /* the user's kept home disk was attached again, not made */
	enum vdi_copy_home_rm home_rm; /* vdi_copy_rm: what became of the home disk */
	char *updated_from;        /* vdi_copy_update: the master it left */
	bool was_warm;             /* vdi_copy_update: it had a warm image (made warm again next) */
};

int vdi_copy(struct vdi_db *db, const struct vdi_copy_req *q, const struct vdi_copy_opts *o,
	     struct vdi_copy_result *res, struct vdi_err *err);
void vdi_copy_result_clear(struct vdi_copy_result *res);

/*
 * Remove USER's user VM.  Its home disk is kept (home.h) unless
 * o->purge_home; *home says what became of it.  With o->purge_home, a
 * user with no user VM but a kept home disk has that deleted.
 */
int vdi_copy_rm(struct vdi_db *db, const char *user, const struct vdi_copy_opts *o, enum vdi_copy_home_rm *home,
		struct vdi_err *err);

/*
 * Update USER's user VM to the master that replaces its own (master.h:
 * vdi_master_replace): when it has no session, a new system disk and seed
 * from the new master, the same row (user, hostname, MAC) and the same
 * home disk; then it prepares again when the new master does.  An update
 * that a dead process left half way is finished.  Conflict (5) while a
 * session runs (the next run does it); not found (3) when it is up to date.
 */
int vdi_copy_update(struct vdi_db *db, const char *user, const struct vdi_copy_opts *o,
		    struct vdi_copy_result *res, struct vdi_err *err);

/*
 * Grow USER's home disk to size (never shrink; not during a session).
 * The guest grows its file system at its next boot (the seed's bootcmd).
 */
int vdi_copy_home_resize(struct vdi_db *db, const char *user, int64_t size, const struct vdi_copy_opts *o,
			 struct vdi_err *err);

/*
 * Approve a desktop request of the web page (request.h): the user VM is made
 * as vdi_copy makes it, with the request's master and sizes, and the
 * request is recorded done, or failed with the reason (a temporary failure,
 * 75, leaves it pending for the next approval; -n records nothing).  What
 * no host could ever hold is refused with VDI_R_NEVER_FITS (4).
 */
int vdi_copy_request(struct vdi_db *db, const struct vdi_request *r, const struct vdi_copy_opts *o,
		     struct vdi_copy_result *res, struct vdi_err *err);

/*
 * A batch: vdi_copy (or, with rm, vdi_copy_rm) of every request, at most
 * `parallel` at once, so the libvirt round trips of one user (volume
 * create, seed upload) overlap another's.  Each worker has its own VMDB
 * handle and connection cache (o->conns is not used).  done() is called
 * once per request, in input order, as soon as it and all before it are
 * done: with res on success (the callee may keep it: it is not cleared
 * when done() sets *keep), or with err.  A user named twice is made once:
 * the later requests fail (5) without touching anything.
 */
struct vdi_copy_batch {
	struct vdi_db *db;         /* the caller's: each worker reopens it */
	int64_t timeout_ms;        /* per host connect */
	int parallel;
	bool rm;
	bool update;               /* vdi_copy_update of each request's user */
	void (*done)(void *ctx, size_t i, struct vdi_copy_result *res, const struct vdi_err *err, bool *keep);
	void *ctx;
};
void vdi_copy_many(const struct vdi_copy_req *reqs, size_t n, const struct vdi_copy_opts *o,
		   const struct vdi_copy_batch *b);

#endif
