/*
 * vmdb.c - the VMDB as a whole (see vmdb.h): a copy to another engine,
 * checked row by row and counter by counter, and the audit vdi-db check
 * prints.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mem.h"
#include "strv.h"
#include "vmdb.h"

/* Every table, parents before children (the foreign keys' order). */
static const char *const tables[] = {
	"hosts", "host_tags", "host_domains", "masters", "master_apps", "uservms", "uservm_tags",
	"uservm_apps", "homes", "sessions", "consoles", "events", "kv", "requests", "form_tokens", "counters", "grants",
	"group_limits",
};
#define NTABLES (sizeof(tables) / sizeof(tables[0]))

/* Kept by the session triggers: counted again as the sessions arrive, never copied. */
static const char *const counters[] = { "sessions", "mem_used", "vcpus_used" };

static int
count_rows(struct vdi_db *db, const char *table, int64_t *n, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	char sql[128];
	int rc;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	if (vdi_db_prepare(db, &st, sql, err) < 0)
		return -1;
	rc = vdi_stmt_step(st);
	*n = rc == VDI_DB_ROW ? vdi_stmt_int64(st, 0) : 0;
	vdi_stmt_finalize(st);
	return rc == VDI_DB_ROW ? 0 : vdi_db_fail(db, table, err);
}

static int
drifted(struct vdi_db *db, int64_t *n, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int rc;

	if (vdi_db_prepare(db, &st, "SELECT count(*) FROM host_usage_check WHERE sessions <> sessions_real OR "
			   "mem_used <> mem_used_real OR vcpus_used <> vcpus_used_real", err) < 0)
		return -1;
	rc = vdi_stmt_step(st);
	*n = rc == VDI_DB_ROW ? vdi_stmt_int64(st, 0) : 0;
	vdi_stmt_finalize(st);
	return rc == VDI_DB_ROW ? 0 : vdi_db_fail(db, "auditing the counters", err);
}

static void
report_init(struct vdi_vmdb_report *r)
{
	memset(r, 0, sizeof(*r));
	r->tables = vdi_xcalloc(NTABLES, sizeof(*r->tables));
	r->ntables = NTABLES;
	for (size_t i = 0; i < NTABLES; i++)
		r->tables[i].name = tables[i];
}

void
vdi_vmdb_report_clear(struct vdi_vmdb_report *r)
{
	free(r->tables);
	memset(r, 0, sizeof(*r));
}

int
vdi_vmdb_check(struct vdi_db *db, struct vdi_vmdb_report *r, struct vdi_err *err)
{
	bool began;
	int ret = -1;

	report_init(r);
	if (vdi_db_read_begin(db, &began, err) < 0)
		return -1;
	for (size_t i = 0; i < NTABLES; i++)
		if (count_rows(db, tables[i], &r->tables[i].rows, err) < 0)
			goto out;
	if (drifted(db, &r->drifted, err) < 0)
		goto out;
	ret = 0;
out:
	vdi_db_read_end(db, began);
	return ret;
}

static bool
is_counter(const char *table, const char *col)
{
	if (strcmp(table, "hosts") != 0)
		return false;
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
		if (strcmp(col, counters[i]) == 0)
			return true;
	return false;
}

/* src's stored columns that dst has too (dst's counters left for its triggers), as "a, b, c". */
static int
common_columns(struct vdi_db *src, struct vdi_db *dst, const char *table, char *list, size_t len, int *ncols,
	       struct vdi_err *err)
{
	char **a = NULL, **b = NULL;
	size_t na = 0, nb = 0, o = 0;
	int ret = -1;

	*ncols = 0;
	list[0] = '\0';
	if (vdi_db_columns(src, table, &a, &na, err) < 0 || vdi_db_columns(dst, table, &b, &nb, err) < 0)
		goto out;
	for (size_t i = 0; i < na; i++) {
		bool there = false;
		for (size_t j = 0; j < nb && !there; j++)
			there = strcmp(a[i], b[j]) == 0;
		if (!there || is_counter(table, a[i]))
			continue;
		o += (size_t)snprintf(list + o, len > o ? len - o : 0, "%s%s", *ncols ? ", " : "", a[i]);
		(*ncols)++;
	}
	if (o >= len) {
		vdi_err_set(err, VDI_R_FAIL, "table %s: too many columns", table);
		goto out;
	}
	ret = 0;
out:
	vdi_strv_free(a, na);
	vdi_strv_free(b, nb);
	return ret;
}

