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
#include "event.h"
#include "master.h"

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

/* What vm-log -f is handed: the ids its function saw, in order. */
static int
seen_ids(const struct vdi_event *e, void *arg)
{
	char *buf = arg;

	snprintf(buf + strlen(buf), 64 - strlen(buf), "%lld ", (long long)e->id);
	return 0;
}

static void
put_event(struct vdi_db *db, int id, const char *object)
{
	struct vdi_err err = { 0 };
	char sql[160];

	snprintf(sql, sizeof(sql), "INSERT INTO events (id, at, who, program, object, action) "
		 "VALUES (%d, 1, 'w', 'p', '%s', 'a')", id, object);
	assert_int_equal(vdi_db_exec(db, sql, &err), 0);
}

/*
 * Following: an id that becomes visible after a later one (PostgreSQL
 * hands ids out before commit) is still shown, once; what the filter
 * leaves out is never shown, and never holds the floor back.
 */
static void
test_event_follow_late_id(void **state)
{
	struct vdi_db *db;
	struct vdi_err err = { 0 };
	struct vdi_event_cursor cur = { 0 };
	struct vdi_event_filter f = { .object = "ann" };
	char got[64] = "";

	(void)state;
	assert_int_equal(vdi_db_open(&db, path, 1000, "test", &err), 0);
	put_event(db, 1, "ann");
	put_event(db, 2, "bob");
	assert_int_equal(vdi_event_list(db, &f, &cur, seen_ids, got, &err), 0);
	assert_string_equal(got, "1 ");
	assert_int_equal(cur.floor, 2);
	/* 3 is not committed yet; 4 and 5 are. */
	put_event(db, 4, "ann");
	put_event(db, 5, "bob");
	got[0] = '\0';
	assert_int_equal(vdi_event_list(db, &f, &cur, seen_ids, got, &err), 0);
	assert_string_equal(got, "4 ");
	assert_int_equal(cur.floor, 2);
	assert_true(cur.gap_since > 0);
	put_event(db, 3, "ann");
	got[0] = '\0';
	assert_int_equal(vdi_event_list(db, &f, &cur, seen_ids, got, &err), 0);
	assert_string_equal(got, "3 ");
	assert_int_equal(cur.floor, 5);
	assert_int_equal(cur.nseen, 0);
	got[0] = '\0';
	assert_int_equal(vdi_event_list(db, &f, &cur, seen_ids, got, &err), 0);
	assert_string_equal(got, "");
	vdi_event_cursor_clear(&cur);
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

/* Every reason has a stable name and maps to one of the documented exit codes. */
static void
test_reasons(void **state)
{
	struct vdi_err err = { 0 };

	(void)state;
	for (int r = 0; r < VDI_R_MAX; r++) {
		int c = vdi_reason_code((enum vdi_reason)r);
		if (r > VDI_R_TEMP && r < VDI_R_IO)
			continue; /* the gap between the exit codes and the finer reasons */
		assert_true(c == 0 || c == 1 || c == 2 || c == 3 || c == 4 || c == 5 || c == 75);
		assert_non_null(vdi_reason_name((enum vdi_reason)r));
		assert_string_not_equal(vdi_reason_name((enum vdi_reason)r), "");
	}
	assert_int_equal(vdi_err_set(&err, VDI_R_PREPARING, "x %d", 1), -1);
	assert_int_equal(err.code, VDI_ECONFLICT);
	assert_int_equal(err.reason, VDI_R_PREPARING);
	assert_string_equal(err.msg, "x 1");
	vdi_err_clear(&err);
	assert_int_equal(err.code, 0);
	assert_int_equal(err.reason, VDI_R_NONE);
	assert_int_equal(vdi_reason_code(VDI_R_DB_BUSY), VDI_ETEMP);
	assert_int_equal(vdi_reason_code(VDI_R_NEVER_FITS), VDI_ENOHOST);
	assert_int_equal(vdi_reason_code(VDI_R_IO), VDI_EFAIL);
}

/* A VMDB locked past the busy timeout is "try again" (75), with its reason. */
static void
test_busy_is_temporary(void **state)
{
	struct vdi_db *a, *b;
	struct vdi_err err = { 0 };

	(void)state;
	assert_int_equal(vdi_db_open(&a, path, 1000, "test", &err), 0);
	assert_int_equal(vdi_db_open(&b, path, 50, "test", &err), 0);
	assert_int_equal(vdi_db_begin(a, true, &err), 0);
	assert_int_equal(vdi_db_begin(b, true, &err), -1);
	assert_int_equal(err.reason, VDI_R_DB_BUSY);
	assert_int_equal(err.code, VDI_ETEMP);
	vdi_db_rollback(a);
	vdi_db_close(b);
	vdi_db_close(a);
}

/*
 * An import's last write that fails is reported as what failed, not as a
 * lost claim (which it is only when the row is gone); a failing write is
 * made by a trigger on this connection that raises, as a full disk would.
 */
static void
test_master_activate_failures(void **state)
{
	struct vdi_master_spec m = { .name = "m1", .os = "linux", .pool = "vdi", .source = "/x",
				     .mem = 512, .vcpus = 1 };
	struct vdi_db *db;
	struct vdi_err err = { 0 };
	int64_t id;
	bool takeover;

	(void)state;
	assert_int_equal(vdi_db_open(&db, path, 1000, "test", &err), 0);
	assert_int_equal(vdi_master_claim(db, &m, &id, &takeover, &err), 0);
	assert_int_equal(vdi_db_exec(db, "CREATE TEMP TRIGGER boom BEFORE UPDATE ON masters "
				     "BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END", &err), 0);
	assert_int_equal(vdi_master_activate(db, id, "qcow2", 1 << 20, "00", 0, &err), -1);
	assert_int_not_equal(err.reason, VDI_R_CLAIM_LOST);
	assert_null(strstr(err.msg, "claim was lost"));
	assert_non_null(strstr(err.msg, "disk is full"));
	assert_false(vdi_db_in_tx(db));
	vdi_err_reset(&err);
	assert_int_equal(vdi_db_exec(db, "DROP TRIGGER boom", &err), 0);
	/* The row gone (another process took over and failed): now the claim is lost. */
	assert_int_equal(vdi_db_exec(db, "DELETE FROM masters WHERE name = 'm1'", &err), 0);
	assert_int_equal(vdi_master_activate(db, id, "qcow2", 1 << 20, "00", 0, &err), -1);
	assert_int_equal(err.reason, VDI_R_CLAIM_LOST);
	assert_int_equal(err.code, VDI_ECONFLICT);
	/* And the good path. */
	vdi_err_reset(&err);
	assert_int_equal(vdi_master_claim(db, &m, &id, &takeover, &err), 0);
	assert_int_equal(vdi_master_activate(db, id, "qcow2", 1 << 20, "00", 0, &err), 0);
	vdi_db_close(db);
}

/* One integer from raw SQL on a raw connection. */
static long long
raw_int(sqlite3 *h, const char *sql)
{
	sqlite3_stmt *st;
	long long v = -1;

	assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/*
 * A VMDB of schema 5 with a host, a master, user VMs and sessions (live,
 * ended, migrating) is upgraded to the current schema: schema 6 makes the
 * sessions table again; every row, the counters and the audit view
 * survive, and a crash is counted on its host by the new trigger.
 */
static void
test_upgrade_from_5_keeps_sessions(void **state)
{
	struct vdi_db *db;
	struct vdi_err err = { 0 };
	sqlite3 *h;
	char mkdir_cmd[160];

	(void)state;
	snprintf(mkdir_cmd, sizeof(mkdir_cmd), "mkdir -p '%s/sub'", dir);
	assert_int_equal(system(mkdir_cmd), 0);
	assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "PRAGMA journal_mode=WAL; PRAGMA application_id = " VDI_STR(VDI_APP_ID),
				      NULL, NULL, NULL), SQLITE_OK);
	for (int v = 0; v < 5; v++) {
		char sql[64];
		assert_int_equal(sqlite3_exec(h, vdi_migrations[v].sql, NULL, NULL, NULL), SQLITE_OK);
		snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", vdi_migrations[v].version);
		assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
	}
	assert_int_equal(sqlite3_exec(h,
		"INSERT INTO hosts (id, name, uri, pool, created) VALUES (1, 'h1', 'qemu:///a', 'vdi', 0), "
		"(2, 'h2', 'qemu:///b', 'vdi', 0);"
		"INSERT INTO masters (id, name, state, pool, volume, format, virtual_size, sha256, source, mem, "
		"vcpus, disk, created) VALUES (1, 'm', 'active', 'vdi', 'master-m', 'qcow2', 1, 'x', '/x', 1, 1, 1, 0);"
		"INSERT INTO uservms (id, user, state, master_id, pool, volume, seed, hostname, mem, vcpus, disk, "
		"created) VALUES (1, 'a', 'ready', 1, 'vdi', 'user-a', 's', 'a', 100, 1, 1, 0), "
		"(2, 'b', 'ready', 1, 'vdi', 'user-b', 's', 'b', 200, 2, 1, 0), "
		"(3, 'c', 'ready', 1, 'vdi', 'user-c', 's', 'c', 300, 1, 1, 0);"
		"INSERT INTO sessions (id, uservm_id, host_id, state, reason, mem, vcpus, created, changed, ended) "
		"VALUES (1, 1, 1, 'ended', 'poweroff', 100, 1, 0, 0, 0);"
		"INSERT INTO sessions (id, uservm_id, host_id, state, mem, vcpus, created, changed, domain) "
		"VALUES (2, 1, 1, 'running', 100, 1, 0, 0, 'vdi-s2-a'), (3, 2, 2, 'running', 200, 2, 0, 0, 'vdi-s3-b');"
		"INSERT INTO sessions (id, uservm_id, host_id, state, mem, vcpus, created, changed) "
		"VALUES (4, 3, 1, 'running', 300, 1, 0, 0);"
		"UPDATE sessions SET state = 'migrating', migrate_to = 2 WHERE id = 4;", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);

	assert_int_equal(vdi_db_open(&db, path, 1000, "test", &err), 0);
	assert_int_equal(version_of(db), vdi_db_schema_version());
	vdi_db_close(db);
	assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
	assert_int_equal(raw_int(h, "SELECT count(*) FROM sessions"), 4);
	assert_int_equal(raw_int(h, "SELECT migrate_to FROM sessions WHERE id = 4"), 2);
	assert_int_equal(raw_int(h, "SELECT sessions * 1000 + mem_used FROM hosts WHERE id = 1"), 2 * 1000 + 400);
	assert_int_equal(raw_int(h, "SELECT sessions * 1000 + mem_used FROM hosts WHERE id = 2"), 2 * 1000 + 500);
	assert_int_equal(raw_int(h, "SELECT count(*) FROM host_usage_check WHERE sessions <> sessions_real "
			 "OR mem_used <> mem_used_real OR vcpus_used <> vcpus_used_real"), 0);
	/* The invariants came along: one live session per user VM, and the counters' triggers. */
	assert_int_not_equal(sqlite3_exec(h, "INSERT INTO sessions (uservm_id, host_id, state, mem, vcpus, created, "
					  "changed) VALUES (1, 2, 'assigned', 1, 1, 0, 0)", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "UPDATE sessions SET state = 'ended', reason = 'crashed', ended = 1 "
				      "WHERE id = 3", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(raw_int(h, "SELECT crashes * 1000 + sessions FROM hosts WHERE id = 2"), 1 * 1000 + 1);
	sqlite3_close(h);
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
		cmocka_unit_test(test_reasons),
		cmocka_unit_test_setup_teardown(test_upgrade_from_5_keeps_sessions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_busy_is_temporary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_master_activate_failures, setup, teardown),
		cmocka_unit_test(test_migrations_numbered),
		cmocka_unit_test_setup_teardown(test_event_follow_late_id, setup, teardown),
	};
	return cmocka_run_group_tests_name("db", tests, NULL, NULL);
}
