/*
 * db.c - the VMDB seam (see db.h): what every engine shares (transactions
 * with -n, claims, who acts; events are event.c's), and the calls that go to the
 * engine a VMDB was opened with (engine.h).
 */
#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "mem.h"
#include "proc.h"
#include "strv.h"
#include "engine.h"

int
vdi_migrations_count(const struct vdi_migration *m)
{
	int n = 0;

	while (m[n].sql)
		n++;
	return n;
}

int
vdi_db_schema_version(void)
{
	return vdi_migrations_count(vdi_migrations);
}

bool
vdi_db_name_is_pg(const char *name)
{
	size_t k;

	if (!strncmp(name, "postgresql://", 13) || !strncmp(name, "postgres://", 11))
		return true;
	/* A libpq keyword string: KEYWORD= first (a path never starts so in practice). */
	k = strspn(name, "abcdefghijklmnopqrstuvwxyz_");
	return k > 0 && name[k + strspn(name + k, " ")] == '=';
}

const char *
vdi_db_engine_name(const struct vdi_db *db)
{
	return db->eng->name;
}

const char *
vdi_db_indexed_by(const struct vdi_db *db, const char *index, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s", db->eng->indexed_by && index ? " INDEXED BY " : "",
		 db->eng->indexed_by && index ? index : "");
	return buf;
}

static char *
actor_name(void)
{
	const char *s = getenv("SUDO_USER");
	struct passwd *pw;

	if (!s || !*s)
		s = getenv("USER");
	if ((!s || !*s) && (pw = getpwuid(getuid())))
		s = pw->pw_name;
	return vdi_xstrdup(s && *s ? s : "unknown");
}

/* The engine a VMDB's name asks for. */
static const struct vdi_db_engine *
engine_of(const char *name)
{
	return vdi_db_name_is_pg(name) ? &vdi_db_postgresql : &vdi_db_sqlite;
}

int
vdi_db_open(struct vdi_db **out, const char *path, int64_t busy_ms,
	    const char *program, struct vdi_err *err)
{
	const struct vdi_db_engine *eng;
	struct vdi_db *db = NULL;

	*out = NULL;
	eng = engine_of(path);
	if (eng->open(&db, path, busy_ms, err) < 0)
		return -1;
	db->name = vdi_xstrdup(path);
	db->program = vdi_xstrdup(program);
	db->who = actor_name();
	*out = db;
	return 0;
}

int
vdi_db_reopen(struct vdi_db *db, struct vdi_db **out, struct vdi_err *err)
{
	if (vdi_db_open(out, db->name, db->busy_ms, db->program, err) < 0)
		return -1;
	vdi_db_set_who(*out, db->who);
	(*out)->dry_run = db->dry_run;
	return 0;
}

void
vdi_db_close(struct vdi_db *db)
{
	if (db) {
		free(db->name);
		db->eng->close(db);
	}
}

const char *
vdi_db_path(const struct vdi_db *db)
{
	return db->path;
}

bool
vdi_db_readonly(const struct vdi_db *db)
{
	return db->readonly;
}

const char *
vdi_db_program(const struct vdi_db *db)
{
	return db->program;
}

const char *
vdi_db_who(const struct vdi_db *db)
{
	return db->who;
}

void
vdi_db_set_who(struct vdi_db *db, const char *who)
{
	free(db->who);
	db->who = vdi_xstrdup(who);
}

void
vdi_db_set_dry_run(struct vdi_db *db, bool dry_run)
{
	db->dry_run = dry_run;
}

bool
vdi_db_dry_run(const struct vdi_db *db)
{
	return db->dry_run;
}

int
vdi_db_fail(struct vdi_db *db, const char *what, struct vdi_err *err)
{
	return db->eng->fail(db, what, err);
}

bool
vdi_db_conflict(struct vdi_db *db)
{
	return db->eng->conflict(db);
}

int64_t
vdi_db_changes(struct vdi_db *db)
{
	return db->eng->changes(db);
}

bool
vdi_db_in_tx(struct vdi_db *db)
{
	return db->eng->in_tx(db);
}

int
vdi_db_exec(struct vdi_db *db, const char *sql, struct vdi_err *err)
{
	if (db->eng->exec(db, sql) < 0)
		return vdi_db_fail(db, "VMDB", err);
	return 0;
}

int
vdi_db_prepare(struct vdi_db *db, struct vdi_stmt **st, const char *sql, struct vdi_err *err)
{
	if (db->eng->prepare(db, st, sql) < 0)
		return vdi_db_fail(db, "VMDB query", err);
	return 0;
}

