/*
 * sqlite.c - the SQLite backend of the VMDB seam (db.h): the only file of
 * vdi-tools that speaks SQLite's API.
 *
 * Creation is race-free: the file is made with O_CREAT|O_EXCL at 0600
 * before SQLite opens it, and migrations run inside BEGIN IMMEDIATE with
 * user_version checked again under the lock, so two commands that meet a
 * new VMDB at once apply each migration exactly once.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "clock.h"
#include "file.h"
#include "mem.h"
#include "engine.h"

struct sq_db {
	struct vdi_db base;
	sqlite3 *h;
	int64_t busy_since;          /* when the busy handler began waiting (its timeout: base.busy_ms) */
	uint32_t rng;                /* its random sleeps */
	bool no_wait;                /* busy means give up now (a checkpoint that can wait) */
	int wal_frames;              /* frames in the WAL after our last commit */
};

struct sq_stmt {
	struct vdi_stmt base;
	sqlite3_stmt *h;
};

#define SQ(db) ((struct sq_db *)(db))
#define SQST(st) (((struct sq_stmt *)(st))->h)

static int
sq_fail(struct vdi_db *db, const char *what, struct vdi_err *err)
{
	int rc = sqlite3_extended_errcode(SQ(db)->h);

	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return vdi_err_set(err, VDI_R_DB_BUSY, "%s: VMDB %s is busy (locked by another command "
				   "past the busy timeout); try again", what, db->path);
	case SQLITE_READONLY:
		return vdi_err_set(err, VDI_R_FAIL, "%s: VMDB %s is read-only", what, db->path);
	case SQLITE_CONSTRAINT:
		return vdi_err_set(err, VDI_R_CONFLICT, "%s: %s", what, sqlite3_errmsg(SQ(db)->h));
	case SQLITE_NOTADB:
		return vdi_err_set(err, VDI_R_FAIL, "%s is not a VMDB (not an SQLite database)", db->path);
	case SQLITE_FULL:
		return vdi_err_set(err, VDI_R_IO, "%s: VMDB %s: disk full", what, db->path);
	case SQLITE_IOERR:
		return vdi_err_set(err, VDI_R_IO, "%s: VMDB %s: I/O error: %s", what, db->path,
				   sqlite3_errmsg(SQ(db)->h));
	default:
		return vdi_err_set(err, VDI_R_FAIL, "%s: %s", what, sqlite3_errmsg(SQ(db)->h));
	}
}

static bool
sq_conflict(struct vdi_db *db)
{
	return (sqlite3_extended_errcode(SQ(db)->h) & 0xff) == SQLITE_CONSTRAINT;
}

static int64_t
sq_changes(struct vdi_db *db)
{
	return sqlite3_changes(SQ(db)->h);
}

static bool
sq_in_tx(struct vdi_db *db)
{
	return !sqlite3_get_autocommit(SQ(db)->h);
}