/* Every row of one table, as text (NULL stays NULL): each engine reads its own types back. */
static int
copy_table(struct vdi_db *src, struct vdi_db *dst, const char *table, int64_t *copied, struct vdi_err *err)
{
	struct vdi_stmt *from = NULL, *to = NULL;
	char cols[2048], sql[4096];
	size_t o;
	int ncols, rc, ret = -1;

	*copied = 0;
	if (common_columns(src, dst, table, cols, sizeof(cols), &ncols, err) < 0)
		return -1;
	snprintf(sql, sizeof(sql), "SELECT %s FROM %s", cols, table);
	if (vdi_db_prepare(src, &from, sql, err) < 0)
		goto out;
	o = (size_t)snprintf(sql, sizeof(sql), "INSERT INTO %s (%s) VALUES (", table, cols);
	for (int i = 0; i < ncols && o < sizeof(sql); i++)
		o += (size_t)snprintf(sql + o, sizeof(sql) - o, "%s?%d", i ? ", " : "", i + 1);
	if (o + 2 >= sizeof(sql)) {
		vdi_err_set(err, VDI_R_FAIL, "table %s: too many columns", table);
		goto out;
	}
	strcat(sql, ")");
	if (vdi_db_prepare(dst, &to, sql, err) < 0)
		goto out;
	while ((rc = vdi_stmt_step(from)) == VDI_DB_ROW) {
		vdi_stmt_reset(to);
		vdi_stmt_clear(to);
		for (int i = 0; i < ncols; i++)
			if (!vdi_stmt_null(from, i))
				vdi_stmt_bind_text(to, i + 1, vdi_stmt_text(from, i));
		if (vdi_db_step(dst, to, table, err) < 0)
			goto out;
		(*copied)++;
	}
	if (rc != VDI_DB_DONE) {
		vdi_db_fail(src, table, err);
		goto out;
	}
	/* A table with ids of its own: its id generator goes past the ids copied in. */
	ret = !strncmp(cols, "id, ", 4) ? vdi_db_sync_ids(dst, table, err) : 0;
out:
	vdi_stmt_finalize(from);
	vdi_stmt_finalize(to);
	return ret;
}

/* Is src in use: a singleton running, or a claim alive?  0 free (its locks held in fds), -1 err (busy). */
static int
in_use(struct vdi_db *src, int fds[3], struct vdi_err *err)
{
	static const char *const singles[] = { "watch", "reap", "rebalance" };
	int64_t n;
	static const char *const claimed[] = {
		"SELECT 'master ' || name, coalesce(pid, 0), owner, coalesce(lease, 0) FROM masters "
		"WHERE state = 'importing'",
		"SELECT 'user VM ' || username, coalesce(pid, 0), owner, coalesce(lease, 0) FROM uservms "
		"WHERE state IN ('creating', 'preparing')",
		"SELECT 'session ' || id, coalesce(pid, 0), owner, coalesce(lease, 0) FROM sessions "
		"WHERE state IN ('starting', 'stopping', 'migrating')",
	};

	for (size_t i = 0; i < 3; i++) {
		int rc = vdi_db_lock(src, singles[i], false, &fds[i], err);
		if (rc < 0)
			return -1;
		if (rc == 0)
			return vdi_err_set(err, VDI_R_BUSY, "VMDB %s is in use: a vm-%s runs on it; stop it first",
					   vdi_db_path(src), singles[i]);
	}
	for (size_t i = 0; i < 3; i++) {
		struct vdi_stmt *st = NULL;
		char owner[160], what[160] = "";
		int64_t lease;
		bool alive = false;
		int rc;

		if (vdi_db_prepare(src, &st, claimed[i], err) < 0)
			return -1;
		while (!alive && (rc = vdi_stmt_step(st)) == VDI_DB_ROW) {
			vdi_stmt_claim(st, 2, owner, sizeof(owner), &lease);
			alive = vdi_claim_alive(vdi_stmt_int64(st, 1), owner, lease);
			snprintf(what, sizeof(what), "%s", vdi_stmt_text(st, 0));
		}
		vdi_stmt_finalize(st);
		if (alive)
			return vdi_err_set(err, VDI_R_BUSY, "VMDB %s is in use: %s is being worked on; try again when it "
					   "is done", vdi_db_path(src), what);
	}
	/* A move left half-done counts on two hosts: vm-reap settles it first. */
	if (count_rows(src, "sessions WHERE state = 'migrating'", &n, err) < 0)
		return -1;
	if (n > 0)
		return vdi_err_set(err, VDI_R_BUSY, "VMDB %s has %lld sessions left moving between hosts; run "
				   "vm-reap first", vdi_db_path(src), (long long)n);
	return 0;
}

