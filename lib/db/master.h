/*
 * master.h - masters (golden images) in the VMDB.
 *
 * Import is two steps (rule 2): vdi_master_claim() commits a row in state
 * 'importing' that holds the name and the importing process's pid before
 * any byte moves; vdi_master_activate() registers the verified image;
 * vdi_master_unclaim() forgets a failed import.  A claim whose process is
 * gone (killed half-way) is taken over by the next import of that name,
 * which deletes the partial volume first.  Volumes are named master-NAME.
 */
#ifndef VDI_MASTER_H
#define VDI_MASTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "err.h"
#include "profile.h"

/* What an import asks for: borrowed strings, none owned. */
struct vdi_master_spec {
	const char *name, *os, *pool, *source;
	char *const *apps;
	size_t napps;
	int64_t mem, vcpus, disk;  /* disk <= 0: the image's virtual size */
	struct vdi_profile prof;   /* prof.name NULL: from os (profile.h) */
	const char *prepare;       /* cloud-init (the default) or none */
	bool rdp;                  /* the guest serves RDP */
	int64_t home;              /* its user VMs' default home disk (0: none) */
};

/* A master as the VMDB holds it: owns its strings (vdi_master_clear). */
struct vdi_master {
	int64_t id;
	char *name, *state, *os, *pool, *volume, *format, *sha256, *source;
	int64_t virtual_size, mem, vcpus, disk, created, pid;
	char owner[160]; /* the import's claim (db.h: claims) */
	int64_t lease;
	char **apps;
	size_t napps;
	int64_t uservms; /* user VMs made from it */
	/* the device profile as registered (NULL overrides: the profile's own) */
	char *profile, *firmware, *disk_bus, *nic, *video;
	char *prepare;   /* cloud-init or none */
	bool rdp;
	int64_t home;        /* its user VMs' default home disk size (0: none) */
	char *replaced_by;   /* the master its user VMs are updated to (NULL: none) */
	bool update_forced;  /* their users wait for the update */
	int64_t updating;    /* its user VMs whose update to it is under way */
};

/* m's profile as registered, borrowed from m (resolve it with vdi_profile_resolve). */
struct vdi_profile vdi_master_profile(const struct vdi_master *m);

/* The volume name for a master. */
void vdi_master_volume(const char *name, char *buf, size_t len);

/*
 * Claim m->name for an import.  *takeover is set when a dead import's claim was taken over (its
 * partial volume must be deleted).  Conflict (5) when the name is taken.
 */
int vdi_master_claim(struct vdi_db *db, const struct vdi_master_spec *m, int64_t *id, bool *takeover,
		     struct vdi_err *err);
int vdi_master_activate(struct vdi_db *db, int64_t id, const char *format, int64_t virtual_size,
			const char *sha256, int64_t disk, struct vdi_err *err);
int vdi_master_unclaim(struct vdi_db *db, int64_t id, struct vdi_err *err);

int vdi_master_get(struct vdi_db *db, const char *name, struct vdi_master *m, struct vdi_err *err);
int vdi_master_list(struct vdi_db *db, struct vdi_master **out, size_t *n, struct vdi_err *err);
void vdi_master_clear(struct vdi_master *m);
void vdi_masters_free(struct vdi_master *ms, size_t n);

int vdi_master_retire(struct vdi_db *db, const char *name, struct vdi_err *err);

struct vdi_master_replace_opts {
	bool force;          /* even to another OS family or device profile */
	bool force_update;   /* a stale user VM's user waits for the update (else gets the old desktop once more) */
};
/*
 * NEW replaces OLD: OLD's user VMs (and those of masters OLD replaced) are
 * stale, updated by vm-copy --update (copy.h).  NEW becomes active (a
 * retired one too: that is the roll back); OLD is retired when no user VM
 * uses it.  Refused (5) across pools, and across OS families or device
 * profiles unless o->force.  *stale: OLD's user VMs.
 */
int vdi_master_replace(struct vdi_db *db, const char *old, const char *new, const struct vdi_master_replace_opts *o,
		       int64_t *stale, struct vdi_err *err);
/* Forget a master's row; refused (5) while user VMs use it. The volume is the caller's to delete first. */
int vdi_master_rm_check(struct vdi_db *db, const char *name, struct vdi_master *m, struct vdi_err *err);
int vdi_master_rm_row(struct vdi_db *db, int64_t id, const char *name, struct vdi_err *err);

/*
 * Choose a master for a request: the active master of os whose apps cover
 * apps, with the fewest extra apps, newest first.  Not found (3) says
 * which requested apps no master of that OS has.
 */
int vdi_master_choose(struct vdi_db *db, const char *os, char *const *apps, size_t napps,
		      char **name, struct vdi_err *err);


#endif
