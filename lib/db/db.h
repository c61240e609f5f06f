/*
 * db.h - the VMDB: one SQLite file with all of vdi-tools' state.
 *
 * vdi_db_open() creates the file (mode 0600, parent folders 0750) on first
 * use, turns on WAL, foreign keys and a busy timeout, and applies the
 * migrations in schema/ (compiled in) in order, by PRAGMA user_version.
 * A VMDB written by a newer vdi-tools is refused and left untouched, and
 * so is any SQLite file that is not a VMDB (PRAGMA application_id).
 * A VMDB the process may not write is opened read-only: reads work, the
 * first write fails with a clear error.
 *
 * SQLite errors are mapped to exit codes in one place (vdi_db_fail):
 * busy past the timeout -> 75, constraint -> 5, read-only -> 1.
 */
#ifndef VDI_DB_H
#define VDI_DB_H

#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>

#include "err.h"

/* PRAGMA application_id of a VMDB: "VDI1".  Only such a file (or a new one) is ever changed. */
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
extern const struct vdi_migration vdi_migrations[];

struct vdi_db {
	sqlite3 *h;
	char *path;
	bool readonly;
	char *program; /* for events: which program acts */
	char *who;     /* for events: $SUDO_USER, $USER or the uid's name */
	bool dry_run;  /* every commit rolls back instead: -n runs the same code */
	int64_t busy_ms, busy_since; /* the busy handler's timeout and start */
	uint32_t rng;                /* its random sleeps */
	bool no_wait;                /* busy means give up now (a checkpoint that can wait) */
	int wal_frames;              /* frames in the WAL after our last commit */
};

int vdi_db_open(struct vdi_db **out, const char *path, int64_t busy_ms,
		const char *program, struct vdi_err *err);
void vdi_db_close(struct vdi_db *db);

/* The schema version this build knows. */
int vdi_db_schema_version(void);

/* Fill err from the connection's last error, with `what` in front. Returns -1. */
int vdi_db_fail(struct vdi_db *db, const char *what, struct vdi_err *err);

int vdi_db_exec(struct vdi_db *db, const char *sql, struct vdi_err *err);
/* Step a statement that changes rows (a row back, from RETURNING, is fine too). */
int vdi_db_step(struct vdi_db *db, sqlite3_stmt *st, const char *what, struct vdi_err *err);
int vdi_db_prepare(struct vdi_db *db, sqlite3_stmt **st, const char *sql, struct vdi_err *err);
/* BEGIN IMMEDIATE (take the write lock now) or BEGIN (deferred, for reads). */
int vdi_db_begin(struct vdi_db *db, bool immediate, struct vdi_err *err);
/*
 * A read transaction for a consistent view across several queries, unless
 * the caller has a transaction open already (then *began is false and
 * vdi_db_read_end does nothing).
 */
int vdi_db_read_begin(struct vdi_db *db, bool *began, struct vdi_err *err);
void vdi_db_read_end(struct vdi_db *db, bool began);
/* COMMIT; with db->dry_run, ROLLBACK and report success (the change was checked, not made). */
int vdi_db_commit(struct vdi_db *db, struct vdi_err *err);
void vdi_db_rollback(struct vdi_db *db);
/* End the caller's write transaction: commit when ret is 0, else roll back and return -1. */
int vdi_db_finish(struct vdi_db *db, int ret, struct vdi_err *err);

/* Column text as a new string (NULL for SQL NULL); aborts on no memory. */
char *vdi_db_col_strdup(sqlite3_stmt *st, int col);

/*
 * Rule 2's claim, for a table whose rows are made in two steps (masters,
 * uservms): inside the caller's write transaction, look for the row whose
 * key_col is key.  None: 0.  One in claim_state whose pid is dead: it is
 * deleted (the caller takes over and cleans up) and *takeover set: 0.
 * Otherwise 5: "NOUN 'KEY' TAKEN", or "NOUN 'KEY' is being DOING by process PID".
 * table and key_col are the caller's constants, never input.
 */
int vdi_db_claim(struct vdi_db *db, const char *table, const char *key_col, const char *key,
		 const char *claim_state, const char *noun, const char *taken, const char *doing,
		 bool *takeover, struct vdi_err *err);

/* Append an event (inside the caller's transaction). */
int vdi_event_add(struct vdi_db *db, const char *object, const char *action,
		  const char *detail, struct vdi_err *err);

#endif
