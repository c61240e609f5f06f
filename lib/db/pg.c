/*
 * pg.c - the PostgreSQL backend of the VMDB seam (db.h), through libpq:
 * the only file of vdi-tools that speaks libpq's API.
 *
 * The rows' files write SQLite's placeholders (?, ?N); prepare() turns them
 * into PostgreSQL's ($N) with SQLite's numbering, outside quotes and
 * comments.  Parameters travel as text, typed by how they were bound: an
 * integer is bigint and a real double precision (so ?1 * 2 is not 32-bit
 * arithmetic), text and NULL are left for the server to infer from where
 * they stand, and a number the SQL skips is text.  Every column comes back
 * as text and is read as the caller asks (a boolean's "t"/"f" reads as 1/0).
 *
 * The write lock.  Every write transaction takes one transaction-level
 * advisory lock (pg_advisory_xact_lock(VDI_APP_ID)) right after BEGIN, the
 * way SQLite's BEGIN IMMEDIATE takes its file's write lock: writers run one
 * at a time, readers never wait, and every invariant the VMDB keeps under
 * SQLite (no host overcommitted, one live session per user, a session ended
 * once) holds unchanged, because each writer reads the rows it decides on
 * under the lock, in READ COMMITTED, after the last writer committed.  The
 * wait is bounded by lock_timeout (the busy timeout); past it: VDI_R_DB_BUSY.
 *
 * Placements (vm-assign's quick path) share that lock instead
 * (pg_advisory_xact_lock_shared): they run beside each other but never
 * beside another writer, and each locks the host rows it reads to decide
 * (FOR UPDATE SKIP LOCKED), so two placements never decide on one host at
 * once and a host another placement holds is passed over, not waited for.
 * The counters a placement's insert changes are on the row it holds.
 *
 * The marker.  A VMDB holds the table vdi_meta (app_id = VDI_APP_ID and the
 * schema version).  A database with no tables in its schema is new and is
 * set up; one with tables but no vdi_meta belongs to another application
 * and is refused untouched.  Migrations (schema/postgresql/, compiled in)
 * run in one transaction under the write lock: DDL is transactional here,
 * so a migration either happens whole or not at all.
 */
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <time.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "clock.h"
#include "mem.h"
#include "engine.h"

/*
 * Statements a connection runs again and again (a batch, vm-watch) are
 * prepared on the server the second time they run, so they are parsed and
 * planned once; a statement run once (a CGI's login) costs no extra round
 * trip.  Keyed by the SQL and its parameters' types.
 */
#define PG_CACHE 128
struct pg_cached {
	char *key;
	unsigned id;       /* 0 until prepared: vdi_pN */
	bool seen;
};

struct pg_db {
	struct vdi_db base;
	PGconn *h;
	struct pg_cached cache[PG_CACHE];
	int ncache;
	unsigned prepared;
	unsigned cursors;      /* cursors declared (their names: vdi_wN) */
	int64_t changes;       /* rows of the last command */
	char state[6];         /* SQLSTATE of the last error ("" none) */
	char *msg;             /* its primary message */
};

struct pg_stmt {
	struct vdi_stmt base;
	char *sql;             /* with $N placeholders */
	int nparams;
	char **vals;           /* owned; NULL is SQL NULL */
	Oid *types;            /* each parameter's type (see set_param) */
	bool *used;            /* does the SQL use parameter i+1? */
	PGresult *res;         /* the executed statement's rows */
	int row, nrows;
	bool done;             /* the last step said DONE: the next one runs it again */
	bool walk;             /* vdi_db_prepare_walk: through a cursor, in batches */
	unsigned cursor;       /* its cursor's number while one is open (0: none) */
	int batch;             /* rows the last FETCH asked for */
};

/* The types a bind gives (pg_type.dat's OIDs; libpq does not export them). */
#define TEXT_OID 25
#define INT8_OID 20
#define FLOAT8_OID 701

#define PG(db) ((struct pg_db *)(db))
#define PGST(st) ((struct pg_stmt *)(st))

