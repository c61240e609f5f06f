/*
 * db.h - the VMDB seam: the one interface through which vdi-tools reads
 * and writes its state, whatever engine keeps it.
 *
 * The rows' files (host.c, master.c, uservm.c, session.c, ...) write their
 * SQL once and run it through this interface; only a backend file speaks
 * an engine's API (lib/db/sqlite.c for SQLite, the default, lib/db/pg.c
 * for PostgreSQL; scripts/check-layers refuses either API anywhere else).
 * The SQL is written once, in what SQLite 3.40 and PostgreSQL 15 both
 * take (ON CONFLICT, RETURNING, ?N placeholders, no scalar max/min, no
 * column named user), with a named hook where they cannot agree
 * (vdi_db_indexed_by; the write lock is each engine's begin_write).  A backend implements
 * struct vdi_db_engine (engine.h); db.c picks it from the VMDB's name and
 * keeps what every engine shares: transactions with -n, claims (events:
 * event.h).
 *
 * Opening.  vdi_db_open() takes what VDI_DB (or vmdb= in vdi.conf) says:
 * a postgresql:// or postgres:// URI, or a libpq keyword string (it begins
 * KEYWORD=), names a PostgreSQL database (lib/db/pg.c); anything else is a
 * path and names an SQLite file.  The SQLite backend creates the file (mode
 * 0600, parent folders 0750) on first use, turns on WAL, foreign keys and
 * a busy timeout, and applies the migrations in schema/ (compiled in) in
 * order, by PRAGMA user_version.  A VMDB written by a newer vdi-tools is
 * refused and left untouched, and so is any SQLite file that is not a VMDB
 * (PRAGMA application_id).  A VMDB the process may not write is opened
 * read-only: reads work, the first write fails with a clear error.
 *
 * Statements.  vdi_db_prepare() makes a statement; parameters are numbered
 * from 1 and bound with vdi_stmt_bind_*() (text is copied: the caller's
 * buffer may go at once; a NULL string binds SQL NULL); vdi_stmt_step()
 * answers VDI_DB_ROW (a row to read with vdi_stmt_int64() and friends,
 * columns from 0), VDI_DB_DONE, or VDI_DB_ERROR, after which vdi_db_fail()
 * turns the engine's error into the caller's err.  vdi_stmt_reset() runs a
 * statement again with the same bindings; vdi_stmt_finalize() frees it
 * (NULL is fine).  A new row's id comes back through RETURNING id, as a row.
 *
 * Errors.  The engine's errors map to reasons in one place (vdi_db_fail):
 * busy past the timeout -> VDI_R_DB_BUSY (exit 75), a server that cannot
 * be reached or went away -> VDI_R_DB_DOWN (75), a constraint ->
 * VDI_R_CONFLICT (5), a full disk -> VDI_R_IO (1), read-only -> VDI_R_FAIL.
 *
 * Ownership.  The caller owns the struct vdi_db that vdi_db_open() gives
 * and frees it with vdi_db_close(); statements belong to the caller and
 * must be finalized before the VMDB is closed.  Text from vdi_stmt_text()
 * belongs to the statement and lives until its next step, reset or
 * finalize.  One connection serves one thread at a time.
 */
#ifndef VDI_DB_H
#define VDI_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* The VMDB's application id: "VDI1".  Only such a file (or a new one) is ever changed. */
#define VDI_APP_ID 0x56444931
/*
 * A connection that leaves this many WAL frames or more (4 KiB pages) behind
 * it checkpoints and truncates the WAL as it closes, if nobody else is busy.
 */
#ifndef VDI_WAL_FRAMES
#define VDI_WAL_FRAMES 200
#endif
#define VDI_STR_(x) #x
#define VDI_STR(x) VDI_STR_(x)

struct vdi_migration {
	int version;
	const char *name;
	const char *sql;
};
/* Each engine's migrations, ended by { 0, NULL, NULL }: schema/sqlite/, schema/postgresql/. */
extern const struct vdi_migration vdi_migrations[];
extern const struct vdi_migration vdi_migrations_pg[];
int vdi_migrations_count(const struct vdi_migration *m);

