/*
 * event.h - the audit trail: every change of state is an event, written in
 * the same transaction as the change, and read back by vm-log.
 *
 * An event has a time, who acted (vdi_db_who), the program, the object it
 * concerns (a user, a host or a master, by name), an action
 * ("session-end"), a detail for people, and where it has them the session
 * and the host it concerns, so a reader filters by either without parsing
 * the detail.  Every insert also counts under its action in the counters
 * the metrics print (a trigger, schema 9).
 *
 * Reading: vdi_event_list() calls the caller's function for each event
 * that the filter matches, oldest first.  Following (vm-log -f) asks again
 * for the events after the last one seen; on PostgreSQL ids are handed out
 * before commit, so a later id may become visible before an earlier one:
 * struct vdi_event_cursor remembers the ids it has shown above a floor and
 * looks again below them for a while (VDI_EVENT_LATE seconds) before it
 * gives a missing id up.
 *
 * Ownership: an event handed to the caller's function is the library's and
 * lives until the function returns; the caller copies what it keeps.  The
 * filter's strings are borrowed.  The cursor is the caller's; clear it with
 * vdi_event_cursor_clear().
 */
#ifndef VDI_EVENT_H
#define VDI_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "err.h"

/* Seconds a follower waits for an id that a later one overtook (an uncommitted transaction's). */
#define VDI_EVENT_LATE 30

struct vdi_event {
	int64_t id, at, session_id; /* session_id 0: none */
	const char *who, *program, *object, *action, *detail, *host; /* detail, host may be NULL */
};

struct vdi_event_filter {
	const char *object;  /* a user, host or master by name (vm-log --user): the event's object */
	const char *host;    /* the host it concerns: its own events and its sessions' */
	int64_t session_id;  /* 0: any */
	const char *action;  /* exact, or a prefix ending in '*' ("session-*") */
	const char *program;
	int64_t since, until; /* Unix seconds, inclusive; 0: open */
	int64_t last;        /* only the last N that match (0: all) */
};

/* What vm-log -f remembers between two reads. */
struct vdi_event_cursor {
	bool begun;     /* the first read was made */
	int64_t floor;   /* every id up to here was read (or given up) */
	int64_t *seen;   /* ids above floor already read, sorted */
	size_t nseen;
	int64_t gap_since; /* when a missing id above floor was first noticed (0: none) */
};

typedef int (*vdi_event_fn)(const struct vdi_event *e, void *arg);

/* Append an event (inside the caller's transaction). */
int vdi_event_add(struct vdi_db *db, const char *object, const char *action, const char *detail,
		  struct vdi_err *err);
/* The same about a host: object and host are its name. */
int vdi_event_add_host(struct vdi_db *db, const char *host, const char *action, const char *detail,
		       struct vdi_err *err);
/* The same about a session of user: the session, and its host as the row says now. */
int vdi_event_add_session(struct vdi_db *db, const char *user, int64_t session_id, const char *action,
			  const char *detail, struct vdi_err *err);

/*
 * The events that f matches, oldest first, each to fn (a nonzero answer
 * stops the walk and is returned).  cur (may be NULL): only the events
 * that it has not shown yet, and it is moved past them (follow mode: pass
 * the same cursor each time; f->last then applies to the first read only).
 * Returns 0, fn's answer, or -1 with err.
 */
int vdi_event_list(struct vdi_db *db, const struct vdi_event_filter *f, struct vdi_event_cursor *cur,
		   vdi_event_fn fn, void *arg, struct vdi_err *err);
void vdi_event_cursor_clear(struct vdi_event_cursor *cur);

/* Delete the events older than before (Unix seconds); *n: how many.  Its own transaction. */
int vdi_event_prune(struct vdi_db *db, int64_t before, int64_t *n, struct vdi_err *err);

#endif