/* The VMDB's application id (db.h) in decimal, as SQL wants it: the marker, and the write lock's key. */
#define PG_APP_ID "1447315761"
_Static_assert(VDI_APP_ID == 1447315761, "PG_APP_ID is VDI_APP_ID");
#define PG_LOCK "SELECT pg_advisory_xact_lock(" PG_APP_ID ")"

static void
set_error(struct pg_db *db, const PGresult *res)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *m = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	snprintf(db->state, sizeof(db->state), "%s", s ? s : "");
	free(db->msg);
	if (!m || !*m)
		m = PQerrorMessage(db->h);
	db->msg = vdi_xstrdup(m && *m ? m : "unknown error");
	/* libpq's messages end in a newline and indent with tabs; errors are one line. */
	for (char *p = db->msg; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = (p[1] ? ' ' : '\0');
}

static bool
state_is(const struct pg_db *db, const char *prefix)
{
	return !strncmp(db->state, prefix, strlen(prefix));
}

static int
pg_fail(struct vdi_db *db, const char *what, struct vdi_err *err)
{
	struct pg_db *p = PG(db);

	if (PQstatus(p->h) != CONNECTION_OK || state_is(p, "08") || state_is(p, "57P"))
		return vdi_err_set(err, VDI_R_DB_DOWN, "%s: VMDB %s: the server is gone (%s); try again",
				   what, db->path, p->msg ? p->msg : "connection lost");
	if (state_is(p, "55P03") || state_is(p, "40") || state_is(p, "57014"))
		return vdi_err_set(err, VDI_R_DB_BUSY, "%s: VMDB %s is busy (locked by another command "
				   "past the busy timeout); try again", what, db->path);
	if (state_is(p, "23"))
		return vdi_err_set(err, VDI_R_CONFLICT, "%s: %s", what, p->msg);
	if (state_is(p, "53"))
		return vdi_err_set(err, VDI_R_IO, "%s: VMDB %s: the server is out of resources: %s",
				   what, db->path, p->msg);
	if (state_is(p, "25006"))
		return vdi_err_set(err, VDI_R_FAIL, "%s: VMDB %s is read-only", what, db->path);
	return vdi_err_set(err, VDI_R_FAIL, "%s: %s", what, p->msg ? p->msg : "unknown error");
}

static bool
pg_conflict(struct vdi_db *db)
{
	return state_is(PG(db), "23");
}

static int64_t
pg_changes(struct vdi_db *db)
{
	return PG(db)->changes;
}

static bool
pg_in_tx(struct vdi_db *db)
{
	PGTransactionStatusType t = PQtransactionStatus(PG(db)->h);

	return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

/* A command's result: 0, or -1 with the error kept for pg_fail. */
static int
check(struct pg_db *db, PGresult *res)
{
	ExecStatusType s = PQresultStatus(res);

	if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
		db->changes = strtoll(PQcmdTuples(res), NULL, 10);
		db->state[0] = '\0';
		return 0;
	}
	set_error(db, res);
	return -1;
}

static int
pg_exec(struct vdi_db *db, const char *sql)
{
	PGresult *res = PQexec(PG(db)->h, sql);
	int rc = check(PG(db), res);

	PQclear(res);
	return rc;
}

/*
 * SQLite's placeholders as PostgreSQL's: ?N is $N, and a bare ? is one
 * more than the largest number so far, as SQLite counts.  Quotes, quoted
 * names and comments are copied as they are.
 */
static char *
translate(const char *sql, int *nparams, bool used[static 100])
{
	size_t n = strlen(sql);
	char *out = vdi_xmalloc(n * 4 + 1), *q = out;
	int max = 0;

	for (const char *p = sql; *p;) {
		if (*p == '\'' || *p == '"') {
			char quote = *p;
			*q++ = *p++;
			while (*p && *p != quote)
				*q++ = *p++;
			if (*p)
				*q++ = *p++;
		} else if (p[0] == '-' && p[1] == '-') {
			while (*p && *p != '\n')
				*q++ = *p++;
		} else if (*p == '?') {
			int k;
			p++;
			if (isdigit((unsigned char)*p)) {
				k = (int)strtol(p, (char **)&p, 10);
			} else {
				k = max + 1;
			}
			if (k < 1 || k > 99)
				k = 99; /* SQLite refuses it too; the server says why */
			if (k > max)
				max = k;
			used[k] = true;
			q += sprintf(q, "$%d", k);
		} else {
			*q++ = *p++;
		}
	}
	*q = '\0';
	*nparams = max;
	return out;
}

