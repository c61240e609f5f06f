/*
 * event.c - the audit trail (see event.h): appending events in the
 * caller's transaction, reading them through a filter, following new
 * ones, and pruning old ones.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "event.h"
#include "mem.h"

static int
add(struct vdi_db *db, const char *object, const char *action, const char *detail, int64_t session_id,
    const char *host, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int ret = -1;

	/* A session's host is the one its row names now (the host it runs on, or ran on). */
	if (vdi_db_prepare(db, &st, "INSERT INTO events (at, who, program, object, action, detail, session_id, host) "
			   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, coalesce(?8, (SELECT h.name FROM sessions s "
			   "JOIN hosts h ON h.id = s.host_id WHERE s.id = ?7)))", err) < 0)
		return -1;
	vdi_stmt_bind_int64(st, 1, vdi_clock_now());
	vdi_stmt_bind_text(st, 2, vdi_db_who(db));
	vdi_stmt_bind_text(st, 3, vdi_db_program(db));
	vdi_stmt_bind_text(st, 4, object);
	vdi_stmt_bind_text(st, 5, action);
	vdi_stmt_bind_text(st, 6, detail);
	if (session_id > 0)
		vdi_stmt_bind_int64(st, 7, session_id);
	else
		vdi_stmt_bind_null(st, 7);
	vdi_stmt_bind_text(st, 8, host);
	if (vdi_stmt_step(st) != VDI_DB_DONE) {
		vdi_db_fail(db, "recording event", err);
		goto out;
	}
	ret = 0;
out:
	vdi_stmt_finalize(st);
	return ret;
}

int
vdi_event_add(struct vdi_db *db, const char *object, const char *action, const char *detail,
	      struct vdi_err *err)
{
	return add(db, object, action, detail, 0, NULL, err);
}

int
vdi_event_add_host(struct vdi_db *db, const char *host, const char *action, const char *detail,
		   struct vdi_err *err)
{
	return add(db, host, action, detail, 0, host, err);
}

int
vdi_event_add_session(struct vdi_db *db, const char *user, int64_t session_id, const char *action,
		      const char *detail, struct vdi_err *err)
{
	return add(db, user, action, detail, session_id, NULL, err);
}

/*
 * The filter as one condition on an events row; parameters ?1..?9.  Each
 * part is true when its parameter is NULL (or 0), so one statement serves
 * every combination and the binding order never changes.  The comparison
 * comes first: PostgreSQL types a parameter where it first meets it.
 */
#define MATCH "(e.object = ?1 OR ?1 IS NULL) AND (e.host = ?2 OR ?2 IS NULL) AND " \
	      "(e.session_id = ?3 OR ?3 = 0) AND (e.action = ?4 OR ?4 IS NULL) AND " \
	      "(substr(e.action, 1, CAST(?6 AS integer)) = ?5 OR ?5 IS NULL) AND (e.program = ?7 OR ?7 IS NULL) AND " \
	      "(e.at >= ?8 OR ?8 = 0) AND (e.at <= ?9 OR ?9 = 0)"
#define COLS "e.id, e.at, e.who, e.program, e.object, e.action, e.detail, e.session_id, e.host"

static void
bind_filter(struct vdi_stmt *st, const struct vdi_event_filter *f)
{
	size_t n = f->action ? strlen(f->action) : 0;
	bool prefix = n > 0 && f->action[n - 1] == '*';

	vdi_stmt_bind_text(st, 1, f->object);
	vdi_stmt_bind_text(st, 2, f->host);
	vdi_stmt_bind_int64(st, 3, f->session_id);
	vdi_stmt_bind_text(st, 4, prefix ? NULL : f->action);
	if (prefix)
		vdi_stmt_bind_textn(st, 5, f->action, n - 1);
	else
		vdi_stmt_bind_null(st, 5);
	vdi_stmt_bind_int64(st, 6, prefix ? (int64_t)n - 1 : 0);
	vdi_stmt_bind_text(st, 7, f->program);
	vdi_stmt_bind_int64(st, 8, f->since);
	vdi_stmt_bind_int64(st, 9, f->until);
}

static void
read_row(struct vdi_stmt *st, struct vdi_event *e)
{
	e->id = vdi_stmt_int64(st, 0);
	e->at = vdi_stmt_int64(st, 1);
	e->who = vdi_stmt_text(st, 2);
	e->program = vdi_stmt_text(st, 3);
	e->object = vdi_stmt_text(st, 4);
	e->action = vdi_stmt_text(st, 5);
	e->detail = vdi_stmt_text(st, 6);
	e->session_id = vdi_stmt_null(st, 7) ? 0 : vdi_stmt_int64(st, 7);
	e->host = vdi_stmt_text(st, 8);
}

static bool
cursor_seen(const struct vdi_event_cursor *cur, int64_t id)
{
	size_t lo = 0, hi = cur->nseen;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (cur->seen[mid] == id)
			return true;
		if (cur->seen[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static void
cursor_add(struct vdi_event_cursor *cur, int64_t id)
{
	size_t i = cur->nseen;

	cur->seen = vdi_grow(cur->seen, cur->nseen, sizeof(*cur->seen));
	while (i > 0 && cur->seen[i - 1] > id) {
		cur->seen[i] = cur->seen[i - 1];
		i--;
	}
	cur->seen[i] = id;
	cur->nseen++;
}

/* Raise the floor over the ids read in a row; give up a missing id after VDI_EVENT_LATE seconds. */
static void
cursor_advance(struct vdi_event_cursor *cur, int64_t now)
{
	size_t k = 0;

	for (;;) {
		while (k < cur->nseen && cur->seen[k] == cur->floor + 1)
			cur->floor = cur->seen[k++];
		if (k == cur->nseen) {
			cur->gap_since = 0;
			break;
		}
		if (cur->gap_since == 0)
			cur->gap_since = now;
		if (now - cur->gap_since < VDI_EVENT_LATE)
			break;
		/* Rolled back, or pruned: it never comes. */
		cur->floor = cur->seen[k] - 1;
		cur->gap_since = 0;
	}
	if (k > 0 && k < cur->nseen)
		memmove(cur->seen, cur->seen + k, (cur->nseen - k) * sizeof(*cur->seen));
	cur->nseen -= k;
}

/* The first read: what matches (the last N of it), and the floor at the newest event. */
static int
list_first(struct vdi_db *db, const struct vdi_event_filter *f, struct vdi_event_cursor *cur, vdi_event_fn fn,
	   void *arg, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	struct vdi_event e;
	int rc, ret = -1;

	if (vdi_db_prepare(db, &st, f->last > 0 ?
			   "SELECT * FROM (SELECT " COLS " FROM events e WHERE " MATCH " ORDER BY e.id DESC "
			   "LIMIT ?10) t ORDER BY id" :
			   "SELECT " COLS " FROM events e WHERE " MATCH " ORDER BY e.id", err) < 0)
		return -1;
	bind_filter(st, f);
	if (f->last > 0)
		vdi_stmt_bind_int64(st, 10, f->last);
	while ((rc = vdi_stmt_step(st)) == VDI_DB_ROW) {
		read_row(st, &e);
		if ((ret = fn(&e, arg)) != 0)
			goto out;
	}
	if (rc != VDI_DB_DONE) {
		vdi_db_fail(db, "reading events", err);
		goto out;
	}
	vdi_stmt_finalize(st);
	st = NULL;
	if (cur) {
		if (vdi_db_prepare(db, &st, "SELECT coalesce(max(id), 0) FROM events", err) < 0)
			goto out;
		if (vdi_stmt_step(st) != VDI_DB_ROW) {
			vdi_db_fail(db, "reading events", err);
			goto out;
		}
		cur->floor = vdi_stmt_int64(st, 0);
		cur->begun = true;
	}
	ret = 0;
out:
	vdi_stmt_finalize(st);
	return ret;
}

/* A later read: every event above the floor, shown once each, when it matches. */
static int
list_next(struct vdi_db *db, const struct vdi_event_filter *f, struct vdi_event_cursor *cur, vdi_event_fn fn,
	  void *arg, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	struct vdi_event e;
	int rc, ret = -1;

	if (vdi_db_prepare(db, &st, "SELECT " COLS ", CASE WHEN " MATCH " THEN 1 ELSE 0 END FROM events e "
			   "WHERE e.id > ?10 ORDER BY e.id", err) < 0)
		return -1;
	bind_filter(st, f);
	vdi_stmt_bind_int64(st, 10, cur->floor);
	while ((rc = vdi_stmt_step(st)) == VDI_DB_ROW) {
		read_row(st, &e);
		if (cursor_seen(cur, e.id))
			continue;
		cursor_add(cur, e.id);
		if (vdi_stmt_int(st, 9) && (ret = fn(&e, arg)) != 0)
			goto out;
	}
	if (rc != VDI_DB_DONE) {
		vdi_db_fail(db, "reading events", err);
		goto out;
	}
	ret = 0;
out:
	vdi_stmt_finalize(st);
	cursor_advance(cur, vdi_clock_now());
	return ret;
}

int
vdi_event_list(struct vdi_db *db, const struct vdi_event_filter *f, struct vdi_event_cursor *cur,
	       vdi_event_fn fn, void *arg, struct vdi_err *err)
{
	bool began;
	int ret;

	if (vdi_db_read_begin(db, &began, err) < 0)
		return -1;
	if (cur && cur->begun)
		ret = list_next(db, f, cur, fn, arg, err);
	else
		ret = list_first(db, f, cur, fn, arg, err);
	vdi_db_read_end(db, began);
	return ret;
}

void
vdi_event_cursor_clear(struct vdi_event_cursor *cur)
{
	free(cur->seen);
	memset(cur, 0, sizeof(*cur));
}

int
vdi_event_prune(struct vdi_db *db, int64_t before, int64_t *n, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int ret = -1;

	*n = 0;
	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	if (vdi_db_prepare(db, &st, "DELETE FROM events WHERE at < ?1", err) < 0)
		goto out;
	vdi_stmt_bind_int64(st, 1, before);
	if (vdi_db_step(db, st, "pruning events", err) < 0)
		goto out;
	*n = vdi_db_changes(db);
	ret = 0;
out:
	vdi_stmt_finalize(st);
	return vdi_db_finish(db, ret, err);
}
