/*
 * test_flows.c - the workflows' undo paths (lib/flow/), against libvirt's
 * own test driver (test:///default: a real libvirt driver, in this
 * process, with the pool "default-pool").  That driver makes volumes but
 * cannot upload into them, and does not run QEMU domains, so an import, a
 * copy and a start each fail half-way, after they made something: each
 * must leave no volume and no claim behind, and say why.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <libvirt/libvirt.h>

#include "conns.h"
#include "copy.h"
#include "db.h"
#include "import.h"
#include "start.h"
#include "virt.h"

#define URI "test:///default"
#define POOL "default-pool"

static char dir[64], path[128];
static virConnectPtr conn; /* held open: the test driver's state lives while a connection does */

static int
setup(void **state)
{
	struct vdi_err err = { 0 };
	struct vdi_db *db = NULL;
	int rc;

	(void)state;
	strcpy(dir, "/tmp/vdi-test-flows.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/vdi.db", dir);
	if (vdi_virt_init(&err) < 0 || !(conn = virConnectOpen(URI)))
		return -1;
	if (vdi_db_open(&db, path, 1000, "test", &err) < 0)
		return -1;
	/* One host: the test driver, polled, up, with room. */
	rc = vdi_db_exec(db, "INSERT INTO hosts (name, uri, pool, created, health, vcpus, mem_total, mem_free, "
			 "last_poll, last_ok) VALUES ('t1', '" URI "', '" POOL "', 0, 'up', 8, 8589934592, "
			 "8589934592, strftime('%s','now'), strftime('%s','now'));"
			 "INSERT INTO masters (id, name, state, pool, volume, format, virtual_size, sha256, source, "
			 "mem, vcpus, disk, created, prepare) VALUES (1, 'm', 'active', '" POOL "', 'master-m', "
			 "'qcow2', 1048576, 'x', '/x', 67108864, 1, 1048576, 0, 'none');"
			 "INSERT INTO uservms (id, username, state, master_id, pool, volume, seed, hostname, mem, vcpus, "
			 "disk, created) VALUES (1, 'alice', 'ready', 1, '" POOL "', 'user-alice.qcow2', "
			 "'user-alice-seed.iso', 'alice', 67108864, 1, 1048576, 0)", &err);
	vdi_db_close(db);
	return rc;
}