struct vdi_db;   /* a connection to the VMDB */
struct vdi_stmt; /* a prepared statement of one connection */

/* What vdi_stmt_step() answers. */
enum vdi_step {
	VDI_DB_ERROR = -1, /* see vdi_db_fail() */
	VDI_DB_DONE = 0,   /* no (more) rows */
	VDI_DB_ROW = 1,    /* a row to read */
};

/* ---- the connection ---- */

int vdi_db_open(struct vdi_db **out, const char *path, int64_t busy_ms,
		const char *program, struct vdi_err *err);
void vdi_db_close(struct vdi_db *db);
/*
 * Another handle on db's VMDB, for another thread (a batch's worker): the
 * same name, busy timeout, program, actor and dry run.  The caller closes it.
 */
int vdi_db_reopen(struct vdi_db *db, struct vdi_db **out, struct vdi_err *err);

/* The SQLite schema version this build knows. */
int vdi_db_schema_version(void);
/* Does name (VDI_DB, vmdb=) name a PostgreSQL database rather than an SQLite file? */
bool vdi_db_name_is_pg(const char *name);
/* "SQLite" or "PostgreSQL". */
const char *vdi_db_engine_name(const struct vdi_db *db);
/*
 * The dialect hook for SQLite's INDEXED BY: " INDEXED BY index" where the
 * engine takes it (a plan that cannot use the index fails loudly), "" where
 * it does not (PostgreSQL's planner chooses).  Into buf; returns buf.
 */
const char *vdi_db_indexed_by(const struct vdi_db *db, const char *index, char *buf, size_t len);

/* What the VMDB was opened from; whether it is read-only. */
const char *vdi_db_path(const struct vdi_db *db);
bool vdi_db_readonly(const struct vdi_db *db);
/* The program that acts, for events (vdi_db_open's). */
const char *vdi_db_program(const struct vdi_db *db);
/* Who acts, for events: $SUDO_USER, $USER or the uid's name, unless set ("web:ann"). */
const char *vdi_db_who(const struct vdi_db *db);
void vdi_db_set_who(struct vdi_db *db, const char *who);
/* -n: every commit rolls back instead, so a dry run runs the same code. */
void vdi_db_set_dry_run(struct vdi_db *db, bool dry_run);
bool vdi_db_dry_run(const struct vdi_db *db);

/* Fill err from the connection's last error, with `what` in front. Returns -1. */
int vdi_db_fail(struct vdi_db *db, const char *what, struct vdi_err *err);
/* Was the connection's last error a constraint (unique, check, foreign key)? */
bool vdi_db_conflict(struct vdi_db *db);
/* Rows changed by the last INSERT, UPDATE or DELETE. */
int64_t vdi_db_changes(struct vdi_db *db);

/* Run SQL without results (one or more statements). */
int vdi_db_exec(struct vdi_db *db, const char *sql, struct vdi_err *err);
int vdi_db_prepare(struct vdi_db *db, struct vdi_stmt **st, const char *sql, struct vdi_err *err);
/*
 * A query whose rows the caller walks and may stop reading early (an index
 * walk: vm-assign's quick path).  The same as vdi_db_prepare on SQLite,
 * which steps lazily; on PostgreSQL, inside a transaction, the rows come a
 * few at a time through a cursor instead of all at once.
 */
int vdi_db_prepare_walk(struct vdi_db *db, struct vdi_stmt **st, const char *sql, struct vdi_err *err);
/* Step a statement that changes rows (a row back, from RETURNING, is fine too). */
int vdi_db_step(struct vdi_db *db, struct vdi_stmt *st, const char *what, struct vdi_err *err);
/*
 * Step a statement that should give one row (an UPDATE ... RETURNING under
 * a claim): 1 a row, 0 none (the caller says what that means: a claim
 * lost, not a failed write), -1 the write failed, with err.
 */