static int
pg_prepare(struct vdi_db *db, struct vdi_stmt **out, const char *sql)
{
	struct pg_stmt *st = vdi_xcalloc(1, sizeof(*st));
	bool used[100] = { false };

	st->base.db = db;
	st->sql = translate(sql, &st->nparams, used);
	st->vals = vdi_xcalloc((size_t)st->nparams + 1, sizeof(char *));
	st->types = vdi_xcalloc((size_t)st->nparams + 1, sizeof(Oid));
	st->used = vdi_xcalloc((size_t)st->nparams + 1, sizeof(bool));
	for (int i = 1; i <= st->nparams; i++) {
		st->used[i - 1] = used[i];
		st->types[i - 1] = used[i] ? 0 : TEXT_OID;
	}
	*out = &st->base;
	return 0;
}

static bool pg_in_tx(struct vdi_db *db);

static void
drop_result(struct pg_stmt *st)
{
	PQclear(st->res);
	st->res = NULL;
	st->row = st->nrows = 0;
	st->done = false;
	st->cursor = 0; /* an open one ends with its transaction */
}

/*
 * The statement with its parameters as literals, for a DECLARE sent with
 * its first FETCH in one round trip (the simple protocol takes no
 * parameters): text quoted by libpq, numbers cast to their bound types.
 */
static char *
inline_params(struct pg_db *db, const struct pg_stmt *st)
{
	size_t cap = strlen(st->sql) + 64, n = 0;
	char *out = vdi_xmalloc(cap);

	for (const char *p = st->sql; *p;) {
		char lit[96], *esc = NULL;
		const char *add;
		size_t len = 1;

		if (*p == '\'' || *p == '"') {
			const char *e = strchr(p + 1, *p);
			len = e ? (size_t)(e - p) + 1 : strlen(p);
			add = p;
		} else if (*p == '$' && isdigit((unsigned char)p[1])) {
			char *end;
			int k = (int)strtol(p + 1, &end, 10);
			const char *v = k >= 1 && k <= st->nparams ? st->vals[k - 1] : NULL;
			Oid t = k >= 1 && k <= st->nparams ? st->types[k - 1] : 0;
			p = end;
			if (!v)
				add = "NULL";
			else if (t == INT8_OID || t == FLOAT8_OID) {
				snprintf(lit, sizeof(lit), "CAST('%s' AS %s)", v, t == INT8_OID ? "bigint" : "double precision");
				add = lit;
			} else {
				add = esc = PQescapeLiteral(db->h, v, strlen(v));
				if (!esc) {
					free(out);
					return NULL;
				}
			}
			len = strlen(add);
			if (n + len + 1 > cap)
				out = vdi_grow(out, cap = (n + len + 1) * 2, 1);
			memcpy(out + n, add, len);
			n += len;
			PQfreemem(esc);
			continue;
		} else {
			add = p;
		}
		if (n + len + 1 > cap)
			out = vdi_grow(out, cap = (n + len + 1) * 2, 1);
		memcpy(out + n, add, len);
		n += len;
		p += len;
	}
	out[n] = '\0';
	return out;
}

/*
 * A walk's next rows: the first batch with its DECLARE, then each FETCH
 * asks for more (2, 16, 128, 512: most walks stop within the first few;
 * with FOR UPDATE every row fetched is a row locked, and written).
 */
static int
walk_fetch(struct pg_db *db, struct pg_stmt *st)
{
	char *sql = NULL, *q;
	int rc;

	PQclear(st->res);
	st->res = NULL;
	if (!st->cursor) {
		if (!(q = inline_params(db, st)))
			return -1;
		st->cursor = ++db->cursors;
		st->batch = 2;
		if (asprintf(&sql, "DECLARE vdi_w%u NO SCROLL CURSOR FOR %s; FETCH %d FROM vdi_w%u", st->cursor, q,
			     st->batch, st->cursor) < 0)
			sql = NULL;
		free(q);
	} else {
		if (st->batch < 512)
			st->batch *= 8;
		if (asprintf(&sql, "FETCH %d FROM vdi_w%u", st->batch, st->cursor) < 0)
			sql = NULL;
	}
	if (!sql)
		return -1;
	st->res = PQexec(db->h, sql);
	free(sql);
	rc = check(db, st->res);
	st->nrows = rc == 0 ? PQntuples(st->res) : 0;
	st->row = 0;
	return rc;
}