static int
teardown(void **state)
{
	char cmd[160];

	(void)state;
	if (conn)
		virConnectClose(conn);
	conn = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Is volume name in the test driver's pool? */
static bool
vol_there(const char *name)
{
	virStoragePoolPtr p = virStoragePoolLookupByName(conn, POOL);
	virStorageVolPtr v = p ? virStorageVolLookupByName(p, name) : NULL;
	bool there = v != NULL;

	if (v)
		virStorageVolFree(v);
	if (p)
		virStoragePoolFree(p);
	return there;
}

static void
vol_make(const char *name)
{
	virStoragePoolPtr p = virStoragePoolLookupByName(conn, POOL);
	char xml[256];
	virStorageVolPtr v;

	assert_non_null(p);
	snprintf(xml, sizeof(xml), "<volume><name>%s</name><capacity>1048576</capacity>"
		 "<target><format type='qcow2'/></target></volume>", name);
	v = virStorageVolCreateXML(p, xml, 0);
	assert_non_null(v);
	virStorageVolFree(v);
	virStoragePoolFree(p);
}

static int64_t
count(struct vdi_db *db, const char *sql)
{
	struct vdi_stmt *st = NULL;
	struct vdi_err err = { 0 };
	int64_t n = -1;

	assert_int_equal(vdi_db_prepare(db, &st, sql, &err), 0);
	if (vdi_stmt_step(st) == VDI_DB_ROW)
		n = vdi_stmt_int64(st, 0);
	vdi_stmt_finalize(st);
	return n;
}

/* An import whose upload fails: the claimed row and the made volume both go. */
static void
test_import_undo(void **state)
{
	struct vdi_import_opts o = { 0 };
	struct vdi_master m = { 0 };
	struct vdi_err err = { 0 };
	struct vdi_db *db;
	char img[160];
	bool takeover;
	FILE *fp;

	(void)state;
	snprintf(img, sizeof(img), "%s/disk.raw", dir);
	fp = fopen(img, "w");
	assert_non_null(fp);
	for (int i = 0; i < 2 << 20; i++)
		fputc(i & 1 ? 0x55 : 0xaa, fp); /* 2 MiB of sectors, not text */
	fclose(fp);
	assert_int_equal(vdi_db_open(&db, path, 1000, "test", &err), 0);
	o.spec.name = "m2";
	o.spec.os = "linux";
	o.spec.pool = POOL;
	o.spec.source = img;
	o.spec.mem = 1 << 26;
	o.spec.vcpus = 1;
	o.spec.disk = -1;
	o.max_size = 1 << 30;
	o.conns = vdi_conns_new(5000);
	assert_int_equal(vdi_import(db, &o, &m, &takeover, &err), -1);
	assert_int_equal(err.code, VDI_EFAIL);
	if (!strstr(err.msg, "not supported"))
		fail_msg("import: %s", err.msg);
	assert_false(vol_there("master-m2"));
	assert_int_equal(count(db, "SELECT count(*) FROM masters WHERE name = 'm2'"), 0);
	vdi_conns_free(o.conns);
	vdi_db_close(db);
}

/* A copy whose seed upload fails: the disk made first, the seed and the claim all go. */
static void
test_copy_undo(void **state)
{
	struct vdi_copy_req q = { .user = "bob", .master = "m" };
	struct vdi_copy_opts o = { 0 };
	struct vdi_copy_result res;
	struct vdi_err err = { 0 };
	struct vdi_db *db;

	(void)state;
	vol_make("master-m");
	assert_int_equal(vdi_db_open(&db, path, 1000, "test", &err), 0);
	o.conns = vdi_conns_new(5000);
	assert_int_equal(vdi_copy(db, &q, &o, &res, &err), -1);
	assert_int_equal(err.code, VDI_EFAIL);
	assert_string_equal(err.object, "bob");
	assert_false(vol_there("user-bob.qcow2"));
	assert_false(vol_there("user-bob-seed.iso"));
	assert_int_equal(count(db, "SELECT count(*) FROM uservms WHERE username = 'bob'"), 0);
	assert_true(vol_there("master-m"));
	vdi_conns_free(o.conns);
	vdi_db_close(db);
}

/* A start whose domain the host refuses: the overlay goes, the session ends 'failed', capacity comes back. */
static void
test_start_undo(void **state)
{
	struct vdi_start_opts o = { 0 };
	struct vdi_session s;
	struct vdi_err err = { 0 };
	struct vdi_db *db;
	uint64_t rng = 1;

	(void)state;
	vol_make("user-alice.qcow2");
	vol_make("user-alice-seed.iso");
	assert_int_equal(vdi_db_open(&db, path, 1000, "test", &err), 0);
	o.assign.policy = VDI_POLICY_LEAST_SESSIONS;
	o.assign.fallback = VDI_POLICY_LEAST_SESSIONS;
	o.assign.rng = &rng;
	o.domain_type = "qemu";
	o.conns = vdi_conns_new(5000);
	assert_int_equal(vdi_start(db, "alice", 0, &o, &s, &err), -1);
	if (err.code != VDI_EFAIL && err.code != VDI_ENOHOST)
		fail_msg("start: %d %s", err.code, err.msg);
	assert_false(vol_there("s1-alice.qcow2"));
	assert_int_equal(count(db, "SELECT count(*) FROM sessions WHERE state <> 'ended'"), 0);
	assert_int_equal(count(db, "SELECT count(*) FROM sessions WHERE reason = 'failed'"), 1);
	assert_int_equal(count(db, "SELECT sessions + mem_used + vcpus_used FROM hosts WHERE name = 't1'"), 0);
	assert_true(vol_there("user-alice.qcow2"));
	vdi_conns_free(o.conns);
	vdi_db_close(db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_import_undo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_undo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_undo, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
