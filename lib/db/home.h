/*
 * home.h - the users' home disks in the VMDB (schema 13).
 *
 * A home disk is the user's own qcow2 volume, home-USER.qcow2 in the pool
 * of the user's VM, attached read-write to every session of the user and
 * never behind an overlay.  It belongs to the user, not to the user VM:
 * removing the user VM keeps it (row and volume) unless it is purged, and
 * the user's next user VM gets it back.
 *
 * Made in two steps with the user VM (rule 2): vdi_home_claim(), inside
 * the user VM's claim transaction, commits the row 'creating'; the volume
 * is made; vdi_uservm_made() marks both ready.  A 'creating' row is only
 * ever a dead copy's (its user VM claim was taken over), so its volume is
 * made again; a volume of that name with no row is not ours (planted) and
 * is refused, untouched.
 */
#ifndef VDI_HOME_H
#define VDI_HOME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "err.h"

/* The smallest home disk: ext4 with its journal and room to spare (the guest's mkfs refuses less sensibly). */
#define VDI_HOME_MIN (16LL << 20)

/* A home disk as the VMDB holds it: owns its strings (vdi_home_clear). */
struct vdi_home {
	int64_t id;
	char *user, *state, *pool, *volume;
	int64_t size, used, used_seen, created, resized;
	int64_t session_id;  /* the user's live session (0: none) */
	bool uservm;         /* the user has a user VM */
};

/* What vdi_home_claim found. */
enum vdi_home_how {
	VDI_HOME_NONE,   /* no home disk, none asked for */
	VDI_HOME_NEW,    /* a new row: make the volume (one of that name already there is planted) */
	VDI_HOME_REMAKE, /* a dead copy's row: delete and make its volume again */
	VDI_HOME_KEPT,   /* the user's kept home disk: attach it as it is (*size set to its size) */
};

void vdi_home_volume(const char *user, char *buf, size_t len);

/*
 * Inside the user VM's claim transaction: the user's home disk row, made
 * 'creating' if size > 0 and there is none.  A kept one in another pool
 * than pool is refused (5): the user VM's sessions could not reach it.
 */
int vdi_home_claim(struct vdi_db *db, const char *user, const char *pool, int64_t *size, enum vdi_home_how *how,
		   struct vdi_err *err);

/* 1 found (h filled), 0 the user has none, -1 error. */
int vdi_home_get(struct vdi_db *db, const char *user, struct vdi_home *h, struct vdi_err *err);
/* Every home disk, by user; with orphans only those whose user has no user VM. */
int vdi_home_list(struct vdi_db *db, bool orphans, struct vdi_home **out, size_t *n, struct vdi_err *err);
void vdi_home_clear(struct vdi_home *h);
void vdi_homes_free(struct vdi_home *hs, size_t n);

/*
 * Before growing USER's home disk to size: refused while the user has a
 * session (5), when it would shrink (2) or there is none (3).  0 go on
 * (h filled), 1 it has that size already (h filled), -1 refused.
 */
int vdi_home_resize_check(struct vdi_db *db, const char *user, int64_t size, struct vdi_home *h,
			  struct vdi_err *err);
/* Its volume has grown: the new size and allocation, event home-resized. */
int vdi_home_resized(struct vdi_db *db, const struct vdi_home *h, int64_t size, int64_t used, struct vdi_err *err);
/* Its allocation as just read from the pool. */
int vdi_home_set_used(struct vdi_db *db, const char *user, int64_t used, struct vdi_err *err);
/* Forget USER's home disk row (its volume deleted first), event home-purged; refused (5) while a user VM has it. */
int vdi_home_rm_row(struct vdi_db *db, const char *user, struct vdi_err *err);

#endif
