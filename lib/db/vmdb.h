/*
 * vmdb.h - the VMDB as a whole: copying it to another engine (a site that
 * moves from its SQLite file to PostgreSQL) and auditing it (vdi-db).
 *
 * Ownership: the caller opens and closes both VMDBs; the report arrays
 * are the caller's, freed with vdi_vmdb_report_clear.
 */
#ifndef VDI_VMDB_H
#define VDI_VMDB_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"

/* One table's rows: in the source and in the target (or, for check, its count). */
struct vdi_vmdb_table {
	const char *name; /* static */
	int64_t rows, copied;
};

struct vdi_vmdb_report {
	struct vdi_vmdb_table *tables;
	size_t ntables;
	int64_t drifted; /* hosts whose capacity counters disagree with their sessions */
	int version;     /* the schema version */
};

/*
 * Copy every row of src into dst, which must be a VMDB with no rows (a
 * database vdi_db_open has just set up); in one transaction on dst, so a
 * failure leaves it empty.  Refused (VDI_R_BUSY, 5) while src is in use:
 * a vm-watch, vm-reap or vm-rebalance holds its lock, or a claim on a row
 * is alive (an import, a copy, a start, a stop or a move at work).  src is
 * held under its write lock for the copy, so nothing changes it meanwhile.
 * The capacity counters are not copied but counted again by dst's triggers
 * as the sessions arrive, then compared with src's: any difference, or a
 * row count that differs, fails the copy (nothing is committed).  With -n
 * on dst, everything is checked and nothing kept.
 */
int vdi_vmdb_copy(struct vdi_db *src, struct vdi_db *dst, struct vdi_vmdb_report *r, struct vdi_err *err);

/*
 * A consistent copy of an SQLite VMDB while it is in use, into path (a new
 * file); see vdi_db_backup.  PostgreSQL: VDI_R_USAGE (pg_dump does it).
 */
int vdi_vmdb_backup(struct vdi_db *db, const char *path, struct vdi_err *err);
/*
 * The VMDB made again from the backup at path: refused (VDI_R_BUSY, 5)
 * while it is in use as for a copy (a vm-watch, vm-reap or vm-rebalance
 * runs, or a claim is alive), and (VDI_R_USAGE, 2) when path is not a VMDB
 * of a schema this vdi-tools knows; then nothing changes.  The caller
 * opens the VMDB again afterwards (an older backup's schema is upgraded
 * then), and the hosts are reconciled with it by vm-hosts poll and
 * vm-reap --orphans: a session that ran after the backup was taken has a
 * domain that no session of the restored VMDB owns.
 */
int vdi_vmdb_restore(struct vdi_db *db, const char *path, struct vdi_err *err);

/* Count every table's rows and the hosts whose counters drifted (host_usage_check). */
int vdi_vmdb_check(struct vdi_db *db, struct vdi_vmdb_report *r, struct vdi_err *err);

void vdi_vmdb_report_clear(struct vdi_vmdb_report *r);

#endif