/* The cache's entry for a statement with its types (NULL: the cache is full). */
static struct pg_cached *
cached(struct pg_db *db, const struct pg_stmt *st)
{
	size_t n = strlen(st->sql);
	char *key = vdi_xmalloc(n + (size_t)st->nparams * 11 + 2), *k;
	struct pg_cached *c;

	k = stpcpy(key, st->sql);
	*k++ = '\x01';
	for (int i = 0; i < st->nparams; i++)
		k += sprintf(k, "%u,", st->types[i]);
	*k = '\0';
	for (int i = 0; i < db->ncache; i++)
		if (!strcmp(db->cache[i].key, key)) {
			free(key);
			return &db->cache[i];
		}
	if (db->ncache == PG_CACHE) {
		free(key);
		return NULL;
	}
	c = &db->cache[db->ncache++];
	c->key = key;
	return c;
}

static PGresult *
execute(struct pg_db *db, struct pg_stmt *st)
{
	const char *const *vals = (const char *const *)st->vals;
	struct pg_cached *c = cached(db, st);
	char name[32];

	if (c && !c->id && c->seen) {
		PGresult *r;
		snprintf(name, sizeof(name), "vdi_p%u", db->prepared + 1);
		r = PQprepare(db->h, name, st->sql, st->nparams, st->types);
		if (PQresultStatus(r) == PGRES_COMMAND_OK)
			c->id = ++db->prepared;
		else
			c = NULL; /* run it unprepared: its own error, if any, says why */
		PQclear(r);
	}
	if (!c || !c->id) {
		if (c)
			c->seen = true;
		return PQexecParams(db->h, st->sql, st->nparams, st->types, vals, NULL, NULL, 0);
	}
	snprintf(name, sizeof(name), "vdi_p%u", c->id);
	return PQexecPrepared(db->h, name, st->nparams, vals, NULL, NULL, 0);
}

static int
pg_step(struct vdi_stmt *vst)
{
	struct pg_stmt *st = PGST(vst);
	struct pg_db *db = PG(vst->db);

	if (st->done)
		drop_result(st);
	if (st->walk && (st->cursor || (!st->res && pg_in_tx(vst->db)))) {
		if (!st->res || (st->row + 1 >= st->nrows && st->nrows == st->batch)) {
			if (walk_fetch(db, st) < 0) {
				drop_result(st);
				return VDI_DB_ERROR;
			}
		} else {
			st->row++;
		}
	} else if (!st->res) {
		st->res = execute(db, st);
		if (check(db, st->res) < 0) {
			drop_result(st);
			return VDI_DB_ERROR;
		}
		st->nrows = PQntuples(st->res);
		st->row = 0;
	} else {
		st->row++;
	}
	if (st->row < st->nrows)
		return VDI_DB_ROW;
	st->done = true;
	return VDI_DB_DONE;
}

static int
pg_prepare_walk(struct vdi_db *db, struct vdi_stmt **out, const char *sql)
{
	if (pg_prepare(db, out, sql) < 0)
		return -1;
	PGST(*out)->walk = true;
	return 0;
}

static void
pg_reset(struct vdi_stmt *st)
{
	drop_result(PGST(st));
}

static void
pg_clear(struct vdi_stmt *vst)
{
	struct pg_stmt *st = PGST(vst);

	for (int i = 0; i < st->nparams; i++) {
		free(st->vals[i]);
		st->vals[i] = NULL;
		st->types[i] = st->used[i] ? 0 : TEXT_OID;
	}
}

static void
pg_finalize(struct vdi_stmt *vst)
{
	struct pg_stmt *st = PGST(vst);

	drop_result(st);
	pg_clear(vst);
	free(st->vals);
	free(st->types);
	free(st->used);
	free(st->sql);
	free(st);
}

