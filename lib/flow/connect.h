/*
 * connect.h - vm-connect's workflow: a user's own way to their desktop.
 *
 * vdi_connect_status() reads what the user's page shows: their desktop
 * (none, requested, being made, being prepared, ready, failed), its
 * session (host, connected or disconnected and since when).
 *
 * vdi_connect() is the Connect button: the user's session is assigned and
 * started if it is not running (start.h, in-process), then it gets a
 * one-time ticket: a fresh display password that works for ttl seconds
 * (virDomainUpdateDeviceFlags with passwdValidTo, connected='keep', so a
 * viewer already in stays in).  A leaked .vv is useless once its ticket
 * expires.  Errors say what the user meets: 3 no desktop yet, 75 it is
 * being made or prepared, 4 no host has room, 1 it failed.
 */
#ifndef VDI_CONNECT_H
#define VDI_CONNECT_H

#include <stdbool.h>
#include <stdint.h>

#include <libvirt/libvirt.h>

#include "db.h"
#include "err.h"
#include "session.h"
#include "start.h"
#include "token.h"

struct vdi_connect_status {
	char *desktop;       /* none, requested, creating, preparing, ready, failed */
	char *master;        /* the desktop's master, or the pending request's */
	int64_t mem, vcpus, disk;
	int64_t home;        /* its home disk's size, or the request's (0: none) */
	char *update_to;     /* the master its update goes to (NULL: up to date) */
	bool updating;       /* an update to a new master is under way */
	int64_t requested;   /* when the pending request was made (0: none) */
	char *session;       /* NULL, or assigned, starting, running, stopping */
	char *host;
	bool connected;      /* a viewer is in (vm-watch) */
	bool console;        /* the session has a browser console display */
	int64_t since;       /* connected or disconnected since (0: no viewer seen yet) */
	bool never_fits;     /* no host of its pool could ever hold it as sized */
	/* With no session: how the last one ended (NULL: none yet) and when. */
	char *last_reason;
	int64_t last_ended;
};

int vdi_connect_status(struct vdi_db *db, const char *user, struct vdi_connect_status *st, struct vdi_err *err);
void vdi_connect_status_clear(struct vdi_connect_status *st);

/*
 * The user ends their own desktop from the page ("log off / restart"): the
 * session that is not ended is ended 'logoff', as vm-reap --user does,
 * unsaved work and all.  3 when there is none.
 */
int vdi_connect_end(struct vdi_db *db, const char *user, struct vdi_conns *cs, struct vdi_err *err);

/* Connect user: *s (the caller clears it) is the running session with its ticket. */
int vdi_connect(struct vdi_db *db, const char *user, const struct vdi_start_opts *o, int64_t ttl,
		struct vdi_session *s, struct vdi_err *err);

/*
 * "Open in browser": as vdi_connect(), but the ticket is a one-time
 * console ticket (console.h) for vm-console, valid ttl seconds, into
 * ticket; the display password is left as it is.  3 when the session has
 * no browser console.
 */
int vdi_connect_console(struct vdi_db *db, const char *user, const struct vdi_start_opts *o, int64_t ttl,
			struct vdi_session *s, char ticket[VDI_TOKEN_MAX], struct vdi_err *err);


#endif