static int
sq_exec(struct vdi_db *db, const char *sql)
{
	return sqlite3_exec(SQ(db)->h, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

static int
sq_prepare(struct vdi_db *db, struct vdi_stmt **out, const char *sql)
{
	struct sq_stmt *st;
	sqlite3_stmt *h = NULL;

	*out = NULL;
	if (sqlite3_prepare_v2(SQ(db)->h, sql, -1, &h, NULL) != SQLITE_OK)
		return -1;
	st = vdi_xcalloc(1, sizeof(*st));
	st->base.db = db;
	st->h = h;
	*out = &st->base;
	return 0;
}

static int
sq_step(struct vdi_stmt *st)
{
	switch (sqlite3_step(SQST(st))) {
	case SQLITE_ROW:
		return VDI_DB_ROW;
	case SQLITE_DONE:
		return VDI_DB_DONE;
	default:
		return VDI_DB_ERROR;
	}
}

static void
sq_reset(struct vdi_stmt *st)
{
	sqlite3_reset(SQST(st));
}

static void
sq_clear(struct vdi_stmt *st)
{
	sqlite3_clear_bindings(SQST(st));
}

static void
sq_finalize(struct vdi_stmt *st)
{
	sqlite3_finalize(SQST(st));
	free(st);
}

static void
sq_bind_text(struct vdi_stmt *st, int i, const char *s, size_t n)
{
	sqlite3_bind_text(SQST(st), i, s, (int)n, SQLITE_TRANSIENT);
}

static void
sq_bind_int64(struct vdi_stmt *st, int i, int64_t v)
{
	sqlite3_bind_int64(SQST(st), i, v);
}

static void
sq_bind_double(struct vdi_stmt *st, int i, double v)
{
	sqlite3_bind_double(SQST(st), i, v);
}

static void
sq_bind_null(struct vdi_stmt *st, int i)
{
	sqlite3_bind_null(SQST(st), i);
}

static int64_t
sq_col_int64(struct vdi_stmt *st, int col)
{
	return sqlite3_column_int64(SQST(st), col);
}

static double
sq_col_double(struct vdi_stmt *st, int col)
{
	return sqlite3_column_double(SQST(st), col);
}

static const char *
sq_col_text(struct vdi_stmt *st, int col)
{
	return (const char *)sqlite3_column_text(SQST(st), col);
}

static bool
sq_col_null(struct vdi_stmt *st, int col)
{
	return sqlite3_column_type(SQST(st), col) == SQLITE_NULL;
}

/*
 * Waiting for another command's lock: short random sleeps (1 to 3 ms)
 * until busy_timeout.  SQLite's own handler backs off to 100 ms sleeps,
 * so under a login storm an unlucky command could wait seconds while
 * others got the lock again and again.
 */
static int
busy_wait(void *arg, int count)
{
	struct sq_db *db = arg;
	int64_t now = vdi_clock_mono_ms();

	if (db->no_wait)
		return 0;
	if (count == 0)
		db->busy_since = now;
	if (now - db->busy_since >= db->base.busy_ms)
		return 0;
	db->rng ^= db->rng << 13;
	db->rng ^= db->rng >> 17;
	db->rng ^= db->rng << 5;
	usleep(1000 + db->rng % 2000);
	return 1;
}

/*
 * Keep the WAL short.  SQLite's automatic checkpoint (a PASSIVE one, in the
 * commit that passes 1000 frames) copies the WAL into the VMDB but leaves the
 * frames where they are until a later writer starts the WAL over, and it may
 * do that only if the readers know the copy happened.  They do not when no
 * other process holds the VMDB open (no vm-watch, as in cron-only sites and
 * the tests): each process then rebuilds the WAL's index by reading every
 * frame, and that rebuild forgets the copy.  So the WAL never starts over,
 * every open reads all of it and every commit past 1000 frames copies all of
 * it again: measured at 10,000 hosts, a login went from 3 to 9 ms within 120
 * logins.
 *
 * So a connection that leaves VDI_WAL_FRAMES (db.h) frames or more behind it
 * checkpoints and truncates the WAL when it closes (vdi_db_close), without
 * waiting for anybody: if another process is reading or writing, a later
 * close does it.  Closing rather than committing keeps long-lived
 * connections (a batch, vm-watch) at SQLite's own pace, which works while
 * they hold the VMDB open.
 */
static int
wal_hook(void *arg, sqlite3 *h, const char *name, int frames)
{
	struct sq_db *db = arg;

	db->wal_frames = frames;
	if (frames >= 1000) /* SQLite's automatic checkpoint, which this hook replaces */
		(void)sqlite3_wal_checkpoint_v2(h, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	return SQLITE_OK; /* the commit happened; a checkpoint left for later is no error */
}

/* mkdir -p the folder that will hold path. */
static int
make_parent(const char *path, struct vdi_err *err)
{
	char *dir = vdi_xstrdup(path), *p;
	int ret = -1;

	p = strrchr(dir, '/');
	if (!p || p == dir) {
		ret = 0;
		goto out;
	}
	*p = '\0';
	for (p = dir + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;
			*p = '\0';
			if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
				vdi_err_set(err, VDI_R_FAIL, "cannot create folder %s for the VMDB: %s",
					    dir, strerror(errno));
				goto out;
			}
			*p = c;
			if (!c)
				break;
		}
	}
	ret = 0;
out:
	free(dir);
	return ret;
}

/* May this process change the VMDB: the file and its folder (for -wal, -shm)? */
static bool
writable(const char *path)
{
	char *dir = vdi_xstrdup(path), *p;
	bool ok;

	p = strrchr(dir, '/');
	if (p == dir)
		p[1] = '\0';
	else if (p)
		*p = '\0';
	ok = access(path, W_OK) == 0 && access(p ? dir : ".", W_OK) == 0;
	free(dir);
	return ok;
}

/* Do PATH-wal and PATH-shm both exist? */
static bool
wal_present(const char *path)
{
	char buf[4096];

	snprintf(buf, sizeof(buf), "%s-wal", path);
	if (access(buf, R_OK) < 0)
		return false;
	snprintf(buf, sizeof(buf), "%s-shm", path);
	return access(buf, R_OK) == 0;
}

/* "file:PATH?immutable=1" with PATH percent-encoded where URIs need it. */
static char *
file_uri(const char *path)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(path);
	char *u = vdi_xmalloc(n * 3 + 32), *q;

	q = stpcpy(u, "file:");
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		if (*p <= ' ' || *p >= 0x7f || *p == '?' || *p == '#' || *p == '%') {
			*q++ = '%';
			*q++ = hex[*p >> 4];
			*q++ = hex[*p & 15];
		} else {
			*q++ = (char)*p;
		}
	}
	strcpy(q, "?immutable=1");
	return u;
}