/*
 * Parameter i is v (owned; NULL for SQL NULL) of type oid (0: the server
 * infers it).  A number the SQL skips (?3 bound by the caller but unused in
 * this variant of a query) has no type to infer: it is text.
 */
static void
set_param(struct vdi_stmt *vst, int i, char *v, Oid oid)
{
	struct pg_stmt *st = PGST(vst);

	if (i < 1 || i > st->nparams) {
		free(v);
		return;
	}
	free(st->vals[i - 1]);
	st->vals[i - 1] = v;
	st->types[i - 1] = st->used[i - 1] ? oid : TEXT_OID;
}

static void
pg_bind_text(struct vdi_stmt *st, int i, const char *s, size_t n)
{
	set_param(st, i, vdi_xstrndup(s, n), 0);
}

static void
pg_bind_int64(struct vdi_stmt *st, int i, int64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%lld", (long long)v);
	set_param(st, i, vdi_xstrdup(buf), INT8_OID);
}

static void
pg_bind_double(struct vdi_stmt *st, int i, double v)
{
	char buf[40];

	snprintf(buf, sizeof(buf), "%.17g", v);
	set_param(st, i, vdi_xstrdup(buf), FLOAT8_OID);
}

static void
pg_bind_null(struct vdi_stmt *st, int i)
{
	set_param(st, i, NULL, 0);
}

static const char *
cell(struct vdi_stmt *vst, int col)
{
	struct pg_stmt *st = PGST(vst);

	if (!st->res || st->row >= st->nrows || col < 0 || col >= PQnfields(st->res) ||
	    PQgetisnull(st->res, st->row, col))
		return NULL;
	return PQgetvalue(st->res, st->row, col);
}

static double
pg_col_double(struct vdi_stmt *st, int col)
{
	const char *v = cell(st, col);

	if (!v)
		return 0;
	if (!strcmp(v, "t") || !strcmp(v, "f"))
		return *v == 't';
	return strtod(v, NULL);
}

static int64_t
pg_col_int64(struct vdi_stmt *st, int col)
{
	const char *v = cell(st, col);
	char *end;
	int64_t x;

	if (!v)
		return 0;
	if (!strcmp(v, "t") || !strcmp(v, "f"))
		return *v == 't';
	x = strtoll(v, &end, 10);
	if (*end == '.' || *end == 'e' || *end == 'E') /* a real read as an integer truncates, as in SQLite */
		x = (int64_t)strtod(v, NULL);
	return x;
}

static const char *
pg_col_text(struct vdi_stmt *st, int col)
{
	return cell(st, col);
}

static bool
pg_col_null(struct vdi_stmt *st, int col)
{
	return cell(st, col) == NULL;
}

/* Where a server's notices would go: nowhere (the library never prints). */
static void
no_notice(void *arg, const PGresult *res)
{
}

/*
 * The name as it may be shown: a password in a URI (postgresql://u:PW@h)
 * or a keyword string (password=PW) becomes "***".
 */
static char *
redact(const char *name)
{
	char *s = vdi_xmalloc(strlen(name) + 8), *at, *colon, *pw;
	const char *p;

	strcpy(s, name);
	if ((p = strstr(name, "://"))) {
		const char *auth = p + 3, *end = auth + strcspn(auth, "/?");
		const char *a = memchr(auth, '@', (size_t)(end - auth));
		const char *c = a ? memchr(auth, ':', (size_t)(a - auth)) : NULL;
		if (c) {
			colon = s + (c - name);
			at = s + (a - name);
			memmove(colon + 4, at, strlen(at) + 1);
			memcpy(colon + 1, "***", 3);
		}
	}
	if ((pw = strstr(s, "password="))) {
		char *v = pw + 9, *e = v;
		if (*e == '\'') {
			for (e++; *e && *e != '\''; e++)
				if (*e == '\\' && e[1])
					e++;
			if (*e)
				e++;
		} else {
			e += strcspn(e, " \t&");
		}
		memmove(v + 3, e, strlen(e) + 1);
		memcpy(v, "***", 3);
	}
	return s;
}

