/*
 * engine.h - what a VMDB backend implements, for db.c and the backends
 * only (sqlite.c, pg.c); the rows' files use db.h and never this.
 *
 * A backend's open() allocates its own connection struct with struct
 * vdi_db first, fills the common fields, and returns it; its prepare()
 * does the same with struct vdi_stmt.  db.c calls through db->eng.
 */
#ifndef VDI_DB_ENGINE_H
#define VDI_DB_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"

struct vdi_db {
	const struct vdi_db_engine *eng;
	char *path;    /* what it was opened from, as shown (a password redacted) */
	char *name;    /* what it was opened from, to open again (db.c owns it) */
	bool readonly;
	char *program; /* for events: which program acts */
	char *who;     /* for events: who */
	bool dry_run;  /* every commit rolls back instead */
	int64_t busy_ms; /* how long to wait for another writer (the backend sets it at open) */
};

struct vdi_stmt {
	struct vdi_db *db;
};

struct vdi_db_engine {
	const char *name;
	/* SQL that begins a write transaction with the write lock taken now. */
	const char *begin_write;
	/*
	 * SQL that begins a placement (vdi_db_begin_placement): NULL where it
	 * is a write like any other (SQLite); else with the write lock shared
	 * among placements, which lock the host rows they read instead.
	 */
	const char *begin_placement;
	/* What a placement's walk of hosts appends to lock the rows it reads (vdi_db_lock_rows). */
	const char *lock_rows;
	/* SQL that begins a read transaction: one consistent view of the VMDB. */
	const char *begin_read;
	/* Its schema's migrations (schema/ENGINE/, compiled in). */
	const struct vdi_migration *migrations;
	/* Does it take SQLite's INDEXED BY (see vdi_db_indexed_by)? */
	bool indexed_by;
	/* A query of a table's stored columns, in order (?1: the table), for vdi_db_columns. */
	const char *columns_sql;
	/* vdi_db_sync_ids: move a table's id generator past its rows (NULL: nothing to do). */
	int (*sync_ids)(struct vdi_db *db, const char *table, struct vdi_err *err);
	int (*open)(struct vdi_db **out, const char *name, int64_t busy_ms, struct vdi_err *err);
	/* vdi_db_lock: a singleton lock for the connection's life; *fd is a file to close, or -1. */
	int (*lock)(struct vdi_db *db, const char *name, bool wait, int *fd, struct vdi_err *err);
	void (*close)(struct vdi_db *db);
	/* vdi_db_backup, vdi_db_restore: NULL where the engine has its own tools (pg_dump). */
	int (*backup)(struct vdi_db *db, const char *path, struct vdi_err *err);
	int (*restore)(struct vdi_db *db, const char *path, struct vdi_err *err);
	int (*fail)(struct vdi_db *db, const char *what, struct vdi_err *err);
	bool (*conflict)(struct vdi_db *db);
	int64_t (*changes)(struct vdi_db *db);
	bool (*in_tx)(struct vdi_db *db);
	int (*exec)(struct vdi_db *db, const char *sql);
	int (*prepare)(struct vdi_db *db, struct vdi_stmt **st, const char *sql);
	/* vdi_db_prepare_walk; NULL: prepare serves. */
	int (*prepare_walk)(struct vdi_db *db, struct vdi_stmt **st, const char *sql);
	int (*step)(struct vdi_stmt *st);
	void (*reset)(struct vdi_stmt *st);
	void (*clear)(struct vdi_stmt *st);
	void (*finalize)(struct vdi_stmt *st);
	void (*bind_text)(struct vdi_stmt *st, int i, const char *s, size_t n);
	void (*bind_int64)(struct vdi_stmt *st, int i, int64_t v);
	void (*bind_double)(struct vdi_stmt *st, int i, double v);
	void (*bind_null)(struct vdi_stmt *st, int i);
	int64_t (*col_int64)(struct vdi_stmt *st, int col);
	double (*col_double)(struct vdi_stmt *st, int col);
	const char *(*col_text)(struct vdi_stmt *st, int col);
	bool (*col_null)(struct vdi_stmt *st, int col);
};

extern const struct vdi_db_engine vdi_db_sqlite;
extern const struct vdi_db_engine vdi_db_postgresql;

#endif