/* Each host's counters, as dst's triggers counted them, against src's. */
static int
same_counters(struct vdi_db *src, struct vdi_db *dst, struct vdi_err *err)
{
	static const char sql[] = "SELECT id, sessions, mem_used, vcpus_used FROM hosts ORDER BY id";
	struct vdi_stmt *a = NULL, *b = NULL;
	int ra, rb, ret = -1;

	if (vdi_db_prepare(src, &a, sql, err) < 0 || vdi_db_prepare(dst, &b, sql, err) < 0)
		goto out;
	for (;;) {
		ra = vdi_stmt_step(a);
		rb = vdi_stmt_step(b);
		if (ra == VDI_DB_ERROR || rb == VDI_DB_ERROR) {
			vdi_db_fail(ra == VDI_DB_ERROR ? src : dst, "comparing the counters", err);
			goto out;
		}
		if (ra != rb) {
			vdi_err_set(err, VDI_R_FAIL, "the copy does not hold the same hosts; nothing was kept");
			goto out;
		}
		if (ra == VDI_DB_DONE)
			break;
		if (vdi_stmt_int64(a, 0) != vdi_stmt_int64(b, 0)) {
			vdi_err_set(err, VDI_R_FAIL, "the copy does not hold the same hosts; nothing was kept");
			goto out;
		}
		for (int c = 1; c < 4; c++)
			if (vdi_stmt_int64(a, c) != vdi_stmt_int64(b, c)) {
				vdi_err_set(err, VDI_R_FAIL, "host %lld: its %s counter is %lld in the VMDB but its "
					    "sessions add up to %lld in the copy (see vdi-db check); nothing was kept",
					    (long long)vdi_stmt_int64(a, 0), counters[c - 1],
					    (long long)vdi_stmt_int64(a, c), (long long)vdi_stmt_int64(b, c));
				goto out;
			}
	}
	ret = 0;
out:
	vdi_stmt_finalize(a);
	vdi_stmt_finalize(b);
	return ret;
}

int
vdi_vmdb_backup(struct vdi_db *db, const char *path, struct vdi_err *err)
{
	return vdi_db_backup(db, path, err);
}

int
vdi_vmdb_restore(struct vdi_db *db, const char *path, struct vdi_err *err)
{
	int fds[3] = { -1, -1, -1 };
	int ret = -1;

	if (in_use(db, fds, err) < 0)
		goto out;
	ret = vdi_db_restore(db, path, err);
out:
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return ret;
}

int
vdi_vmdb_copy(struct vdi_db *src, struct vdi_db *dst, struct vdi_vmdb_report *r, struct vdi_err *err)
{
	int fds[3] = { -1, -1, -1 };
	int64_t n;
	int ret = -1;

	report_init(r);
	if (in_use(src, fds, err) < 0)
		goto unlock;
	/* The source holds still: its write lock for the copy's length. */
	if (vdi_db_begin(src, true, err) < 0)
		goto unlock;
	if (vdi_db_begin(dst, true, err) < 0)
		goto out;
	for (size_t i = 0; i < NTABLES; i++) {
		if (count_rows(dst, tables[i], &n, err) < 0)
			goto out;
		if (n > 0) {
			vdi_err_set(err, VDI_R_EXISTS, "%s is not empty (%lld rows in %s): a copy goes into a new "
				    "database only; nothing was changed", vdi_db_path(dst), (long long)n, tables[i]);
			goto out;
		}
	}
	for (size_t i = 0; i < NTABLES; i++) {
		struct vdi_vmdb_table *t = &r->tables[i];
		/* The events copied in were counted by dst's trigger: the counters come from src instead. */
		if (strcmp(t->name, "counters") == 0 && vdi_db_exec(dst, "DELETE FROM counters", err) < 0)
			goto out;
		if (count_rows(src, t->name, &t->rows, err) < 0 || copy_table(src, dst, t->name, &t->copied, err) < 0)
			goto out;
		if (count_rows(dst, t->name, &n, err) < 0)
			goto out;
		if (n != t->rows || t->copied != t->rows) {
			vdi_err_set(err, VDI_R_FAIL, "table %s: %lld rows in the VMDB, %lld in the copy; nothing was "
				    "kept", t->name, (long long)t->rows, (long long)n);
			goto out;
		}
	}
	if (same_counters(src, dst, err) < 0 || drifted(dst, &r->drifted, err) < 0)
		goto out;
	if (r->drifted) {
		vdi_err_set(err, VDI_R_FAIL, "%lld hosts' counters disagree with their sessions in the copy; nothing "
			    "was kept", (long long)r->drifted);
		goto out;
	}
	ret = vdi_db_commit(dst, err);
out:
	if (ret < 0)
		vdi_db_rollback(dst);
	vdi_db_rollback(src);
unlock:
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return ret;
}