/* One value from a query; *v NULL when the row or the value is absent. */
static int
query_text(struct pg_db *db, const char *sql, char **v, struct vdi_err *err)
{
	PGresult *res = PQexec(db->h, sql);
	int rc = -1;

	*v = NULL;
	if (check(db, res) < 0) {
		pg_fail(&db->base, "VMDB", err);
		goto out;
	}
	if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
		*v = vdi_xstrdup(PQgetvalue(res, 0, 0));
	rc = 0;
out:
	PQclear(res);
	return rc;
}

/*
 * The schema version of this database: -1 if it is new (no tables at all),
 * -2 if it holds another application's tables; else the version.
 */
static int
marker(struct pg_db *db, int *version, struct vdi_err *err)
{
	char *v = NULL;
	long long marked = 0, tables = 0;
	int rc = -1;

	/*
	 * One statement, one snapshot: another command may be making this
	 * database a VMDB right now, and its tables and its marker appear
	 * together, in one commit.
	 */
	if (query_text(db, "SELECT count(*) FILTER (WHERE c.relname = 'vdi_meta') || ' ' || count(*) "
		       "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
		       "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'v', 'p', 'm', 'f')", &v, err) < 0)
		return -1;
	if (!v || sscanf(v, "%lld %lld", &marked, &tables) != 2) {
		free(v);
		return vdi_err_set(err, VDI_R_FAIL, "VMDB %s: cannot read its catalog", db->base.path);
	}
	free(v);
	v = NULL;
	if (marked) {
		if (query_text(db, "SELECT app_id || ' ' || schema_version FROM vdi_meta", &v, err) < 0)
			return -1;
		long long app = 0;
		if (!v || sscanf(v, "%lld %d", &app, version) != 2 || app != VDI_APP_ID)
			*version = -2;
		rc = 0;
		goto out;
	}
	*version = tables == 0 ? -1 : -2;
	rc = 0;
out:
	free(v);
	return rc;
}

static int
not_ours(struct pg_db *db, struct vdi_err *err)
{
	return vdi_err_set(err, VDI_R_FAIL, "%s is not a VMDB: a database of another application "
			   "(it has tables but no vdi_meta marker); refused, nothing was changed", db->base.path);
}

static int
migrate(struct pg_db *db, struct vdi_err *err)
{
	const struct vdi_migration *m = vdi_migrations_pg;
	int v, target = vdi_migrations_count(m);
	char sql[96];

	if (marker(db, &v, err) < 0)
		return -1;
	if (v == -2)
		return not_ours(db, err);
	if (v > target)
		goto newer;
	if (v == target)
		return 0;
	if (db->base.readonly)
		return vdi_err_set(err, VDI_R_FAIL, "VMDB %s is read-only (a standby?) and needs its schema "
				   "made or upgraded to version %d", db->base.path, target);
	if (vdi_db_begin(&db->base, true, err) < 0)
		return -1;
	/* Again under the lock: another command may have set it up meanwhile. */
	if (marker(db, &v, err) < 0)
		goto fail;
	if (v == -2) {
		not_ours(db, err);
		goto fail;
	}
	if (v > target)
		goto newer_fail;
	if (v == -1) {
		if (vdi_db_exec(&db->base, "CREATE TABLE vdi_meta (app_id bigint NOT NULL, schema_version integer "
				"NOT NULL); INSERT INTO vdi_meta VALUES (" PG_APP_ID ", 0)", err) < 0)
			goto fail;
		v = 0;
	}
	for (; v < target; v++) {
		if (pg_exec(&db->base, m[v].sql) < 0) {
			pg_fail(&db->base, m[v].name, err);
			goto fail;
		}
		snprintf(sql, sizeof(sql), "UPDATE vdi_meta SET schema_version = %d", m[v].version);
		if (vdi_db_exec(&db->base, sql, err) < 0)
			goto fail;
	}
	return vdi_db_commit(&db->base, err);
newer_fail:
	vdi_db_rollback(&db->base);
newer:
	return vdi_err_set(err, VDI_R_FAIL, "VMDB %s has schema version %d, newer than this vdi-tools knows "
			   "(%d); use a newer vdi-tools (nothing was changed)", db->base.path, v, target);
fail:
	vdi_db_rollback(&db->base);
	return -1;
}

