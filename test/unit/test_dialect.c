/*
 * test_dialect.c - the VMDB seam's one dialect on both engines: the same
 * SQL, binds and reads give the same answers on SQLite (a file) and on a
 * real PostgreSQL 15 server that this test starts (test/pg-server, stopped
 * by its pid at the end).  Each test runs once per engine.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "db.h"

static char dir[64], pgdir[64], names[2][256];
static int ndb;

/* A fresh VMDB of engine e (0 SQLite, 1 PostgreSQL). */
static struct vdi_db *
open_fresh(int e)
{
	struct vdi_db *db = NULL;
	struct vdi_err err = { 0 };
	char cmd[512];

	ndb++;
	if (e == 0) {
		snprintf(names[0], sizeof(names[0]), "%s/t%d.db", dir, ndb);
	} else {
		snprintf(cmd, sizeof(cmd), "createdb -h %s -U postgres d%d", pgdir, ndb);
		assert_int_equal(system(cmd), 0);
		snprintf(names[1], sizeof(names[1]), "host=%s user=postgres dbname=d%d", pgdir, ndb);
	}
	if (vdi_db_open(&db, names[e], 500, "test", &err) < 0)
		fail_msg("open %s: %s", names[e], err.msg);
	return db;
}

static int
setup(void **state)
{
	char cmd[256];

	(void)state;
	strcpy(dir, "/tmp/vdi-test-dialect.XXXXXX");
	strcpy(pgdir, "/tmp/vdi-test-pg.XXXXXX");
	if (!mkdtemp(dir) || !mkdtemp(pgdir))
		return -1;
	snprintf(cmd, sizeof(cmd), "test/pg-server start %s >/dev/null", pgdir);
	return system(cmd) == 0 ? 0 : -1;
}