int
vdi_db_prepare_walk(struct vdi_db *db, struct vdi_stmt **st, const char *sql, struct vdi_err *err)
{
	if ((db->eng->prepare_walk ? db->eng->prepare_walk : db->eng->prepare)(db, st, sql) < 0)
		return vdi_db_fail(db, "VMDB query", err);
	return 0;
}

int
vdi_db_step(struct vdi_db *db, struct vdi_stmt *st, const char *what, struct vdi_err *err)
{
	if (vdi_stmt_step(st) == VDI_DB_ERROR)
		return vdi_db_fail(db, what, err);
	return 0;
}

int
vdi_db_step_row(struct vdi_db *db, struct vdi_stmt *st, const char *what, struct vdi_err *err)
{
	switch (vdi_stmt_step(st)) {
	case VDI_DB_ROW:
		return 1;
	case VDI_DB_DONE:
		return 0;
	default:
		return vdi_db_fail(db, what, err);
	}
}

int
vdi_db_begin(struct vdi_db *db, bool write, struct vdi_err *err)
{
	return vdi_db_exec(db, write ? db->eng->begin_write : db->eng->begin_read, err);
}

int
vdi_db_begin_placement(struct vdi_db *db, bool *shared, struct vdi_err *err)
{
	*shared = db->eng->begin_placement != NULL;
	return vdi_db_exec(db, *shared ? db->eng->begin_placement : db->eng->begin_write, err);
}

const char *
vdi_db_lock_rows(const struct vdi_db *db)
{
	return db->eng->lock_rows ? db->eng->lock_rows : "";
}

int
vdi_db_read_begin(struct vdi_db *db, bool *began, struct vdi_err *err)
{
	*began = false;
	if (vdi_db_in_tx(db))
		return 0;
	if (vdi_db_begin(db, false, err) < 0)
		return -1;
	*began = true;
	return 0;
}

void
vdi_db_read_end(struct vdi_db *db, bool began)
{
	if (began)
		vdi_db_rollback(db);
}

int
vdi_db_commit(struct vdi_db *db, struct vdi_err *err)
{
	if (db->dry_run) {
		vdi_db_rollback(db);
		return 0;
	}
	if (vdi_db_exec(db, "COMMIT", err) < 0) {
		vdi_db_rollback(db);
		return -1;
	}
	return 0;
}

int
vdi_db_finish(struct vdi_db *db, int ret, struct vdi_err *err)
{
	if (ret == 0)
		return vdi_db_commit(db, err);
	vdi_db_rollback(db);
	return -1;
}

void
vdi_db_rollback(struct vdi_db *db)
{
	if (vdi_db_in_tx(db))
		(void)db->eng->exec(db, "ROLLBACK");
}

/* ---- statements: straight to the engine ---- */

int
vdi_stmt_step(struct vdi_stmt *st)
{
	return st->db->eng->step(st);
}

void
vdi_stmt_reset(struct vdi_stmt *st)
{
	st->db->eng->reset(st);
}

void
vdi_stmt_clear(struct vdi_stmt *st)
{
	st->db->eng->clear(st);
}

void
vdi_stmt_finalize(struct vdi_stmt *st)
{
	if (st)
		st->db->eng->finalize(st);
}

void
vdi_stmt_bind_text(struct vdi_stmt *st, int i, const char *s)
{
	if (s)
		st->db->eng->bind_text(st, i, s, strlen(s));
	else
		st->db->eng->bind_null(st, i);
}

void
vdi_stmt_bind_textn(struct vdi_stmt *st, int i, const char *s, size_t n)
{
	st->db->eng->bind_text(st, i, s, n);
}

void
vdi_stmt_bind_int64(struct vdi_stmt *st, int i, int64_t v)
{
	st->db->eng->bind_int64(st, i, v);
}

void
vdi_stmt_bind_int(struct vdi_stmt *st, int i, int v)
{
	st->db->eng->bind_int64(st, i, v);
}

void
vdi_stmt_bind_double(struct vdi_stmt *st, int i, double v)
{
	st->db->eng->bind_double(st, i, v);
}

void
vdi_stmt_bind_null(struct vdi_stmt *st, int i)
{
	st->db->eng->bind_null(st, i);
}

int64_t
vdi_stmt_int64(struct vdi_stmt *st, int col)
{
	return st->db->eng->col_int64(st, col);
}

int
vdi_stmt_int(struct vdi_stmt *st, int col)
{
	return (int)st->db->eng->col_int64(st, col);
}