/* Why a connection failed: the setting is wrong (2), or the server is away (75). */
static int
connect_error(struct pg_db *db, struct vdi_err *err)
{
	const char *m = PQerrorMessage(db->h);
	char line[512];
	size_t n;

	/* libpq tells every address it tried; the last line is the one that matters. */
	snprintf(line, sizeof(line), "%s", m && *m ? m : "cannot connect");
	while ((n = strlen(line)) && line[n - 1] == '\n')
		line[n - 1] = '\0';
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
	if (PQconnectionNeedsPassword(db->h) || strstr(m, "authentication failed") || strstr(m, "does not exist") ||
	    strstr(m, "pg_hba.conf") || strstr(m, "no password supplied"))
		return vdi_err_set(err, VDI_R_USAGE, "cannot open VMDB %s: %s", db->base.path, line);
	return vdi_err_set(err, VDI_R_DB_DOWN, "cannot open VMDB %s: %s; try again", db->base.path, line);
}

/*
 * Connect with the notice receiver in place from the start (a server
 * shutting down may send its FATAL as the connection completes: libpq's
 * default receiver would print it), within timeout_s: libpq does not keep
 * connect_timeout for a connection polled by its caller.
 */
static int
connect_quiet(struct pg_db *p, const char *const *keys, const char *const *vals, int timeout_s,
	      struct vdi_err *err)
{
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	int64_t end = vdi_clock_mono_ms() + (int64_t)timeout_s * 1000;

	if (!(p->h = PQconnectStartParams(keys, vals, 1)))
		return vdi_err_set(err, VDI_R_FAIL, "cannot open VMDB %s: no memory", p->base.path);
	PQsetNoticeReceiver(p->h, no_notice, NULL);
	if (PQstatus(p->h) == CONNECTION_BAD)
		return connect_error(p, err);
	while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
		struct pollfd pfd = { .fd = PQsocket(p->h), .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT };
		int64_t left = end - vdi_clock_mono_ms();
		if (left <= 0)
			return vdi_err_set(err, VDI_R_DB_DOWN, "cannot open VMDB %s: no answer within %d s; try again",
					   p->base.path, timeout_s);
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			return vdi_err_set(err, VDI_R_DB_DOWN, "cannot open VMDB %s: %s; try again", p->base.path,
					   strerror(errno));
		st = PQconnectPoll(p->h);
	}
	return PQstatus(p->h) == CONNECTION_OK ? 0 : connect_error(p, err);
}

static void pg_close(struct vdi_db *db);

