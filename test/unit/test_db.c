/* test_db.c - unit tests of VMDB creation, migration and refusal (lib/db.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "db.h"

static char dir[64], path[128];

static int
setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/vdi-test-db.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/sub/vdi.db", dir);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[160];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int
version_of(struct vdi_db *db)
{
	sqlite3_stmt *st;
	int v;

	assert_int_equal(sqlite3_prepare_v2(db->h, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void
test_create_and_reopen(void **state)
{
	struct vdi_db *db;
	struct vdi_err err = { 0 };
	struct stat sb;

	(void)state;
	assert_int_equal(vdi_db_open(&db, path, 1000, "test", &err), 0);
	assert_int_equal(version_of(db), vdi_db_schema_version());
	assert_false(db->readonly);
	assert_int_equal(vdi_event_add(db, "obj", "act", NULL, &err), 0);
	vdi_db_close(db);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	/* Reopening applies nothing twice and keeps the data. */
	assert_int_equal(vdi_db_open(&db, path, 1000, "test", &err), 0);
	assert_int_equal(version_of(db), vdi_db_schema_version());
	vdi_db_close(db);
}

static void
test_newer_refused(void **state)
{
	struct vdi_db *db;
	struct vdi_err err = { 0 };

	(void)state;
	assert_int_equal(vdi_db_open(&db, path, 1000, "test", &err), 0);
	assert_int_equal(sqlite3_exec(db->h, "PRAGMA user_version=4242", NULL, NULL, NULL), SQLITE_OK);
	vdi_db_close(db);
	assert_int_equal(vdi_db_open(&db, path, 1000, "test", &err), -1);
	assert_null(db);
	assert_int_equal(err.code, VDI_EFAIL);
	assert_non_null(strstr(err.msg, "schema version 4242, newer"));
}

static void
test_constraint_is_conflict(void **state)
{
	struct vdi_db *db;
	struct vdi_err err = { 0 };

	(void)state;
	assert_int_equal(vdi_db_open(&db, path, 1000, "test", &err), 0);
	assert_int_equal(vdi_db_exec(db, "INSERT INTO kv VALUES ('a', '1')", &err), 0);
	assert_int_equal(vdi_db_exec(db, "INSERT INTO kv VALUES ('a', '2')", &err), -1);
	assert_int_equal(err.code, VDI_ECONFLICT);
	vdi_db_close(db);
}

static void
test_migrations_numbered(void **state)
{
	(void)state;
	assert_true(vdi_db_schema_version() >= 1);
	for (int i = 0; vdi_migrations[i].sql; i++)
		assert_int_equal(vdi_migrations[i].version, i + 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_and_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_constraint_is_conflict, setup, teardown),
		cmocka_unit_test(test_migrations_numbered),
	};
	return cmocka_run_group_tests_name("db", tests, NULL, NULL);
}
