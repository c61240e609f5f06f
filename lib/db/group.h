/*
 * group.h - entitlements: which masters the members of a system group may
 * request and use (grants), and how many sessions and how much memory a
 * group's members' desktops may hold at once (limits).  The rules live in
 * the VMDB (schema 10) and are edited by vm-group; the groups themselves
 * come from the system (nss.h), so vdi-tools holds no membership of its own.
 *
 * While no grant exists, entitlements are off: every user may use every
 * master, as before they existed.  With one, a user may use a master only
 * through a group of theirs that has a grant on it; a user in no group
 * (or unknown to the system) may use nothing.  A desktop session is
 * charged to one of those groups when it is placed: a group with no
 * limits first, else the first (by name) with room; when every one is
 * full the placement is refused (VDI_R_GROUP_FULL, exit 4).  First boots
 * (prepare) and moves are not charged again.
 *
 * Ownership: the caller's arrays (groups) are borrowed; a rule list is the
 * caller's, freed with vdi_group_rules_free.
 */
#ifndef VDI_GROUP_H
#define VDI_GROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "err.h"

#define VDI_GROUP_MAX 128

/* A group as vm-group list shows it. */
struct vdi_group_rule {
	char *grp;
	char **masters;          /* the masters it has, by name */
	size_t nmasters;
	int64_t max_sessions, max_mem; /* -1: no limit */
	int64_t sessions, mem;   /* what its members' live desktops hold now */
};

/* What a user may do with a master's desktop, and why. */
struct vdi_group_verdict {
	bool on;                 /* entitlements are in force (a grant exists) */
	bool allowed;            /* a group of the user's has the master */
	bool limited;            /* the group charged has limits */
	char grp[VDI_GROUP_MAX + 1]; /* the group charged ("" when off) */
	char why[512];           /* in words, for --explain, the page and errors */
};

/* Is s a group name vdi-tools accepts: 1-128 bytes, no control character, no , : " \ /, not starting with '-'? */
int vdi_group_name_check(const char *s, struct vdi_err *err);

/* Are entitlements in force (any grant)?  A read of its own. */
int vdi_group_active(struct vdi_db *db, bool *on, struct vdi_err *err);

/* grant: grp may use master; else revoke it.  Its own transaction, with an event.  3: no such master. */
int vdi_group_grant(struct vdi_db *db, const char *grp, const char *master, bool grant, struct vdi_err *err);
/* Set grp's limits: -1 none, -2 leave as it is.  Its own transaction, with an event. */
int vdi_group_limit(struct vdi_db *db, const char *grp, int64_t max_sessions, int64_t max_mem,
		    struct vdi_err *err);
/* Every group with a grant or a limit, by name. */
int vdi_group_list(struct vdi_db *db, struct vdi_group_rule **out, size_t *n, struct vdi_err *err);
void vdi_group_rules_free(struct vdi_group_rule *r, size_t n);

/*
 * The verdict for user, in groups[0..n) (sorted, as vdi_nss_groups gives
 * them), on a desktop of master_id needing mem bytes, read in the caller's
 * transaction.  0 with v filled (allowed or not); when room is true a
 * group must also have room for one more session of mem bytes (else
 * v->allowed is false and the error says which groups are full).  On a
 * refusal err holds VDI_R_NOT_ENTITLED or VDI_R_GROUP_FULL and -1 is
 * returned.
 */
int vdi_group_check(struct vdi_db *db, const char *user, char *const *groups, size_t n, int64_t master_id,
		    int64_t mem, bool room, struct vdi_group_verdict *v, struct vdi_err *err);
/* The same by master name (vm-group check, requests). */
int vdi_group_check_master(struct vdi_db *db, const char *user, char *const *groups, size_t n,
			   const char *master, struct vdi_group_verdict *v, struct vdi_err *err);

/*
 * The same for a user whose groups are looked up here (NSS): call it
 * outside a transaction (a directory may be slow).  0 allowed; -1 with
 * VDI_R_NOT_ENTITLED, VDI_R_NO_MASTER or a lookup's error.
 */
int vdi_group_user_may(struct vdi_db *db, const char *user, const char *master, struct vdi_group_verdict *v,
		       struct vdi_err *err);
/*
 * The masters user may request (their groups looked up here), by name,
 * into *names (an owning strv); *on false (and no list) while
 * entitlements are off: every master.
 */
int vdi_group_masters(struct vdi_db *db, const char *user, bool *on, char ***names, size_t *n,
		      struct vdi_err *err);

#endif