static int
pg_open(struct vdi_db **out, const char *name, int64_t busy_ms, struct vdi_err *err)
{
	/* Defaults first: what the VMDB's name says overrides them. */
	const char *keys[] = { "connect_timeout", "application_name", "dbname", NULL };
	const char *vals[] = { "10", "vdi-tools", name, NULL };
	struct pg_db *p = vdi_xcalloc(1, sizeof(*p));
	struct vdi_db *db = &p->base;
	PQconninfoOption *opts;
	char *parse_err = NULL, sql[256], *ro = NULL;
	int timeout_s = 10;

	*out = NULL;
	db->eng = &vdi_db_postgresql;
	db->path = redact(name);
	db->busy_ms = busy_ms;
	if (!(opts = PQconninfoParse(name, &parse_err))) {
		size_t n = parse_err ? strlen(parse_err) : 0;
		if (n && parse_err[n - 1] == '\n')
			parse_err[n - 1] = '\0';
		vdi_err_set(err, VDI_R_USAGE, "VMDB %s: not a PostgreSQL connection string: %s", db->path,
			    parse_err ? parse_err : "no memory");
		PQfreemem(parse_err);
		goto fail;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (!strcmp(o->keyword, "connect_timeout") && o->val && atoi(o->val) > 0)
			timeout_s = atoi(o->val);
	PQconninfoFree(opts);
	if (connect_quiet(p, keys, vals, timeout_s, err) < 0)
		goto fail;
	/*
	 * The busy timeout bounds every wait for a lock.  Over TCP the server
	 * probes a silent client (keepalives), so a machine that vanishes lets
	 * go of its locks (vm-watch's, vm-reap's) within 25 s.
	 */
	snprintf(sql, sizeof(sql), "SET lock_timeout = %lld; SET client_min_messages = warning; "
		 "SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3",
		 (long long)(busy_ms > 0 ? busy_ms : 1));
	if (vdi_db_exec(db, sql, err) < 0 || query_text(p, "SHOW transaction_read_only", &ro, err) < 0)
		goto fail;
	db->readonly = ro && !strcmp(ro, "on");
	free(ro);
	if (migrate(p, err) < 0)
		goto fail;
	*out = db;
	return 0;
fail:
	pg_close(db);
	return -1;
}

/*
 * A session advisory lock on (VDI_APP_ID, a hash of the name): held while
 * this connection lives, seen from every machine (see vdi_db_lock).  The
 * two-key space never meets the write lock's one-key one.
 */
static int
pg_lock(struct vdi_db *db, const char *name, bool wait, int *fd, struct vdi_err *err)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	char sql[160], *v = NULL;
	int rc;

	*fd = -1;
	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	if (wait)
		snprintf(sql, sizeof(sql), "SET lock_timeout = 0; SELECT true FROM pg_advisory_lock(" PG_APP_ID ", %d)",
			 (int32_t)h);
	else
		snprintf(sql, sizeof(sql), "SELECT pg_try_advisory_lock(" PG_APP_ID ", %d)", (int32_t)h);
	rc = query_text(PG(db), sql, &v, err);
	if (wait) {
		snprintf(sql, sizeof(sql), "SET lock_timeout = %lld", (long long)(db->busy_ms > 0 ? db->busy_ms : 1));
		if (rc == 0 && pg_exec(db, sql) < 0)
			rc = pg_fail(db, "VMDB", err);
	}
	if (rc < 0) {
		free(v);
		return -1;
	}
	rc = v && !strcmp(v, "t");
	free(v);
	return rc;
}

/* An identity column's sequence past the rows copied in with their ids (table: the caller's constant). */
static int
pg_sync_ids(struct vdi_db *db, const char *table, struct vdi_err *err)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "SELECT setval(pg_get_serial_sequence('%s', 'id'), coalesce(max(id), 0) + 1, "
		 "false) FROM %s", table, table);
	return vdi_db_exec(db, sql, err);
}

static void
pg_close(struct vdi_db *db)
{
	struct pg_db *p = PG(db);

	if (p->h)
		PQfinish(p->h);
	for (int i = 0; i < p->ncache; i++)
		free(p->cache[i].key);
	free(p->msg);
	free(db->path);
	free(db->program);
	free(db->who);
	free(p);
}

const struct vdi_db_engine vdi_db_postgresql = {
	.name = "PostgreSQL",
	.begin_write = "BEGIN ISOLATION LEVEL READ COMMITTED; " PG_LOCK,
	.begin_placement = "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock_shared(" PG_APP_ID ")",
	.lock_rows = " FOR UPDATE SKIP LOCKED",
	.begin_read = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
	.migrations = vdi_migrations_pg,
	.columns_sql = "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
		       "AND table_name = ?1 AND is_generated = 'NEVER' ORDER BY ordinal_position",
	.sync_ids = pg_sync_ids,
	.open = pg_open,
	.lock = pg_lock,
	.close = pg_close,
	.fail = pg_fail,
	.conflict = pg_conflict,
	.changes = pg_changes,
	.in_tx = pg_in_tx,
	.exec = pg_exec,
	.prepare = pg_prepare,
	.prepare_walk = pg_prepare_walk,
	.step = pg_step,
	.reset = pg_reset,
	.clear = pg_clear,
	.finalize = pg_finalize,
	.bind_text = pg_bind_text,
	.bind_int64 = pg_bind_int64,
	.bind_double = pg_bind_double,
	.bind_null = pg_bind_null,
	.col_int64 = pg_col_int64,
	.col_double = pg_col_double,
	.col_text = pg_col_text,
	.col_null = pg_col_null,
};