double
vdi_stmt_double(struct vdi_stmt *st, int col)
{
	return st->db->eng->col_double(st, col);
}

const char *
vdi_stmt_text(struct vdi_stmt *st, int col)
{
	return st->db->eng->col_text(st, col);
}

bool
vdi_stmt_null(struct vdi_stmt *st, int col)
{
	return st->db->eng->col_null(st, col);
}

char *
vdi_stmt_strdup(struct vdi_stmt *st, int col)
{
	const char *t = vdi_stmt_text(st, col);

	return t ? vdi_xstrdup(t) : NULL;
}

/* ---- shared by every row's file ---- */

int
vdi_db_lock(struct vdi_db *db, const char *name, bool wait, int *fd, struct vdi_err *err)
{
	*fd = -1;
	return db->eng->lock(db, name, wait, fd, err);
}

bool
vdi_claim_alive(int64_t pid, const char *owner, int64_t lease)
{
	int local;

	if (pid <= 0)
		return false;
	if (!owner || !*owner) /* a row of an older vdi-tools: its pid is all there is */
		return kill((pid_t)pid, 0) == 0 || errno == EPERM;
	if ((local = vdi_proc_owner_alive(owner)) >= 0)
		return local == 1;
	return lease > vdi_clock_now();
}

bool
vdi_claim_elsewhere(int64_t pid, const char *owner, int64_t lease)
{
	bool mine = owner && *owner ? strcmp(owner, vdi_proc_owner()) == 0 : pid == getpid();

	return !mine && vdi_claim_alive(pid, owner, lease);
}

void
vdi_stmt_claim(struct vdi_stmt *st, int col, char *owner, size_t len, int64_t *lease)
{
	const char *o = vdi_stmt_text(st, col);

	snprintf(owner, len, "%s", o ? o : "");
	*lease = vdi_stmt_int64(st, col + 1);
}

/* What the renewing thread opens its connection from (copied: the caller's handle may close first). */
struct renewer {
	char *name, *program, *who;
	int64_t busy_ms;
};

/*
 * The renewing thread, for the process's life: every VDI_CLAIM_LEASE / 3
 * seconds the leases of this owner's claims go VDI_CLAIM_LEASE further.
 * Its connection is opened at the first renewal, so a short process (a
 * login) pays nothing for it.
 */
static void *
renew_leases(void *arg)
{
	struct renewer *r = arg;
	struct vdi_db *db = NULL;
	const char *me = vdi_proc_owner();
	static const char *const tables[] = { "masters", "uservms", "sessions" };
	char sql[128];

	for (;;) {
		sleep(VDI_CLAIM_LEASE / 3);
		if (!db) {
			if (vdi_db_open(&db, r->name, r->busy_ms, r->program, VDI_ERR_SCRATCH) < 0)
				continue;
			vdi_db_set_who(db, r->who);
		}
		if (vdi_db_begin(db, true, VDI_ERR_SCRATCH) < 0)
			continue;
		for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
			struct vdi_stmt *st = NULL;
			snprintf(sql, sizeof(sql), "UPDATE %s SET lease = ?1 WHERE owner = ?2 AND pid IS NOT NULL",
				 tables[i]);
			if (vdi_db_prepare(db, &st, sql, VDI_ERR_SCRATCH) == 0) {
				vdi_stmt_bind_int64(st, 1, vdi_clock_now() + VDI_CLAIM_LEASE);
				vdi_stmt_bind_text(st, 2, me);
				(void)vdi_stmt_step(st);
			}
			vdi_stmt_finalize(st);
		}
		(void)vdi_db_commit(db, VDI_ERR_SCRATCH);
	}
	return NULL;
}

static pthread_mutex_t renew_mu = PTHREAD_MUTEX_INITIALIZER;
static bool renewing;

void
vdi_db_bind_claim(struct vdi_db *db, struct vdi_stmt *st, int i)
{
	static struct renewer r; /* the thread's for the process's life */
	pthread_t t;

	vdi_stmt_bind_text(st, i, vdi_proc_owner());
	vdi_stmt_bind_int64(st, i + 1, vdi_clock_now() + VDI_CLAIM_LEASE);
	pthread_mutex_lock(&renew_mu);
	if (!renewing && !db->dry_run) {
		r.name = vdi_xstrdup(db->name);
		r.program = vdi_xstrdup(db->program);
		r.who = vdi_xstrdup(db->who);
		r.busy_ms = db->busy_ms;
		if (pthread_create(&t, NULL, renew_leases, &r) == 0) {
			pthread_detach(t);
			renewing = true;
		}
	}
	pthread_mutex_unlock(&renew_mu);
}

