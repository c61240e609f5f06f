/*
 * floor.c - the floor vm-assign is measured against: a process that opens
 * the same VMDB the same way (libvdi's vdi_db_open: settings, WAL, busy
 * timeout, schema check) and runs SELECT 1, then exits.  Everything
 * vm-assign does beyond this is the decision and the reservation.
 */
#include <stdio.h>

#include "config.h"
#include "db.h"

int
main(void)
{
	struct vdi_config cfg;
	struct vdi_err err = { 0 };
	struct vdi_db *db = NULL;
	int rc = 1;

	if (vdi_config_load(&cfg, &err) < 0 || vdi_db_open(&db, cfg.db, cfg.busy_timeout, "floor", &err) < 0) {
		fprintf(stderr, "floor: %s\n", err.msg);
		goto out;
	}
	rc = vdi_db_exec(db, "SELECT 1", &err) < 0;
out:
	vdi_db_close(db);
	vdi_config_clear(&cfg);
	return rc;
}