/* One integer from a query (a PRAGMA, a count). */
static int
query_int(struct vdi_db *db, const char *sql, int64_t *v, struct vdi_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(SQ(db)->h, sql, -1, &st, NULL) != SQLITE_OK)
		return sq_fail(db, "VMDB", err);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : sq_fail(db, "VMDB", err);
}

static int
user_version(struct vdi_db *db, int *v, struct vdi_err *err)
{
	int64_t x = 0;

	if (query_int(db, "PRAGMA user_version", &x, err) < 0)
		return -1;
	*v = (int)x;
	return 0;
}

/*
 * Is this file ours?  A VMDB carries PRAGMA application_id VDI_APP_ID.  A
 * file with no schema at all is new (made by vdi_db_open, or empty): ours
 * to set up.  A VMDB of the first releases (no application_id yet) is
 * known by its schema version and its tables, and is stamped.  Anything
 * else is another program's SQLite file: refused, never changed.
 * *fresh: no schema yet.
 */
static int
check_ours(struct vdi_db *db, bool *fresh, struct vdi_err *err)
{
	int64_t app = 0, v = 0, objects = 0, ours = 0;
	bool began;
	int rc;

	*fresh = false;
	/* The common case costs one read of the header, on every command. */
	if (query_int(db, "PRAGMA application_id", &app, err) < 0)
		return -1;
	if (app == VDI_APP_ID)
		return 0;
	/*
	 * One snapshot for all the questions: another command may be making
	 * this new VMDB right now, and its schema and its application_id
	 * appear together, in one commit.
	 */
	if (vdi_db_read_begin(db, &began, err) < 0)
		return -1;
	rc = query_int(db, "PRAGMA application_id", &app, err) < 0 ||
	     query_int(db, "PRAGMA user_version", &v, err) < 0 ||
	     query_int(db, "SELECT count(*) FROM sqlite_master", &objects, err) < 0 ||
	     query_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
		       "('hosts', 'masters', 'uservms', 'sessions', 'events')", &ours, err) < 0 ? -1 : 0;
	vdi_db_read_end(db, began);
	if (rc < 0)
		return -1;
	if (app == VDI_APP_ID)
		return 0;
	if (app == 0 && v == 0 && objects == 0) {
		*fresh = true;
		return 0;
	}
	if (app == 0 && v >= 1 && ours == 5) {
		if (db->readonly)
			return 0;
		return vdi_db_exec(db, "PRAGMA application_id = " VDI_STR(VDI_APP_ID), err);
	}
	return vdi_err_set(err, VDI_R_FAIL, "%s is not a VMDB: an SQLite file of another program "
			   "(application_id %lld, %lld schema objects); refused, the file was not changed",
			   db->path, (long long)app, (long long)objects);
}