int vdi_db_step_row(struct vdi_db *db, struct vdi_stmt *st, const char *what, struct vdi_err *err);

/* ---- transactions ---- */

/* Begin writing (take the write lock now) or reading (a consistent view). */
int vdi_db_begin(struct vdi_db *db, bool write, struct vdi_err *err);
/*
 * Begin a placement: a write transaction that, where the engine can (on
 * PostgreSQL), shares the write lock with other placements and locks the
 * host rows it reads instead (vdi_db_lock_rows).  *shared says which
 * happened; a shared placement that cannot decide on rows it locked (the
 * walk gave up, a user's second live session) rolls back and places again
 * under the write lock.  On SQLite the same as vdi_db_begin(write).
 */
int vdi_db_begin_placement(struct vdi_db *db, bool *shared, struct vdi_err *err);
/* What a placement's query of hosts appends so that the rows it reads are its own: "" or " FOR UPDATE SKIP LOCKED". */
const char *vdi_db_lock_rows(const struct vdi_db *db);
/*
 * A read transaction for a consistent view across several queries, unless
 * the caller has a transaction open already (then *began is false and
 * vdi_db_read_end does nothing).
 */
int vdi_db_read_begin(struct vdi_db *db, bool *began, struct vdi_err *err);
void vdi_db_read_end(struct vdi_db *db, bool began);
/* COMMIT; with dry run, ROLLBACK and report success (the change was checked, not made). */
int vdi_db_commit(struct vdi_db *db, struct vdi_err *err);
void vdi_db_rollback(struct vdi_db *db);
/* End the caller's write transaction: commit when ret is 0, else roll back and return -1. */
int vdi_db_finish(struct vdi_db *db, int ret, struct vdi_err *err);
/* Is a transaction open? */
bool vdi_db_in_tx(struct vdi_db *db);

/* ---- statements ---- */

int vdi_stmt_step(struct vdi_stmt *st);
void vdi_stmt_reset(struct vdi_stmt *st);          /* run again; bindings stay */
void vdi_stmt_clear(struct vdi_stmt *st);          /* every parameter NULL again */
void vdi_stmt_finalize(struct vdi_stmt *st);
void vdi_stmt_bind_text(struct vdi_stmt *st, int i, const char *s);
void vdi_stmt_bind_textn(struct vdi_stmt *st, int i, const char *s, size_t n);
void vdi_stmt_bind_int64(struct vdi_stmt *st, int i, int64_t v);
void vdi_stmt_bind_int(struct vdi_stmt *st, int i, int v);
void vdi_stmt_bind_double(struct vdi_stmt *st, int i, double v);
void vdi_stmt_bind_null(struct vdi_stmt *st, int i);
int64_t vdi_stmt_int64(struct vdi_stmt *st, int col);
int vdi_stmt_int(struct vdi_stmt *st, int col);
double vdi_stmt_double(struct vdi_stmt *st, int col);
/* Text of a column, or NULL for SQL NULL; the statement's (see Ownership). */
const char *vdi_stmt_text(struct vdi_stmt *st, int col);
bool vdi_stmt_null(struct vdi_stmt *st, int col);
/* Column text as a new string (NULL for SQL NULL); aborts on no memory. */
char *vdi_stmt_strdup(struct vdi_stmt *st, int col);

/* ---- shared by every row's file ---- */

/*
 * Claims.  A row being worked on (a master importing, a user VM creating,
 * a session starting, stopping or migrating) carries its owner's pid, its
 * owner token (lib/base/proc.h: HOST/BOOT_ID/PID/START) and a lease, the
 * time until which the owner vouches for it.  While a process holds a
 * claim, a thread of its own renews its leases every VDI_CLAIM_LEASE / 3
 * seconds; when it dies they run out.  vdi_claim_alive judges a claim from
 * here: by the process when the owner is of this machine (its start time
 * too, so a pid used again is no owner), by the lease when it is another
 * machine's, by the pid alone for a row of an older vdi-tools (no owner).
 */