int
vdi_db_claim(struct vdi_db *db, const char *table, const char *key_col, const char *key,
	     const char *claim_state, const char *noun, const char *taken, const char *doing,
	     bool *takeover, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	char sql[160], owner[160];
	int64_t id, pid, lease;
	int rc, ret = -1;

	*takeover = false;
	snprintf(sql, sizeof(sql), "SELECT id, state = ?2, coalesce(pid, 0), owner, coalesce(lease, 0) FROM %s "
		 "WHERE %s = ?1", table, key_col);
	if (vdi_db_prepare(db, &st, sql, err) < 0)
		return -1;
	vdi_stmt_bind_text(st, 1, key);
	vdi_stmt_bind_text(st, 2, claim_state);
	rc = vdi_stmt_step(st);
	if (rc == VDI_DB_DONE) {
		ret = 0;
		goto out;
	}
	if (rc != VDI_DB_ROW) {
		vdi_db_fail(db, table, err);
		goto out;
	}
	id = vdi_stmt_int64(st, 0);
	pid = vdi_stmt_int64(st, 2);
	vdi_stmt_claim(st, 3, owner, sizeof(owner), &lease);
	if (!vdi_stmt_int(st, 1)) {
		vdi_err_set(err, VDI_R_EXISTS, "%s '%s' %s", noun, key, taken);
		goto out;
	}
	if (vdi_claim_elsewhere(pid, owner, lease)) {
		vdi_err_set(err, VDI_R_BUSY, "%s '%s' is being %s by process %lld", noun, key, doing,
			    (long long)pid);
		goto out;
	}
	vdi_stmt_finalize(st);
	/* Its claimant died half-way: the caller starts over under its own pid. */
	snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE id = ?", table);
	if (vdi_db_prepare(db, &st, sql, err) < 0)
		return -1;
	vdi_stmt_bind_int64(st, 1, id);
	if (vdi_stmt_step(st) != VDI_DB_DONE) {
		vdi_db_fail(db, table, err);
		goto out;
	}
	*takeover = true;
	ret = 0;
out:
	vdi_stmt_finalize(st);
	return ret;
}

int
vdi_db_insert_names(struct vdi_db *db, const char *sql, int64_t id, char *const *names, size_t n,
		    const char *what, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int ret = -1;

	if (vdi_db_prepare(db, &st, sql, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		vdi_stmt_reset(st);
		vdi_stmt_bind_int64(st, 1, id);
		vdi_stmt_bind_text(st, 2, names[i]);
		if (vdi_db_step(db, st, what, err) < 0)
			goto out;
	}
	ret = 0;
out:
	vdi_stmt_finalize(st);
	return ret;
}

int
vdi_db_columns(struct vdi_db *db, const char *table, char ***names, size_t *n, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int rc;

	*names = NULL;
	*n = 0;
	if (vdi_db_prepare(db, &st, db->eng->columns_sql, err) < 0)
		return -1;
	vdi_stmt_bind_text(st, 1, table);
	while ((rc = vdi_stmt_step(st)) == VDI_DB_ROW)
		vdi_strv_push(names, n, vdi_stmt_strdup(st, 0));
	vdi_stmt_finalize(st);
	if (rc != VDI_DB_DONE) {
		vdi_strv_free(*names, *n);
		*names = NULL;
		*n = 0;
		return vdi_db_fail(db, "reading the columns", err);
	}
	return 0;
}

int
vdi_db_backup(struct vdi_db *db, const char *path, struct vdi_err *err)
{
	if (!db->eng->backup)
		return vdi_err_set(err, VDI_R_USAGE, "a %s VMDB is backed up with its own tools (pg_dump -Fc; see "
				   "vdi-db(1))", db->eng->name);
	return db->eng->backup(db, path, err);
}

int
vdi_db_restore(struct vdi_db *db, const char *path, struct vdi_err *err)
{
	if (!db->eng->restore)
		return vdi_err_set(err, VDI_R_USAGE, "a %s VMDB is restored with its own tools (pg_restore; see "
				   "vdi-db(1))", db->eng->name);
	if (db->readonly)
		return vdi_err_set(err, VDI_R_FAIL, "VMDB %s is read-only; nothing was restored", db->path);
	return db->eng->restore(db, path, err);
}

int
vdi_db_sync_ids(struct vdi_db *db, const char *table, struct vdi_err *err)
{
	return db->eng->sync_ids ? db->eng->sync_ids(db, table, err) : 0;
}