static int
teardown(void **state)
{
	char cmd[256];

	(void)state;
	snprintf(cmd, sizeof(cmd), "test/pg-server stop %s; rm -rf '%s'", pgdir, dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
run_ok(struct vdi_db *db, const char *sql)
{
	struct vdi_err err = { 0 };

	if (vdi_db_exec(db, sql, &err) < 0)
		fail_msg("%s: %s", sql, err.msg);
}

/* Placeholders: ?, ?N, mixed as SQLite numbers them, and a ? inside quotes is text. */
static void
check_placeholders(int e)
{
	struct vdi_db *db = open_fresh(e);
	struct vdi_stmt *st = NULL;
	struct vdi_err err = { 0 };

	assert_int_equal(vdi_db_prepare(db, &st, "SELECT CAST(? AS TEXT) || '?' || CAST(?3 AS TEXT) || "
					"CAST(? AS TEXT) || CAST(?1 AS TEXT)", &err), 0);
	vdi_stmt_bind_text(st, 1, "a");
	vdi_stmt_bind_text(st, 2, "unused"); /* SQLite counts it; the SQL never reads it */
	vdi_stmt_bind_text(st, 3, "c");
	vdi_stmt_bind_text(st, 4, "d");
	assert_int_equal(vdi_stmt_step(st), VDI_DB_ROW);
	assert_string_equal(vdi_stmt_text(st, 0), "a?cda");
	vdi_stmt_finalize(st);
	vdi_db_close(db);
}

/* Sizes past 2^31, ratios as doubles, NULL, and a comparison read as 1/0. */
static void
check_values(int e)
{
	struct vdi_db *db = open_fresh(e);
	struct vdi_stmt *st = NULL;
	struct vdi_err err = { 0 };

	assert_int_equal(vdi_db_prepare(db, &st, "SELECT ?1 * 2, ?2 / 4, NULL, ?1 > 5, ?1 < 5, 7 / 2", &err), 0);
	vdi_stmt_bind_int64(st, 1, 17592186044416LL);
	vdi_stmt_bind_double(st, 2, 1.5);
	assert_int_equal(vdi_stmt_step(st), VDI_DB_ROW);
	assert_true(vdi_stmt_int64(st, 0) == 35184372088832LL);
	assert_true(vdi_stmt_double(st, 1) == 0.375);
	assert_true(vdi_stmt_null(st, 2));
	assert_null(vdi_stmt_text(st, 2));
	assert_int_equal(vdi_stmt_int(st, 3), 1);
	assert_int_equal(vdi_stmt_int(st, 4), 0);
	assert_int_equal(vdi_stmt_int(st, 5), 3); /* integer division truncates on both */
	assert_int_equal(vdi_stmt_step(st), VDI_DB_DONE);
	vdi_stmt_finalize(st);
	vdi_db_close(db);
}

static int64_t
one_int(struct vdi_db *db, const char *sql)
{
	struct vdi_stmt *st = NULL;
	struct vdi_err err = { 0 };
	int64_t v;

	if (vdi_db_prepare(db, &st, sql, &err) < 0)
		fail_msg("%s: %s", sql, err.msg);
	if (vdi_stmt_step(st) != VDI_DB_ROW)
		fail_msg("%s: no row", sql);
	v = vdi_stmt_int64(st, 0);
	vdi_stmt_finalize(st);
	return v;
}

/*
 * The schema's invariants, the same on both: generated placement keys,
 * the counters kept by triggers, one live session per user VM, names
 * ordered as bytes.
 */
static void
check_schema(int e)
{
	struct vdi_db *db = open_fresh(e);
	struct vdi_stmt *st = NULL;
	struct vdi_err err = { 0 };

	run_ok(db, "INSERT INTO hosts (name, uri, pool, mem_total, ram_ratio, reserve_mem, created) VALUES "
	       "('b', 'u1', 'p', 10000000001, 1.5, 7, 0), ('B', 'u2', 'p', 3, 1.0, 0, 0), ('a', 'u3', 'p', 0, 1.0, 0, 0)");
	/* 10000000001 * 1.5 truncates to 15000000001, less the reserve. */
	assert_true(one_int(db, "SELECT mem_cap FROM hosts WHERE name = 'b'") == 15000000001LL - 7);
	assert_true(one_int(db, "SELECT mem_room FROM hosts WHERE name = 'b'") == 15000000001LL - 7);
	assert_int_equal(one_int(db, "SELECT mem_cap FROM hosts WHERE name = 'a'"), 0);
	run_ok(db, "INSERT INTO masters (name, state, pool, volume, source, mem, vcpus, created) VALUES "
	       "('m', 'importing', 'p', 'v', 's', 1, 1, 0)");
	run_ok(db, "INSERT INTO uservms (username, state, master_id, pool, volume, seed, hostname, mem, vcpus, "
	       "disk, created) VALUES ('ann', 'ready', 1, 'p', 'v', 's', 'h', 1, 1, 1, 0)");
	run_ok(db, "INSERT INTO sessions (uservm_id, host_id, state, mem, vcpus, created, changed) VALUES "
	       "(1, 1, 'running', 4000000000, 2, 0, 0)");
	assert_true(one_int(db, "SELECT mem_used FROM hosts WHERE name = 'b'") == 4000000000LL);
	assert_int_equal(one_int(db, "SELECT sessions FROM hosts WHERE name = 'b'"), 1);
	/* A second live session of one user VM: a conflict, and nothing changes. */
	assert_int_equal(vdi_db_prepare(db, &st, "INSERT INTO sessions (uservm_id, host_id, state, mem, vcpus, "
					"created, changed) VALUES (1, 2, 'assigned', 1, 1, 0, 0)", &err), 0);
	assert_int_equal(vdi_stmt_step(st), VDI_DB_ERROR);
	assert_true(vdi_db_conflict(db));
	assert_int_equal(vdi_db_fail(db, "adding", &err), -1);
	assert_int_equal(err.reason, VDI_R_CONFLICT);
	vdi_stmt_finalize(st);
	run_ok(db, "UPDATE sessions SET state = 'ended', reason = 'crashed' WHERE id = 1");
	assert_int_equal(vdi_db_changes(db), 1);
	assert_int_equal(one_int(db, "SELECT sessions + mem_used + vcpus_used FROM hosts WHERE name = 'b'"), 0);
	assert_int_equal(one_int(db, "SELECT crashes FROM hosts WHERE name = 'b'"), 1);
	assert_int_equal(one_int(db, "SELECT count(*) FROM host_usage_check WHERE sessions <> sessions_real"), 0);
	/* Names sort as bytes, whatever the server's locale: 'B' before 'a' before 'b'. */
	assert_int_equal(vdi_db_prepare(db, &st, "SELECT name FROM hosts ORDER BY name", &err), 0);
	assert_int_equal(vdi_stmt_step(st), VDI_DB_ROW);
	assert_string_equal(vdi_stmt_text(st, 0), "B");
	assert_int_equal(vdi_stmt_step(st), VDI_DB_ROW);
	assert_string_equal(vdi_stmt_text(st, 0), "a");
	vdi_stmt_finalize(st);
	vdi_db_close(db);
}

/* ON CONFLICT DO NOTHING RETURNING: no row, and the transaction goes on (PostgreSQL ends one on an error). */
static void
check_upsert_and_dry_run(int e)
{
	struct vdi_db *db = open_fresh(e);
	struct vdi_stmt *st = NULL;
	struct vdi_err err = { 0 };

	assert_int_equal(vdi_db_begin(db, true, &err), 0);
	assert_true(vdi_db_in_tx(db));
	run_ok(db, "INSERT INTO kv (key, value) VALUES ('k', 'one')");
	assert_int_equal(vdi_db_prepare(db, &st, "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING "
					"RETURNING key", &err), 0);
	vdi_stmt_bind_text(st, 1, "k");
	vdi_stmt_bind_text(st, 2, "two");
	assert_int_equal(vdi_db_step_row(db, st, "adding", &err), 0);
	vdi_stmt_finalize(st);
	run_ok(db, "INSERT INTO kv (key, value) VALUES ('k', 'three') ON CONFLICT (key) DO UPDATE SET value = excluded.value");
	assert_int_equal(vdi_db_commit(db, &err), 0);
	assert_false(vdi_db_in_tx(db));
	assert_int_equal(one_int(db, "SELECT count(*) FROM kv WHERE value = 'three'"), 1);
	/* -n: the commit rolls back. */
	vdi_db_set_dry_run(db, true);
	assert_int_equal(vdi_db_begin(db, true, &err), 0);
	run_ok(db, "DELETE FROM kv");
	assert_int_equal(vdi_db_commit(db, &err), 0);
	assert_int_equal(one_int(db, "SELECT count(*) FROM kv"), 1);
	vdi_db_close(db);
}

/* One writer at a time: a second waits, then gives up past the busy timeout with db-busy (75). */
static void
check_write_lock_and_singletons(int e)
{
	struct vdi_db *a = open_fresh(e), *b = NULL;
	struct vdi_err err = { 0 };
	int fa = -1, fb = -1;

	assert_int_equal(vdi_db_reopen(a, &b, &err), 0);
	assert_int_equal(vdi_db_begin(a, true, &err), 0);
	assert_int_equal(vdi_db_begin(b, true, &err), -1);
	assert_int_equal(err.reason, VDI_R_DB_BUSY);
	assert_int_equal(err.code, 75);
	vdi_db_rollback(b);
	vdi_db_rollback(a);
	assert_int_equal(vdi_db_begin(b, true, &err), 0);
	vdi_db_rollback(b);
	/* A singleton: one holder; the other is told, not blocked. */
	assert_int_equal(vdi_db_lock(a, "reap", false, &fa, &err), 1);
	assert_int_equal(vdi_db_lock(b, "reap", false, &fb, &err), 0);
	assert_int_equal(vdi_db_lock(b, "watch", false, &fb, &err), 1);
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	vdi_db_close(a);
	vdi_db_close(b);
}

#define BOTH(f)                                   \
	static void f##_sqlite(void **s) { (void)s; f(0); } \
	static void f##_pg(void **s) { (void)s; f(1); }
BOTH(check_placeholders)
BOTH(check_values)
BOTH(check_schema)
BOTH(check_upsert_and_dry_run)
BOTH(check_write_lock_and_singletons)

/* What a PostgreSQL name shows: never its password; what it refuses: with the right exit code. */
static void
test_pg_names(void **state)
{
	struct vdi_db *db = NULL;
	struct vdi_err err = { 0 };
	char name[256];

	(void)state;
	assert_true(vdi_db_name_is_pg("postgresql://h/db"));
	assert_true(vdi_db_name_is_pg("postgres://h/db"));
	assert_true(vdi_db_name_is_pg("host=/run/pg dbname=vdi"));
	assert_true(vdi_db_name_is_pg("dbname = vdi"));
	assert_false(vdi_db_name_is_pg("/var/lib/vdi/vdi.db"));
	assert_false(vdi_db_name_is_pg("vdi.db"));
	assert_false(vdi_db_name_is_pg("./a=b.db"));
	/* Nothing listens in an empty folder: temporary (75); the password never shows. */
	snprintf(name, sizeof(name), "postgresql://ann:s3cret@/x?host=%s", dir);
	assert_int_equal(vdi_db_open(&db, name, 100, "test", &err), -1);
	assert_int_equal(err.reason, VDI_R_DB_DOWN);
	assert_int_equal(err.code, 75);
	assert_null(strstr(err.msg, "s3cret"));
	assert_non_null(strstr(err.msg, "postgresql://ann:***@/x"));
	snprintf(name, sizeof(name), "host=%s password='s 3' dbname=x", dir);
	assert_int_equal(vdi_db_open(&db, name, 100, "test", &err), -1);
	assert_null(strstr(err.msg, "s 3"));
	/* libpq cannot read it: usage (2). */
	assert_int_equal(vdi_db_open(&db, "postgresql://[::1/x", 100, "test", &err), -1);
	assert_int_equal(err.code, 2);
	assert_int_equal(vdi_db_open(&db, "host=x nonsense=1", 100, "test", &err), -1);
	assert_int_equal(err.code, 2);
}

/* A claim judged from here: another machine's by its lease, a row of an older vdi-tools by its pid. */
static void
test_claims(void **state)
{
	int64_t now = time(NULL);

	(void)state;
	assert_true(vdi_claim_alive(42, "machine-a/boot-a/42/7", now + 10));
	assert_false(vdi_claim_alive(42, "machine-a/boot-a/42/7", now - 1));
	assert_false(vdi_claim_alive(0, "machine-a/boot-a/42/7", now + 10)); /* no claim */
	assert_true(vdi_claim_alive(getpid(), NULL, 0));
	assert_true(vdi_claim_alive(getpid(), "", 0));
	assert_false(vdi_claim_alive(0x7ffffff0, NULL, 0));
}

/*
 * A claim's lease is renewed while its owner runs: a thread of this
 * process moves it VDI_CLAIM_LEASE past now every VDI_CLAIM_LEASE / 3
 * seconds (so this test waits that long, once).
 */
static void
test_lease_renewed(void **state)
{
	struct vdi_db *db = open_fresh(1);
	struct vdi_stmt *st = NULL;
	struct vdi_err err = { 0 };
	int64_t first, later;

	(void)state;
	run_ok(db, "INSERT INTO masters (name, state, pool, volume, source, mem, vcpus, created) VALUES "
	       "('m', 'importing', 'p', 'v', 's', 1, 1, 0)");
	assert_int_equal(vdi_db_prepare(db, &st, "UPDATE masters SET pid = 1, owner = ?1, lease = ?2", &err), 0);
	vdi_db_bind_claim(db, st, 1);
	assert_int_equal(vdi_stmt_step(st), VDI_DB_DONE);
	vdi_stmt_finalize(st);
	first = one_int(db, "SELECT lease FROM masters");
	sleep(VDI_CLAIM_LEASE / 3 + 2);
	later = one_int(db, "SELECT lease FROM masters");
	assert_true(later > first);
	vdi_db_close(db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(check_placeholders_sqlite),
		cmocka_unit_test(check_placeholders_pg),
		cmocka_unit_test(check_values_sqlite),
		cmocka_unit_test(check_values_pg),
		cmocka_unit_test(check_schema_sqlite),
		cmocka_unit_test(check_schema_pg),
		cmocka_unit_test(check_upsert_and_dry_run_sqlite),
		cmocka_unit_test(check_upsert_and_dry_run_pg),
		cmocka_unit_test(check_write_lock_and_singletons_sqlite),
		cmocka_unit_test(check_write_lock_and_singletons_pg),
		cmocka_unit_test(test_pg_names),
		cmocka_unit_test(test_claims),
		cmocka_unit_test(test_lease_renewed),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