#define VDI_CLAIM_LEASE 60
bool vdi_claim_alive(int64_t pid, const char *owner, int64_t lease);
/*
 * Is the claim alive and another process's?  (This process's own claim is
 * its to go on with; a pid alone is no proof of that, another machine may
 * have the same one.)
 */
bool vdi_claim_elsewhere(int64_t pid, const char *owner, int64_t lease);
/* Read a claim's owner (column col) and lease (col + 1) from a row. */
void vdi_stmt_claim(struct vdi_stmt *st, int col, char *owner, size_t len, int64_t *lease);
/*
 * Bind this process's owner token at parameter i and its lease's end at
 * i + 1; starts the renewing thread (once per process).
 */
void vdi_db_bind_claim(struct vdi_db *db, struct vdi_stmt *st, int i);

/*
 * Rule 2's claim, for a table whose rows are made in two steps (masters,
 * uservms): inside the caller's write transaction, look for the row whose
 * key_col is key.  None: 0.  One in claim_state whose pid is dead: it is
 * deleted (the caller takes over and cleans up) and *takeover set: 0.
 * (Dead: vdi_claim_alive says so.)
 * Otherwise VDI_R_EXISTS ("NOUN 'KEY' TAKEN") or VDI_R_BUSY ("NOUN 'KEY' is
 * being DOING by process PID").  table and key_col are the caller's
 * constants, never input.
 */
int vdi_db_claim(struct vdi_db *db, const char *table, const char *key_col, const char *key,
		 const char *claim_state, const char *noun, const char *taken, const char *doing,
		 bool *takeover, struct vdi_err *err);

/*
 * Run sql (two parameters: an id and a name) once for each of names[0..n),
 * inside the caller's transaction: the rows of a list (a master's apps, a
 * user VM's tags).  what names the step in an error.
 */
int vdi_db_insert_names(struct vdi_db *db, const char *sql, int64_t id, char *const *names, size_t n,
			const char *what, struct vdi_err *err);

/*
 * A singleton's lock ("reap", "watch", "rebalance"): one holder at a time
 * per VMDB.  On SQLite a file beside the VMDB (VMDB.NAME.lock, flock(2):
 * the machine's processes); on PostgreSQL a session advisory lock, which
 * every machine that uses the database sees.  Held until *fd is closed
 * (SQLite; -1 on PostgreSQL) and the connection is.  1 taken, 0 held by
 * another (wait: wait for it instead), -1 error.
 */
int vdi_db_lock(struct vdi_db *db, const char *name, bool wait, int *fd, struct vdi_err *err);

/*
 * The stored columns of a table (its generated ones left out), in order,
 * into *names, *n of them (an owning strv: the caller frees it with
 * vdi_strv_free).
 * table is the caller's constant.  For copying a VMDB between engines.
 */
int vdi_db_columns(struct vdi_db *db, const char *table, char ***names, size_t *n, struct vdi_err *err);
/*
 * Backup and restore of a whole SQLite VMDB (a PostgreSQL one: VDI_R_USAGE,
 * its own tools do it).  backup: one consistent snapshot while others
 * write, into path, a new file (refused if it exists), made whole before
 * it appears.  restore: path's pages into the VMDB in place, in one
 * transaction, only if path is a VMDB of a known schema that checks (with
 * -n: the checks only); a backup of an older schema is upgraded when the
 * VMDB is next opened.
 */
int vdi_db_backup(struct vdi_db *db, const char *path, struct vdi_err *err);
int vdi_db_restore(struct vdi_db *db, const char *path, struct vdi_err *err);
/*
 * After rows were written with their ids: the table's id generator goes
 * past them (PostgreSQL's identity sequence; nothing on SQLite).
 */
int vdi_db_sync_ids(struct vdi_db *db, const char *table, struct vdi_err *err);

#endif