static int
newer_error(struct vdi_db *db, int v, struct vdi_err *err)
{
	return vdi_err_set(err, VDI_R_FAIL, "VMDB %s has schema version %d, newer than this "
			   "vdi-tools knows (%d); use a newer vdi-tools (the file was not changed)",
			   db->path, v, vdi_db_schema_version());
}

static int
migrate(struct vdi_db *db, struct vdi_err *err)
{
	int v, target = vdi_db_schema_version();
	char sql[64];
	bool fresh;

	if (check_ours(db, &fresh, err) < 0 || user_version(db, &v, err) < 0)
		return -1;
	if (v > target)
		return newer_error(db, v, err);
	if (v == target)
		return 0;
	if (db->readonly)
		return vdi_err_set(err, VDI_R_FAIL, "VMDB %s is read-only and needs its schema "
				   "upgraded from version %d to %d", db->path, v, target);
	/* WAL is persistent; set it once, outside any transaction. */
	if (v == 0 && vdi_db_exec(db, "PRAGMA journal_mode=WAL", err) < 0)
		return -1;
	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	if (user_version(db, &v, err) < 0)
		goto fail;
	if (v > target) {
		newer_error(db, v, err);
		goto fail;
	}
	if (v == 0 && vdi_db_exec(db, "PRAGMA application_id = " VDI_STR(VDI_APP_ID), err) < 0)
		goto fail;
	for (; v < target; v++) {
		const struct vdi_migration *m = &vdi_migrations[v];
		if (sqlite3_exec(SQ(db)->h, m->sql, NULL, NULL, NULL) != SQLITE_OK) {
			sq_fail(db, m->name, err);
			goto fail;
		}
		snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", m->version);
		if (vdi_db_exec(db, sql, err) < 0)
			goto fail;
	}
	/* Foreign keys are off while tables are made again: check them all before commit. */
	{
		sqlite3_stmt *st = NULL;
		int rc;
		if (sqlite3_prepare_v2(SQ(db)->h, "PRAGMA foreign_key_check", -1, &st, NULL) != SQLITE_OK) {
			sq_fail(db, "VMDB", err);
			goto fail;
		}
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE) {
			vdi_err_set(err, VDI_R_FAIL, "VMDB %s: upgrading the schema to version %d would break "
				    "its references; refused, the file was not changed", db->path, target);
			goto fail;
		}
	}
	return vdi_db_commit(db, err);
fail:
	vdi_db_rollback(db);
	return -1;
}

static void sq_close(struct vdi_db *db);

