/*
 * uservm.h - user VMs in the VMDB: one per user, a thin clone of a master.
 *
 * Made in two steps like masters (rule 2): vdi_uservm_claim() commits a
 * 'creating' row with the creating process's pid; the volumes are made;
 * vdi_uservm_made() marks it ready, or preparing when its master prepares
 * itself on first boot (prepare.h: preparing -> ready or failed).  A claim whose process died is
 * taken over by the next vm-copy of that user, which deletes the partial
 * volumes first.  Volumes: user-USER.qcow2 (disk), user-USER-seed.iso.
 */
#ifndef VDI_USERVM_H
#define VDI_USERVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "err.h"
#include "home.h"

/* What a copy asks for: borrowed strings, none owned. */
struct vdi_uservm_spec {
	const char *user, *pool, *hostname;
	int64_t master_id, mem, vcpus, disk, expires; /* expires 0: never */
	char *const *tags;
	size_t ntags;
	char *const *apps;  /* requested apps the master lacks (in the seed) */
	size_t napps;
	int64_t home;       /* a home disk of this size (0: none, unless the user kept one: home.h) */
};

/* A user VM as the VMDB holds it: owns its strings and arrays (vdi_uservm_clear). */
struct vdi_uservm {
	int64_t id;
	char *user, *state, *master, *pool, *volume, *seed, *hostname;
	int64_t master_id, mem, vcpus, disk, expires, created, pid;
	char owner[160]; /* the copy's claim (db.h: claims) */
	int64_t lease;
	char **tags;
	size_t ntags;
	char **apps; /* requested apps the master lacks (in the seed) */
	size_t napps;
	/* the current session, if any (not ended) */
	int64_t session_id;
	char *session_state, *session_host, *session_kind;
	int64_t session_warm;     /* the warm build it was restored from (0: booted) */
	/*
	 * Its warm image (warm.h): the build whose image is current (0: cold),
	 * when it was saved, when a build last failed, and the build that
	 * runs now (0: none).
	 */
	int64_t warm, warm_built, warm_failed, warm_building;
	/* The user's home disk (home.h; NULL: none): its volume, state, size and allocation when last read. */
	char *home, *home_state;
	int64_t home_size, home_used;
	/*
	 * Masters that update (schema 13): the master that replaces its
	 * master (NULL: up to date), whether its user waits for the update
	 * (vm-master --force-update), and the master an update in progress
	 * leaves (NULL: none).
	 */
	char *update_to, *updating_from;
	bool update_forced;
};

void vdi_uservm_volumes(const char *user, char *disk, size_t dlen, char *seed, size_t slen);

/*
 * Claim u->user: a 'creating' row with this pid, committed, with the
 * user's home disk row (home.h: *how says what to do with its volume,
 * *home_size its size).
 */
int vdi_uservm_claim(struct vdi_db *db, const struct vdi_uservm_spec *u, int64_t *id, bool *takeover,
		     enum vdi_home_how *how, int64_t *home_size, struct vdi_err *err);
/*
 * Its volumes are made: creating -> ready, or -> preparing (its first
 * boot comes next: prepare.h); its home disk, if any, ready; used its
 * allocation.  The event is action (uservm-add), with detail; NULL: none
 * (an update that is ready now: schema 13's trigger says uservm-updated).
 */
int vdi_uservm_made(struct vdi_db *db, int64_t id, bool prepare, const char *action, const char *detail,
		    int64_t home_used, struct vdi_err *err);
/*
 * Claim the user VM id for its update to the master that replaces its
 * own (uservm.h: update_to): creating under this pid, master_id the new
 * master, updating_from the old, warm image dropped, one transaction.
 * Only a ready (or failed) user VM with no live session is taken: 1
 * taken, 0 not now (a session runs, or it moved on meanwhile), -1 error.
 */
int vdi_uservm_update_claim(struct vdi_db *db, int64_t id, struct vdi_err *err);
/*
 * The user VMs an update run has to do, by user: stale ones (their master
 * replaced) with no live session, and updates a dead process left half
 * way.  *busy: stale ones that wait for their session to end.
 */
int vdi_uservm_update_due(struct vdi_db *db, struct vdi_uservm **out, size_t *n, size_t *busy,
			  struct vdi_err *err);
/*
 * Take USER's user VM back to creating under this pid when its first boot
 * failed (or was left preparing by a process that died, with no first boot
 * running): 1 taken (*id set; its volumes must be made again), 0 nothing to
 * retry, -1 error.
 */
int vdi_uservm_retry(struct vdi_db *db, const char *user, int64_t *id, struct vdi_err *err);
/*
 * User VMs left preparing with no first boot and no live process to start
 * one (a vm-copy killed between its copy and its first boot): vm-reap fails
 * them, so vm-copy's retry and vm-ls say what happened.
 */
int vdi_uservm_list_unwatched(struct vdi_db *db, struct vdi_uservm **out, size_t *n, struct vdi_err *err);
/* creating or preparing -> failed (no-op in any other state). */
int vdi_uservm_fail(struct vdi_db *db, int64_t id, const char *detail, struct vdi_err *err);
int vdi_uservm_unclaim(struct vdi_db *db, int64_t id, struct vdi_err *err);

int vdi_uservm_get(struct vdi_db *db, const char *user, struct vdi_uservm *u, struct vdi_err *err);
/* All user VMs (users == NULL) or the named ones, by user. */
int vdi_uservm_list(struct vdi_db *db, char *const *users, size_t nusers, struct vdi_uservm **out,
		    size_t *n, struct vdi_err *err);
void vdi_uservm_clear(struct vdi_uservm *u);
void vdi_uservms_free(struct vdi_uservm *us, size_t n);

/*
 * Before deleting USER's volumes: refused (5) while a session is not ended
 * (end it for real first: reaper.h) or a live process copies it.  Fills u.
 */
int vdi_uservm_rm_begin(struct vdi_db *db, const char *user, struct vdi_uservm *u, struct vdi_err *err);
int vdi_uservm_rm_row(struct vdi_db *db, int64_t id, const char *user, struct vdi_err *err);

/*
 * A restore from warm build's image failed and session booted instead:
 * the user VM is cold (if that build is still its image), with event
 * session-warm-fallback (detail: why), one transaction.  The next warm
 * build (vm-copy --warm) makes a new image; the old files are
 * vm-reap --orphans' once no session stands on them.
 */
int vdi_uservm_warm_drop(struct vdi_db *db, int64_t id, int64_t build, int64_t session, const char *detail,
			 struct vdi_err *err);

/*
 * The warm builds whose files must stay (a user VM's image, a build that
 * runs, an image a live session was restored from): a new array, the
 * caller's to free.  Read after listing the pool, so a build that starts
 * meanwhile is either listed here or not yet in the pool.
 */
int vdi_uservm_warm_keep(struct vdi_db *db, int64_t **ids, size_t *n, struct vdi_err *err);

#endif
