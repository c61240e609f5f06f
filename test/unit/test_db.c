/* test_db.c - unit tests of VMDB creation, migration and refusal (lib/db/db.c, lib/db/sqlite.c). */
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

#include <sqlite3.h>

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
	struct vdi_stmt *st;
	struct vdi_err err = { 0 };
	int v;

	assert_int_equal(vdi_db_prepare(db, &st, "PRAGMA user_version", &err), 0);
	assert_int_equal(vdi_stmt_step(st), VDI_DB_ROW);
	v = vdi_stmt_int(st, 0);
	vdi_stmt_finalize(st);
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
	assert_false(vdi_db_readonly(db));
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
	assert_int_equal(vdi_db_exec(db, "PRAGMA user_version=4242", &err), 0);
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

/* Frames in the WAL file (4 KiB pages, 24-byte frame headers, 32-byte file header). */
static long
wal_frames(void)
{
	char wal[160];
	struct stat sb;

	snprintf(wal, sizeof(wal), "%s-wal", path);
	if (stat(wal, &sb) < 0)
		return 0;
	return sb.st_size < 32 ? 0 : (long)(sb.st_size - 32) / (4096 + 24);
}

/* One short-lived process's worth of writing: open, one commit of a few pages, close. */
static void
write_once(int i)
{
	struct vdi_db *db;
	struct vdi_err err = { 0 };
	char sql[128];

	assert_int_equal(vdi_db_open(&db, path, 1000, "test", &err), 0);
	assert_int_equal(vdi_db_begin(db, true, &err), 0);
	for (int k = 0; k < 4; k++) {
		snprintf(sql, sizeof(sql), "INSERT INTO kv VALUES ('k%d.%d', hex(randomblob(3000)))", i, k);
		assert_int_equal(vdi_db_exec(db, sql, &err), 0);
	}
	assert_int_equal(vdi_db_commit(db, &err), 0);
	vdi_db_close(db);
}

/*
 * With no process holding the VMDB open, every open rebuilds the WAL index
 * from every frame, and SQLite's own checkpoint never starts the WAL over:
 * it grew without end.  Closing past VDI_WAL_FRAMES truncates it; while a
 * reader holds a snapshot, closing does not wait and the WAL may grow, and
 * the first close after the reader is gone truncates it.
 */
static void
test_wal_stays_short(void **state)
{
	sqlite3 *reader;
	long most = 0;

	(void)state;
	for (int i = 0; i < 150; i++) {
		write_once(i);
		if (wal_frames() > most)
			most = wal_frames();
	}
	assert_true(most >= VDI_WAL_FRAMES / 2); /* the WAL did fill: the test tests something */
	assert_true(most < VDI_WAL_FRAMES + 20);
	assert_int_equal(sqlite3_open(path, &reader), SQLITE_OK);
	assert_int_equal(sqlite3_exec(reader, "BEGIN; SELECT count(*) FROM kv", NULL, NULL, NULL), SQLITE_OK);
	for (int i = 150; i < 200; i++)
		write_once(i);
	assert_true(wal_frames() >= VDI_WAL_FRAMES);
	assert_int_equal(sqlite3_exec(reader, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	write_once(200);
	assert_int_equal(wal_frames(), 0);
	sqlite3_close(reader);
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
		cmocka_unit_test_setup_teardown(test_wal_stays_short, setup, teardown),
		cmocka_unit_test(test_migrations_numbered),
	};
	return cmocka_run_group_tests_name("db", tests, NULL, NULL);
}