static int
sq_open(struct vdi_db **out, const char *path, int64_t busy_ms, struct vdi_err *err)
{
	struct sq_db *q;
	struct vdi_db *db;
	int fd, rc;

	*out = NULL;
	q = vdi_xcalloc(1, sizeof(*q));
	db = &q->base;
	db->eng = &vdi_db_sqlite;
	db->path = vdi_xstrdup(path);
	if (access(path, F_OK) < 0) {
		if (make_parent(path, err) < 0)
			goto fail;
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST) {
			vdi_err_set(err, errno == ENOSPC || errno == EIO ? VDI_R_IO : VDI_R_FAIL,
				    "cannot create VMDB %s: %s", path, strerror(errno));
			goto fail;
		}
		if (fd >= 0)
			close(fd);
	}
	if (writable(path)) {
		rc = sqlite3_open_v2(path, &q->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	} else if (wal_present(path)) {
		/* SQLite reads a WAL database read-only when its -wal and -shm exist. */
		rc = sqlite3_open_v2(path, &q->h, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
	} else {
		/*
		 * SQLite cannot make the -shm file of a WAL database in a folder it
		 * may not write; "immutable" reads the file as it stands instead
		 * (with no -wal file, the file is all there is).
		 */
		char *uri = file_uri(path);

		rc = sqlite3_open_v2(uri, &q->h, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL);
		free(uri);
	}
	if (rc != SQLITE_OK) {
		vdi_err_set(err, VDI_R_FAIL, "cannot open VMDB %s: %s", path,
			    q->h ? sqlite3_errmsg(q->h) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(q->h, 1);
	/*
	 * These programs run once per request.  Keep the -wal file between
	 * them and checkpoint only when it grows long (see wal_hook):
	 * otherwise every process's close would checkpoint and fsync the
	 * VMDB, then delete and the next one re-create the -wal and -shm
	 * files.
	 */
	{
		int one = 1;
		sqlite3_db_config(q->h, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
		sqlite3_file_control(q->h, "main", SQLITE_FCNTL_PERSIST_WAL, &one);
	}
	db->readonly = sqlite3_db_readonly(q->h, "main") == 1;
	db->busy_ms = busy_ms;
	q->rng = (uint32_t)getpid() * 2654435761u | 1;
	sqlite3_busy_handler(q->h, busy_wait, q);
	if (!db->readonly)
		sqlite3_wal_hook(q->h, wal_hook, q);
	/* Migrations run with foreign keys off (a table made again must not cascade) and check them. */
	if (migrate(db, err) < 0 || vdi_db_exec(db, "PRAGMA foreign_keys=ON", err) < 0)
		goto fail;
	/* Read pages through a memory map: a pread per page is most of a short command's I/O. */
	if (vdi_db_exec(db, "PRAGMA mmap_size=1073741824", err) < 0)
		goto fail;
	if (!db->readonly && vdi_db_exec(db, "PRAGMA synchronous=NORMAL", err) < 0)
		goto fail;
	*out = db;
	return 0;
fail:
	sq_close(db);
	return -1;
}

/* The file VMDB.NAME.lock beside the VMDB's real path (see vdi_db_lock). */
static int
sq_lock(struct vdi_db *db, const char *name, bool wait, int *fd, struct vdi_err *err)
{
	char suffix[64];

	snprintf(suffix, sizeof(suffix), ".%s.lock", name);
	return vdi_file_lock_beside(db->path, suffix, wait, fd, err);
}

static void
sq_close(struct vdi_db *db)
{
	struct sq_db *q = SQ(db);

	if (q->h) {
		if (q->wal_frames >= VDI_WAL_FRAMES) { /* see wal_hook */
			q->no_wait = true;
			(void)sqlite3_wal_checkpoint_v2(q->h, "main", SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
		}
		sqlite3_close(q->h);
	}
	free(db->path);
	free(db->program);
	free(db->who);
	free(q);
}

/* One text from a query on h (a PRAGMA): into buf; 0, or -1 with SQLite's message in buf. */
static int
text_of(sqlite3 *h, const char *sql, char *buf, size_t len)
{
	sqlite3_stmt *st = NULL;
	int rc;

	buf[0] = '\0';
	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK) {
		snprintf(buf, len, "%s", sqlite3_errmsg(h));
		return -1;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		snprintf(buf, len, "%s", sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "");
	else
		snprintf(buf, len, "%s", sqlite3_errmsg(h));
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* Copy every page of from into to, in one step: one consistent snapshot of from. */
static int
copy_pages(sqlite3 *to, sqlite3 *from, char *msg, size_t len)
{
	sqlite3_backup *b = sqlite3_backup_init(to, "main", from, "main");
	int rc;

	if (!b) {
		snprintf(msg, len, "%s", sqlite3_errmsg(to));
		return -1;
	}
	rc = sqlite3_backup_step(b, -1);
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE) {
		snprintf(msg, len, "%s", sqlite3_errstr(rc));
		return -1;
	}
	return 0;
}

/*
 * The online backup: every page of the VMDB as one read transaction sees
 * it (writers go on meanwhile, WAL), into a file made under a temporary
 * name beside path (0600, O_EXCL) and linked to path only when it is
 * whole and checked, so path never holds half a backup and an existing
 * file or a link planted there is never written through.
 */
static int
sq_backup(struct vdi_db *db, const char *path, struct vdi_err *err)
{
	char tmp[4096], msg[256];
	const char *slash = strrchr(path, '/');
	sqlite3 *out = NULL;
	int fd, ret = -1;

	if (snprintf(tmp, sizeof(tmp), "%.*s.%s.XXXXXX", slash ? (int)(slash - path + 1) : 0, path,
		     slash ? slash + 1 : path) >= (int)sizeof(tmp))
		return vdi_err_set(err, VDI_R_USAGE, "path too long: %s", path);
	if (access(path, F_OK) == 0 || errno != ENOENT)
		return vdi_err_set(err, VDI_R_EXISTS, "%s exists; a backup goes into a new file only", path);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0)
		return vdi_err_set(err, VDI_R_FAIL, "cannot write %s: %s", tmp, strerror(errno));
	close(fd);
	if (sqlite3_open_v2(tmp, &out, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
		vdi_err_set(err, VDI_R_FAIL, "cannot open %s: %s", tmp, out ? sqlite3_errmsg(out) : "no memory");
		goto out;
	}
	sqlite3_busy_timeout(out, (int)db->busy_ms);
	if (copy_pages(out, SQ(db)->h, msg, sizeof(msg)) < 0) {
		vdi_err_set(err, strstr(msg, "locked") ? VDI_R_DB_BUSY : VDI_R_FAIL, "backing up %s: %s", db->path, msg);
		goto out;
	}
	/* One self-contained file: no WAL beside it. */
	if (text_of(out, "PRAGMA journal_mode = DELETE", msg, sizeof(msg)) < 0 ||
	    text_of(out, "PRAGMA quick_check", msg, sizeof(msg)) < 0 || strcmp(msg, "ok") != 0) {
		vdi_err_set(err, VDI_R_FAIL, "the backup %s does not check: %s", tmp, msg);
		goto out;
	}
	sqlite3_close(out);
	out = NULL;
	if ((fd = open(tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0 || fsync(fd) < 0) {
		vdi_err_set(err, VDI_R_IO, "cannot write %s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	close(fd);
	/* link() fails if path exists meanwhile: nothing is replaced. */
	if (link(tmp, path) < 0) {
		vdi_err_set(err, errno == EEXIST ? VDI_R_EXISTS : VDI_R_FAIL, "cannot make %s: %s", path,
			    strerror(errno));
		goto out;
	}
	ret = 0;
out:
	if (out)
		sqlite3_close(out);
	unlink(tmp);
	return ret;
}

/*
 * The reverse, into the VMDB in place: only a file that is a VMDB (its
 * application_id), of a schema this vdi-tools knows, that checks whole;
 * anything else is refused before a page of the VMDB changes.  The pages
 * go in under the VMDB's write lock, in one transaction: other readers see
 * the old VMDB or the restored one.
 */
static int
sq_restore(struct vdi_db *db, const char *path, struct vdi_err *err)
{
	char msg[256], app[32], ver[32];
	sqlite3 *in = NULL;
	struct stat sb;
	int ret = -1;

	if (stat(path, &sb) < 0)
		return vdi_err_set(err, VDI_R_NOTFOUND, "cannot read %s: %s", path, strerror(errno));
	if (!S_ISREG(sb.st_mode))
		return vdi_err_set(err, VDI_R_USAGE, "%s is not a file; nothing was restored", path);
	if (sqlite3_open_v2(path, &in, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		vdi_err_set(err, VDI_R_FAIL, "cannot open %s: %s", path, in ? sqlite3_errmsg(in) : "no memory");
		goto out;
	}
	if (text_of(in, "PRAGMA application_id", app, sizeof(app)) < 0) {
		vdi_err_set(err, VDI_R_USAGE, "%s is not a VMDB (%s); nothing was restored", path, app);
		goto out;
	}
	if (text_of(in, "PRAGMA user_version", ver, sizeof(ver)) < 0) {
		vdi_err_set(err, VDI_R_USAGE, "%s is not a VMDB (%s); nothing was restored", path, ver);
		goto out;
	}
	if (strtoll(app, NULL, 10) != VDI_APP_ID || atoi(ver) < 1) {
		vdi_err_set(err, VDI_R_USAGE, "%s is not a VMDB (an SQLite file with application_id %s); nothing "
			    "was restored", path, app);
		goto out;
	}
	if (atoi(ver) > vdi_db_schema_version()) {
		vdi_err_set(err, VDI_R_USAGE, "%s has schema version %s, newer than this vdi-tools knows (%d); "
			    "nothing was restored", path, ver, vdi_db_schema_version());
		goto out;
	}
	if (text_of(in, "PRAGMA quick_check", msg, sizeof(msg)) < 0 || strcmp(msg, "ok") != 0) {
		vdi_err_set(err, VDI_R_FAIL, "%s does not check (%s); nothing was restored", path, msg);
		goto out;
	}
	/* -n: everything checked, nothing copied. */
	if (db->dry_run) {
		ret = 0;
		goto out;
	}
	if (copy_pages(SQ(db)->h, in, msg, sizeof(msg)) < 0) {
		vdi_err_set(err, strstr(msg, "locked") ? VDI_R_DB_BUSY : VDI_R_FAIL, "restoring %s: %s", db->path,
			    msg);
		goto out;
	}
	/* The copy's header said DELETE; the VMDB stays in WAL for its readers. */
	ret = text_of(SQ(db)->h, "PRAGMA journal_mode = WAL", msg, sizeof(msg)) < 0 ?
	      vdi_err_set(err, VDI_R_FAIL, "restored, but %s: %s", db->path, msg) : 0;
out:
	sqlite3_close(in);
	return ret;
}

const struct vdi_db_engine vdi_db_sqlite = {
	.name = "SQLite",
	.begin_write = "BEGIN IMMEDIATE",
	.begin_read = "BEGIN",
	.migrations = vdi_migrations,
	.indexed_by = true,
	/* table_info lists the stored columns only (generated ones are in table_xinfo). */
	.columns_sql = "SELECT name FROM pragma_table_info(?1) ORDER BY cid",
	.sync_ids = NULL, /* INTEGER PRIMARY KEY takes max(id) + 1 by itself */
	.open = sq_open,
	.lock = sq_lock,
	.close = sq_close,
	.backup = sq_backup,
	.restore = sq_restore,
	.fail = sq_fail,
	.conflict = sq_conflict,
	.changes = sq_changes,
	.in_tx = sq_in_tx,
	.exec = sq_exec,
	.prepare = sq_prepare,
	.step = sq_step,
	.reset = sq_reset,
	.clear = sq_clear,
	.finalize = sq_finalize,
	.bind_text = sq_bind_text,
	.bind_int64 = sq_bind_int64,
	.bind_double = sq_bind_double,
	.bind_null = sq_bind_null,
	.col_int64 = sq_col_int64,
	.col_double = sq_col_double,
	.col_text = sq_col_text,
	.col_null = sq_col_null,
};
