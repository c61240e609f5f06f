/*
 * relay.h - vm-console's workflow: the websocket end of the browser
 * console, relaying noVNC to a session's VNC display.
 *
 * One process, one event loop (libwebsockets), many consoles.  It listens
 * on a Unix socket that only the web server may open (the web server does
 * TLS and authentication, and proxies the console's path to it with the
 * websocket upgrade).  Each upgrade request is checked before anything is
 * connected:
 *  - the path is o->path, and its query has session=ID and ticket=T and
 *    nothing else (a host or port in the request is refused, never used);
 *  - Origin is o->origin, or with none configured the request's own Host
 *    (cross-site websocket hijacking);
 *  - the user is the one the web server names in o->user_header (by
 *    default RFC 7239 Forwarded, its last element's remote_user, which
 *    lighttpd's proxy.forwarded adds after anything the browser sent);
 *  - the ticket and session pass vdi_console_open() (console.h).
 * A refusal is an HTTP status and one log line; a plain HTTP request gets
 * 426.  Then the relay connects to the host and VNC port the VMDB records
 * for the session, authenticates with the session's VNC password (rfb.h),
 * offers the browser no authentication, and passes bytes both ways as
 * binary websocket messages, with back-pressure.
 *
 * Limits: o->handshake_timeout_ms for the HTTP and RFB handshakes,
 * o->idle_timeout_ms without a byte either way, o->max_frame bytes in one
 * message from the browser (closed 1009), o->per_user consoles per user.
 * Each console is recorded opened and closed in the VMDB (console.h),
 * with why it closed and the bytes it carried.  vm-watch sees the relay's
 * VNC client come and go through QEMU's own events, so a browser viewer
 * counts for disconnect_timeout as a SPICE viewer does.
 *
 * The VMDB calls are synchronous in the loop (a few ms each, at a
 * console's open and close only).  Nothing is printed: each event is one
 * line told to o->log.  libwebsockets keeps one log sink per process, so
 * one relay runs per process.
 */
#ifndef VDI_RELAY_H
#define VDI_RELAY_H

#include <signal.h>
#include <stdint.h>

#include "db.h"
#include "err.h"

struct vdi_relay_opts {
	struct vdi_db *db;                /* borrowed: the VMDB */
	const char *socket_path;          /* the Unix socket to listen on (made 0660) */
	const char *socket_group;         /* its group (NULL: the process's own) */
	const char *path;                 /* the console's path on the site (console_path) */
	const char *origin;               /* the site's origin ("" or NULL: the request's Host) */
	const char *user_header;          /* "Forwarded", or a header the web server sets (and overwrites) */
	int64_t handshake_timeout_ms;
	int64_t idle_timeout_ms;          /* 0: none */
	int64_t max_frame;                /* bytes */
	int64_t per_user;                 /* 0: no limit */
	const volatile sig_atomic_t *stop; /* set by a signal handler: return soon after */
	void (*log)(void *ctx, const char *line);
	void (*ready)(void *ctx);         /* once listening (may be NULL) */
	void *ctx;
};

/*
 * Relay until *o->stop; then every console is closed and recorded.  -1
 * with err when the socket cannot be made (code 5: another relay listens
 * there) or the event loop fails.
 */
int vdi_relay_serve(const struct vdi_relay_opts *o, struct vdi_err *err);

/*
 * The user RFC 7239 Forwarded header value fwd names in its last element's
 * remote_user parameter (a token or a quoted string), into buf.  0, or -1
 * when there is none or it does not fit.
 */
int vdi_relay_forwarded_user(const char *fwd, char *buf, size_t len);
/* The same for the for= parameter (the browser's address), quotes and brackets dropped. */
int vdi_relay_forwarded_for(const char *fwd, char *buf, size_t len);

/* Is origin (an Origin header) the site's: site's exactly, or with site "" http(s):// and host? */
bool vdi_relay_origin_ok(const char *origin, const char *site, const char *host);

#endif
