/*
 * import.h - vm-master's workflow: a golden image into the pool (the paper's VMMS).
 *
 * vdi_import() checks the source first (image.h), claims the name with a
 * committed 'importing' row (rule 2), deletes the leftovers of an import
 * that died, streams the image from its source straight into a new volume
 * (a libvirt stream: no temporary copy, works on a remote host), hashing
 * and checking it on the way, compares the checksum, checks that libvirt
 * sees the size the header promised, and only then makes the master
 * active.  Any failure deletes the partial volume and forgets the claim.
 * With -n (vdi_db_dry_run) the checks up to the claim run (rolled back), no byte moves.
 *
 * vdi_import_rm() deletes a master's volume, then its row (refused while
 * user VMs use it).
 */
#ifndef VDI_IMPORT_H
#define VDI_IMPORT_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "conns.h"
#include "db.h"
#include "err.h"
#include "master.h"

struct vdi_import_opts {
	struct vdi_master_spec spec;  /* name, os, pool, source (path or URL), apps, sizes */
	const char *sha256;           /* expected, lowercase hex; NULL: not checked */
	const char *host;             /* the host to reach the pool through; NULL: any that sees it */
	int64_t max_size;             /* bytes */
	struct vdi_conns *conns;      /* borrowed */
	const volatile sig_atomic_t *interrupted;
	void (*progress)(void *ctx, int64_t done, int64_t total); /* may be NULL */
	void *ctx;
};

/* On success *m (the caller clears it) is the active master; *takeover says a dead import was taken over. */
int vdi_import(struct vdi_db *db, const struct vdi_import_opts *o, struct vdi_master *m, bool *takeover,
	       struct vdi_err *err);

int vdi_import_rm(struct vdi_db *db, const char *name, const struct vdi_import_opts *o, struct vdi_err *err);

#endif
