/*
 * console.h - browser consoles in the VMDB: their one-time tickets and the
 * record of each console vm-console relays (schema 12, consoles).
 *
 * A console ticket is a form token (token.h) for the action "console:ID",
 * made by vm-connect for the signed-in user and their running session ID,
 * valid for console_ticket_ttl and spent on its first use.  vm-console
 * opens a console with it: the ticket must be the user's (the one the web
 * server authenticated), for that session, not expired, not spent; the
 * session must be the user's, running, with a console display; the user
 * must have fewer than per_user consoles open.  Only then does the caller
 * learn where to connect, and that comes from the VMDB, never from the
 * request.  Each refusal has its reason (err.h), which vm-console maps to
 * an HTTP status.
 */
#ifndef VDI_CONSOLE_H
#define VDI_CONSOLE_H

#include <stdint.h>

#include "db.h"
#include "err.h"
#include "token.h"

/* A fresh ticket for user's session id, valid until now + ttl (seconds), into out. */
int vdi_console_ticket(struct vdi_db *db, const char *user, int64_t session_id, int64_t ttl, int64_t now,
		       char out[VDI_TOKEN_MAX], struct vdi_err *err);

struct vdi_console_req {
	int64_t session_id;      /* the session the console URL names */
	const char *user;        /* the user the web server authenticated */
	const char *ticket;      /* the console URL's ticket */
	const char *instance;    /* the relay (proc.h's owner token) */
	const char *peer;        /* the browser's address as the web server passed it (NULL: unknown) */
	int64_t per_user;        /* consoles one user may have open (0: no limit) */
	int64_t now;
};

/* Where a console connects; the caller owns the strings (vdi_console_target_clear). */
struct vdi_console_target {
	int64_t id;              /* the consoles row */
	char *host;              /* the session's host, as the VMDB names it */
	char *address;           /* its display address */
	int64_t port;            /* its VNC port */
	char *password;          /* its VNC password */
};

/*
 * Check q and record the console opened (event console-opened).  Errors:
 * 2 malformed ticket; 5 a ticket not the user's or not this session's
 * (conflict), expired (token-expired), spent (token-spent), the session
 * not running, or per_user reached (limit); 3 no such live session or it
 * has no console display.
 */
int vdi_console_open(struct vdi_db *db, const struct vdi_console_req *q, struct vdi_console_target *t,
		     struct vdi_err *err);
void vdi_console_target_clear(struct vdi_console_target *t);

/*
 * Record console id closed for reason (browser, desktop, idle, limit,
 * error), with the bytes it carried each way (event console-closed).
 * No-op if it was closed already.
 */
int vdi_console_close(struct vdi_db *db, int64_t id, const char *reason, int64_t bytes_in, int64_t bytes_out,
		      struct vdi_err *err);

/*
 * A relay starting on this machine: close ('restart') the consoles that
 * relays of this machine left open and that no longer run.  *closed gets
 * how many.
 */
int vdi_console_restart(struct vdi_db *db, int64_t *closed, struct vdi_err *err);

#endif
