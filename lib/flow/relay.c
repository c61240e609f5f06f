/* relay.c - vm-console's websocket relay from noVNC to a session's VNC display (see relay.h). */
#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "clock.h"
#include "console.h"
#include "mem.h"
#include "names.h"
#include "parse.h"
#include "proc.h"
#include "relay.h"
#include "rfb.h"

/* A side's queue above HIGH stops reading the other side until it drains below LOW. */
#define QUEUE_HIGH (1024 * 1024)
#define QUEUE_LOW (256 * 1024)
#define RX_CHUNK 65536

/* One message waiting to be written, LWS_PRE bytes of room before its data. */
struct msg {
	struct msg *next;
	size_t len;
};
#define MSG_DATA(m) ((unsigned char *)((m) + 1) + LWS_PRE)

struct queue {
	struct msg *head, *tail;
	size_t bytes;
};

struct relay;

/* One browser console: its websocket, its connection to the desktop, and what it carries. */
struct conn {
	struct relay *r;
	struct lws *ws, *raw;
	struct vdi_console_target t;
	struct vdi_rfb rfb;
	struct queue to_ws, to_raw;
	int64_t in, out;          /* bytes browser to desktop, desktop to browser */
	size_t msg_len;           /* the browser's current message so far */
	int64_t session;
	char user[128], peer[64];
	const char *why;          /* why it closes: the first cause wins */
	bool relaying, raw_paused, ws_paused, finished;
	int64_t last_ms, armed_ms;
};

struct relay {
	lws_sorted_usec_list_t tick;  /* first: the tick's callback finds the relay from it */
	const struct vdi_relay_opts *o;
	struct lws_context *ctx;
	int64_t open;             /* consoles open */
	bool stopping;
};

/* A refused request's wsi carries this, so its end is not logged again as junk. */
static char decided;

/* libwebsockets keeps one log sink per process: the relay's. */
static const struct vdi_relay_opts *log_to;

static void __attribute__((format(printf, 2, 3)))
say(const struct relay *r, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!r->o->log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One line each: nothing a browser sent may break it. */
	for (char *p = line; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	r->o->log(r->o->ctx, line);
}

static void
lws_line(int level, const char *line)
{
	char buf[400];
	size_t n;

	if (!log_to || !log_to->log)
		return;
	/* A client's oversized headers: the relay logs that connection's end itself, one line per bad input. */
	if (strstr(line, "Ran out of header data space"))
		return;
	snprintf(buf, sizeof(buf), "libwebsockets: %s", line);
	n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	log_to->log(log_to->ctx, buf);
}

/* ---- the parts of a request a relay judges ---- */

/* The value of parameter name in one Forwarded element elem (of length n), into buf. */
static int
fwd_param(const char *elem, size_t n, const char *name, char *buf, size_t len)
{
	size_t nl = strlen(name);
	const char *p = elem, *end = elem + n;

	while (p < end) {
		const char *q;
		size_t o = 0;
		while (p < end && (*p == ' ' || *p == '\t' || *p == ';'))
			p++;
		q = p;
		while (q < end && *q != '=' && *q != ';')
			q++;
		if (q >= end || *q != '=') {
			p = q;
			continue;
		}
		bool match = (size_t)(q - p) == nl && strncasecmp(p, name, nl) == 0;
		p = q + 1;
		if (p < end && *p == '"') {
			for (p++; p < end && *p != '"'; p++) {
				if (*p == '\\' && p + 1 < end)
					p++;
				if (match && o + 1 < len)
					buf[o++] = *p;
				else if (match)
					return -1;
			}
			if (p >= end)
				return -1; /* an unterminated quoted string */
			p++;
		} else {
			for (; p < end && *p != ';'; p++) {
				if (match && o + 1 < len)
					buf[o++] = *p;
				else if (match)
					return -1;
			}
		}
		if (match) {
			buf[o] = '\0';
			return o ? 0 : -1;
		}
	}
	return -1;
}

/* The last element of a Forwarded value (elements are separated by commas outside quotes). */
static const char *
fwd_last(const char *fwd, size_t *n)
{
	const char *last = fwd;
	bool quoted = false;

	for (const char *p = fwd; *p; p++) {
		if (*p == '\\' && quoted && p[1])
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (*p == ',' && !quoted)
			last = p + 1;
	}
	*n = strlen(last);
	return last;
}

int
vdi_relay_forwarded_user(const char *fwd, char *buf, size_t len)
{
	size_t n;
	const char *e = fwd_last(fwd, &n);

	return fwd_param(e, n, "remote_user", buf, len);
}

int
vdi_relay_forwarded_for(const char *fwd, char *buf, size_t len)
{
	size_t n;
	const char *e = fwd_last(fwd, &n);
	char tmp[80];

	if (fwd_param(e, n, "for", tmp, sizeof(tmp)) < 0)
		return -1;
	/* "[2001:db8::1]:4711" and "192.0.2.1" alike: the brackets go. */
	snprintf(buf, len, "%s", tmp[0] == '[' ? tmp + 1 : tmp);
	if (tmp[0] == '[' && strchr(buf, ']'))
		*strchr(buf, ']') = '\0';
	return 0;
}

bool
vdi_relay_origin_ok(const char *origin, const char *site, const char *host)
{
	char want[300];

	if (!origin || !*origin)
		return false;
	if (site && *site)
		return strcasecmp(origin, site) == 0;
	if (!host || !*host)
		return false;
	snprintf(want, sizeof(want), "https://%s", host);
	if (strcasecmp(origin, want) == 0)
		return true;
	snprintf(want, sizeof(want), "http://%s", host);
	return strcasecmp(origin, want) == 0;
}

/* ---- queues ---- */

static void
enqueue(struct queue *q, const unsigned char *data, size_t len)
{
	struct msg *m;

	if (!len)
		return;
	m = vdi_xmalloc(sizeof(*m) + LWS_PRE + len);
	m->next = NULL;
	m->len = len;
	memcpy(MSG_DATA(m), data, len);
	if (q->tail)
		q->tail->next = m;
	else
		q->head = m;
	q->tail = m;
	q->bytes += len;
}

static void
queue_drop(struct queue *q)
{
	while (q->head) {
		struct msg *m = q->head;
		q->head = m->next;
		free(m);
	}
	q->tail = NULL;
	q->bytes = 0;
}

/* Write the head of q to wsi; 0, or -1 when the write failed. */
static int
queue_write(struct queue *q, struct lws *wsi, enum lws_write_protocol how)
{
	struct msg *m = q->head;
	int n;

	if (!m)
		return 0;
	n = lws_write(wsi, MSG_DATA(m), m->len, how);
	q->head = m->next;
	if (!q->head)
		q->tail = NULL;
	q->bytes -= m->len;
	free(m);
	if (n < 0)
		return -1;
	if (q->head)
		lws_callback_on_writable(wsi);
	return 0;
}

/* ---- a console's life ---- */

static void
kill_async(struct lws *wsi)
{
	if (wsi)
		lws_set_timeout(wsi, PENDING_TIMEOUT_KILLED_BY_PROXY_CLIENT_CLOSE, LWS_TO_KILL_ASYNC);
}

static void
arm(struct conn *c, int64_t now)
{
	const struct vdi_relay_opts *o = c->r->o;
	int64_t ms = c->relaying ? o->idle_timeout_ms : o->handshake_timeout_ms;

	c->last_ms = now;
	if (!c->ws || now - c->armed_ms < 1000)
		return; /* re-armed at most once a second: the limit is in whole seconds anyway */
	c->armed_ms = now;
	lws_set_timeout(c->ws, ms > 0 ? PENDING_TIMEOUT_USER_OK : NO_PENDING_TIMEOUT,
			ms > 0 ? (int)((ms + 999) / 1000) : 0);
}

/* Both ends gone: record it, once. */
static void
finish(struct conn *c)
{
	struct relay *r = c->r;
	struct vdi_err err = { 0 };

	if (c->finished || c->ws || c->raw)
		return;
	c->finished = true;
	if (!c->why)
		c->why = "error";
	if (vdi_console_close(r->o->db, c->t.id, c->why, c->in, c->out, &err) < 0)
		say(r, "console %lld (%s, session %lld): not recorded closed: %s", (long long)c->t.id, c->user,
		    (long long)c->session, err.msg);
	say(r, "console %lld (%s, session %lld) closed: %s; %lld bytes in, %lld out", (long long)c->t.id, c->user,
	    (long long)c->session, c->why, (long long)c->in, (long long)c->out);
	queue_drop(&c->to_ws);
	queue_drop(&c->to_raw);
	vdi_console_target_clear(&c->t);
	explicit_bzero(&c->rfb, sizeof(c->rfb));
	r->open--;
	free(c);
}

static void
close_with(struct conn *c, const char *why)
{
	if (!c->why)
		c->why = why;
	kill_async(c->ws);
	kill_async(c->raw);
}

static void
flow(struct conn *c)
{
	/* Back-pressure: a slow browser stops reads from the desktop, and the other way round. */
	if (c->raw && !c->raw_paused && c->to_ws.bytes > QUEUE_HIGH) {
		lws_rx_flow_control(c->raw, 0);
		c->raw_paused = true;
	} else if (c->raw && c->raw_paused && c->to_ws.bytes < QUEUE_LOW) {
		lws_rx_flow_control(c->raw, 1);
		c->raw_paused = false;
	}
	if (c->ws && !c->ws_paused && c->to_raw.bytes > QUEUE_HIGH) {
		lws_rx_flow_control(c->ws, 0);
		c->ws_paused = true;
	} else if (c->ws && c->ws_paused && c->to_raw.bytes < QUEUE_LOW) {
		lws_rx_flow_control(c->ws, 1);
		c->ws_paused = false;
	}
}

/* Bytes from one end, through the RFB handshake while it lasts; -1 closes the console. */
static int
feed(struct conn *c, bool from_browser, const unsigned char *in, size_t len)
{
	struct vdi_rfb_out o;
	int rc = vdi_rfb_feed(&c->rfb, from_browser, in, len, &o);

	if (rc < 0) {
		say(c->r, "console %lld (%s, session %lld): %s", (long long)c->t.id, c->user, (long long)c->session,
		    c->rfb.why);
		close_with(c, "error");
		return -1;
	}
	enqueue(&c->to_raw, o.to_server, o.to_server_len);
	enqueue(&c->to_ws, o.to_browser, o.to_browser_len);
	if (o.pass_len) {
		enqueue(o.pass_to_server ? &c->to_raw : &c->to_ws, o.pass, o.pass_len);
		*(o.pass_to_server ? &c->in : &c->out) += (int64_t)o.pass_len;
	}
	if (c->to_raw.head && c->raw)
		lws_callback_on_writable(c->raw);
	if (c->to_ws.head && c->ws)
		lws_callback_on_writable(c->ws);
	if (rc == 1 && !c->relaying) {
		c->relaying = true;
		c->armed_ms = 0;
		say(c->r, "console %lld (%s, session %lld) open: relaying to %s port %lld from %s", (long long)c->t.id,
		    c->user, (long long)c->session, c->t.host, (long long)c->t.port, c->peer);
	}
	arm(c, vdi_clock_mono_ms());
	flow(c);
	return 0;
}

/* ---- the checks before an upgrade ---- */

/* src into dst whole, or "" and -1 if it does not fit. */
static int
copy(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	if (n >= len) {
		dst[0] = '\0';
		return -1;
	}
	memcpy(dst, src, n + 1);
	return 0;
}

static int
refuse(struct relay *r, struct lws *wsi, unsigned status, const char *user, const char *peer, const char *fmt, ...)
{
	char why[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	say(r, "refused %u: %s (user %s, from %s)", status, why, user && *user ? user : "unknown",
	    peer && *peer ? peer : "unknown");
	lws_set_opaque_user_data(wsi, &decided);
	if (lws_return_http_status(wsi, status, why))
		return -1;
	return 1;
}

static unsigned
status_of(const struct vdi_err *err)
{
	switch (err->reason) {
	case VDI_R_USAGE: return HTTP_STATUS_BAD_REQUEST;
	case VDI_R_NOTFOUND: case VDI_R_NO_USER: return HTTP_STATUS_NOT_FOUND;
	case VDI_R_LIMIT: return 429;
	case VDI_R_DB_BUSY: case VDI_R_DB_DOWN: case VDI_R_TEMP: return HTTP_STATUS_SERVICE_UNAVAILABLE;
	case VDI_R_FAIL: case VDI_R_IO: return HTTP_STATUS_INTERNAL_SERVER_ERROR;
	default: return HTTP_STATUS_FORBIDDEN; /* the ticket's and the session's refusals */
	}
}

/* A header's value into buf ("" if absent or too long for buf: then *toolong). */
static void
header(struct lws *wsi, enum lws_token_indexes h, char *buf, int len, bool *toolong)
{
	int n = lws_hdr_total_length(wsi, h);

	buf[0] = '\0';
	if (n >= len) {
		*toolong = true;
		return;
	}
	if (n > 0 && lws_hdr_copy(wsi, buf, len, h) < 0)
		buf[0] = '\0';
}

static void
custom_header(struct lws *wsi, const char *name, char *buf, int len, bool *toolong)
{
	char lname[80];
	int n;

	snprintf(lname, sizeof(lname), "%s:", name);
	for (char *p = lname; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	buf[0] = '\0';
	n = lws_hdr_custom_length(wsi, lname, (int)strlen(lname));
	if (n >= len) {
		*toolong = true;
		return;
	}
	if (n > 0 && lws_hdr_custom_copy(wsi, buf, len, lname, (int)strlen(lname)) < 0)
		buf[0] = '\0';
}

static int
confirm(struct relay *r, struct lws *wsi)
{
	const struct vdi_relay_opts *o = r->o;
	char uri[256], origin[300], host[256], fwd[1024], user[128] = "", peer[64] = "", arg[512];
	char ticket[VDI_TOKEN_MAX] = "", session[32] = "";
	struct vdi_console_req q = { 0 };
	struct vdi_err err = { 0 };
	struct conn *c;
	bool toolong = false, forwarded = strcasecmp(o->user_header, "Forwarded") == 0;
	int64_t sid;

	header(wsi, WSI_TOKEN_GET_URI, uri, sizeof(uri), &toolong);
	header(wsi, WSI_TOKEN_ORIGIN, origin, sizeof(origin), &toolong);
	header(wsi, WSI_TOKEN_HOST, host, sizeof(host), &toolong);
	if (forwarded)
		custom_header(wsi, "Forwarded", fwd, sizeof(fwd), &toolong);
	else
		custom_header(wsi, o->user_header, fwd, sizeof(fwd), &toolong);
	if (toolong)
		return refuse(r, wsi, HTTP_STATUS_REQ_ENTITY_TOO_LARGE, NULL, NULL, "a header is too long");
	if (forwarded) {
		if (vdi_relay_forwarded_user(fwd, user, sizeof(user)) < 0)
			user[0] = '\0';
		vdi_relay_forwarded_for(fwd, peer, sizeof(peer));
	} else {
		copy(user, sizeof(user), fwd);
		header(wsi, WSI_TOKEN_X_FORWARDED_FOR, arg, sizeof(arg), &toolong);
		if (*arg)
			snprintf(peer, sizeof(peer), "%s", strrchr(arg, ',') ? strrchr(arg, ',') + 1 : arg);
	}
	if (strcmp(uri, o->path) != 0)
		return refuse(r, wsi, HTTP_STATUS_NOT_FOUND, user, peer, "no console at this path");
	/* session= and ticket=, once each, and nothing else: a host or a port is never taken from a request. */
	for (int i = 0;; i++) {
		int n = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i);
		if (n <= 0 && lws_hdr_copy_fragment(wsi, arg, sizeof(arg), WSI_TOKEN_HTTP_URI_ARGS, i) < 0)
			break;
		if (i >= 8 || n >= (int)sizeof(arg))
			return refuse(r, wsi, HTTP_STATUS_BAD_REQUEST, user, peer, "the console URL is too long");
		if (lws_hdr_copy_fragment(wsi, arg, sizeof(arg), WSI_TOKEN_HTTP_URI_ARGS, i) < 0)
			break;
		if (strncmp(arg, "session=", 8) == 0 && !*session && copy(session, sizeof(session), arg + 8) == 0)
			continue;
		if (strncmp(arg, "ticket=", 7) == 0 && !*ticket && copy(ticket, sizeof(ticket), arg + 7) == 0)
			continue;
		return refuse(r, wsi, HTTP_STATUS_BAD_REQUEST, user, peer,
			      "the console URL has a parameter other than session and ticket, or one twice");
	}
	if (!vdi_relay_origin_ok(origin, o->origin, host))
		return refuse(r, wsi, HTTP_STATUS_FORBIDDEN, user, peer, "Origin %.80s is not this site's",
			      *origin ? origin : "(none)");
	if (!*user || vdi_name_check("user", user, &err) < 0)
		return refuse(r, wsi, HTTP_STATUS_FORBIDDEN, NULL, peer, "the web server named no valid user in %s",
			      o->user_header);
	if (!*ticket)
		return refuse(r, wsi, HTTP_STATUS_FORBIDDEN, user, peer, "no console ticket");
	if (vdi_int_parse(session, 1, INT64_MAX, &sid, &err) < 0)
		return refuse(r, wsi, HTTP_STATUS_BAD_REQUEST, user, peer, "no session, or not a number");
	q.session_id = sid;
	q.user = user;
	q.ticket = ticket;
	q.instance = vdi_proc_owner();
	q.peer = *peer ? peer : NULL;
	q.per_user = o->per_user;
	q.now = vdi_clock_now();
	c = vdi_xcalloc(1, sizeof(*c));
	if (vdi_console_open(o->db, &q, &c->t, &err) < 0) {
		free(c);
		return refuse(r, wsi, status_of(&err), user, peer, "%s", err.msg);
	}
	c->r = r;
	c->session = sid;
	snprintf(c->user, sizeof(c->user), "%s", user);
	snprintf(c->peer, sizeof(c->peer), "%s", *peer ? peer : "unknown");
	vdi_rfb_init(&c->rfb, c->t.password);
	r->open++;
	lws_set_opaque_user_data(wsi, c);
	return 0;
}

/* ---- the callbacks ---- */

static int
connect_desktop(struct conn *c, struct lws *wsi)
{
	struct lws_client_connect_info i;

	memset(&i, 0, sizeof(i));
	i.context = lws_get_context(wsi);
	i.vhost = lws_get_vhost(wsi);
	i.address = c->t.address;
	i.port = (int)c->t.port;
	i.host = c->t.address;
	i.origin = c->t.address;
	i.method = "RAW";
	i.local_protocol_name = "vdi-vnc";
	i.opaque_user_data = c;
	i.pwsi = &c->raw;
	if (!lws_client_connect_via_info(&i)) {
		c->raw = NULL;
		say(c->r, "console %lld (%s, session %lld): cannot connect to %s port %lld", (long long)c->t.id,
		    c->user, (long long)c->session, c->t.address, (long long)c->t.port);
		return -1;
	}
	return 0;
}

static int
on_ws(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct relay *r = lws_context_user(lws_get_context(wsi));
	void *op = lws_get_opaque_user_data(wsi);
	struct conn *c = op == &decided ? NULL : op;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		/* Not an upgrade: a console is a websocket, nothing else. */
		lws_set_opaque_user_data(wsi, &decided);
		say(r, "refused 426: a plain HTTP request for %.100s", in ? (const char *)in : "?");
		if (lws_return_http_status(wsi, 426, "a console is a websocket"))
			return -1;
		return -1;
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		if (!in || strcmp((const char *)in, "websocket") != 0) {
			lws_set_opaque_user_data(wsi, &decided);
			return -1;
		}
		if (r->stopping)
			return -1;
		return confirm(r, wsi);
	case LWS_CALLBACK_ESTABLISHED:
		if (!c)
			return -1;
		c->ws = wsi;
		c->why = NULL;
		arm(c, vdi_clock_mono_ms());
		if (connect_desktop(c, wsi) < 0) {
			c->why = "error";
			return -1;
		}
		return 0;
	case LWS_CALLBACK_RECEIVE: {
		size_t more;
		if (!c)
			return -1;
		more = lws_remaining_packet_payload(wsi);
		c->msg_len += len;
		if (c->msg_len + more > (size_t)r->o->max_frame) {
			say(r, "console %lld (%s, session %lld): a message of more than %lld bytes from the browser",
			    (long long)c->t.id, c->user, (long long)c->session, (long long)r->o->max_frame);
			c->why = "limit";
			lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)"message too large", 17);
			kill_async(c->raw);
			return -1;
		}
		if (lws_is_final_fragment(wsi) && !more)
			c->msg_len = 0;
		return feed(c, true, in, len) < 0 ? -1 : 0;
	}
	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (!c)
			return 0;
		if (queue_write(&c->to_ws, wsi, LWS_WRITE_BINARY) < 0) {
			close_with(c, "browser");
			return -1;
		}
		flow(c);
		return 0;
	case LWS_CALLBACK_TIMER:
		return 0;
	case LWS_CALLBACK_CLOSED:
		if (c && !c->why) {
			/* A timeout closes without telling why: the clock says which. */
			int64_t idle = vdi_clock_mono_ms() - c->last_ms;
			int64_t limit = c->relaying ? r->o->idle_timeout_ms : r->o->handshake_timeout_ms;
			c->why = r->stopping ? "restart" : limit > 0 && idle >= limit - 1000 ?
				 (c->relaying ? "idle" : "error") : "browser";
		}
		return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		if (op == &decided)
			return 0;
		if (!c) {
			/* Accepted, never judged: junk, or a client that never finished its request (not the listener). */
			if (!r->stopping)
				say(r, "closed: a connection that sent no complete upgrade request");
			return 0;
		}
		lws_set_opaque_user_data(wsi, &decided); /* told once, whatever calls follow */
		c->ws = NULL;
		if (!c->why)
			c->why = r->stopping ? "restart" : "browser";
		queue_drop(&c->to_ws);
		if (c->raw)
			kill_async(c->raw);
		else
			finish(c);
		return 0;
	default:
		return 0;
	}
}

static int
on_vnc(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	void *op = lws_get_opaque_user_data(wsi);
	struct conn *c = op == &decided ? NULL : op;

	if (!c)
		return 0;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		say(c->r, "console %lld (%s, session %lld): cannot reach the desktop at %s port %lld: %s",
		    (long long)c->t.id, c->user, (long long)c->session, c->t.address, (long long)c->t.port,
		    in ? (const char *)in : "connection failed");
		lws_set_opaque_user_data(wsi, &decided);
		c->raw = NULL;
		if (!c->why)
			c->why = "error";
		if (c->ws)
			kill_async(c->ws);
		else
			finish(c);
		return 0;
	case LWS_CALLBACK_RAW_ADOPT:
	case LWS_CALLBACK_RAW_CONNECTED:
		c->raw = wsi;
		if (c->to_raw.head)
			lws_callback_on_writable(wsi);
		return 0;
	case LWS_CALLBACK_RAW_RX:
		return feed(c, false, in, len) < 0 ? -1 : 0;
	case LWS_CALLBACK_RAW_WRITEABLE:
		if (queue_write(&c->to_raw, wsi, LWS_WRITE_RAW) < 0) {
			close_with(c, "desktop");
			return -1;
		}
		flow(c);
		return 0;
	case LWS_CALLBACK_RAW_CLOSE:
		/* Marked, not cleared: lws may tell this wsi's end to the vhost's first protocol too. */
		lws_set_opaque_user_data(wsi, &decided);
		c->raw = NULL;
		if (!c->why)
			c->why = c->r->stopping ? "restart" : "desktop";
		queue_drop(&c->to_raw);
		if (c->ws)
			kill_async(c->ws);
		else
			finish(c);
		return 0;
	default:
		return 0;
	}
}

/* ---- the socket and the loop ---- */

/* lws_service() sleeps until its next event: a tick four times a second lets a stop be seen. */
static void
tick(lws_sorted_usec_list_t *sul)
{
	struct relay *r = (struct relay *)sul;

	lws_sul_schedule(r->ctx, 0, &r->tick, tick, 250000);
}

/* Make way for the socket: 5 if a relay listens there, or a file that is not a socket is in the way. */
static int
socket_free(const char *path, struct vdi_err *err)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, rc;

	if (strlen(path) >= sizeof(a.sun_path))
		return vdi_err_set(err, VDI_R_USAGE, "console socket path %s is too long", path);
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : vdi_err_set(err, VDI_R_FAIL, "%s: %s", path, strerror(errno));
	if (!S_ISSOCK(st.st_mode))
		return vdi_err_set(err, VDI_R_CONFLICT, "%s is there and is not a socket; it is left alone", path);
	memcpy(a.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return vdi_err_set(err, VDI_R_FAIL, "socket: %s", strerror(errno));
	rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
	close(fd);
	if (rc == 0)
		return vdi_err_set(err, VDI_R_CONFLICT, "another vm-console listens on %s", path);
	/* A socket nobody listens on: a relay's that died. */
	if (unlink(path) < 0)
		return vdi_err_set(err, VDI_R_FAIL, "removing the stale socket %s: %s", path, strerror(errno));
	return 0;
}

int
vdi_relay_serve(const struct vdi_relay_opts *o, struct vdi_err *err)
{
	static const struct lws_protocols protocols[] = {
		{ "vdi-console", on_ws, 0, RX_CHUNK, 0, NULL, 0 },
		{ "vdi-vnc", on_vnc, 0, RX_CHUNK, 0, NULL, 0 },
		{ NULL, NULL, 0, 0, 0, NULL, 0 },
	};
	struct lws_context_creation_info info;
	struct relay r = { .o = o };
	struct group *g = NULL;
	int64_t restarted = 0;
	mode_t old;
	int ret = -1;

	if (o->socket_group && *o->socket_group && !(g = getgrnam(o->socket_group)))
		return vdi_err_set(err, VDI_R_USAGE, "no group %s for the console socket", o->socket_group);
	if (socket_free(o->socket_path, err) < 0)
		return -1;
	if (vdi_console_restart(o->db, &restarted, err) < 0)
		return -1;
	if (restarted)
		say(&r, "closed %lld consoles a relay of this machine left open (it stopped without closing them)",
		    (long long)restarted);
	log_to = o;
	lws_set_log_level(LLL_ERR, lws_line);
	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_UNIX_SOCK | LWS_SERVER_OPTION_VALIDATE_UTF8 |
		       LWS_SERVER_OPTION_DISABLE_IPV6;
	info.iface = o->socket_path;
	info.port = 0;
	info.protocols = protocols;
	info.user = &r;
	info.timeout_secs = (unsigned)((o->handshake_timeout_ms + 999) / 1000);
	info.timeout_secs_ah_idle = info.timeout_secs; /* a client that connects and says nothing */
	info.max_http_header_data = 4096;
	info.vhost_name = "vm-console";
	info.gid = -1;
	info.uid = -1;
	/* The socket is made 0660 from the start: never a moment where anyone may connect. */
	old = umask(0117);
	r.ctx = lws_create_context(&info);
	umask(old);
	if (!r.ctx) {
		vdi_err_set(err, VDI_R_FAIL, "cannot listen on %s (libwebsockets says why above)", o->socket_path);
		goto out;
	}
	if (g && chown(o->socket_path, (uid_t)-1, g->gr_gid) < 0) {
		vdi_err_set(err, VDI_R_FAIL, "giving %s to group %s: %s", o->socket_path, o->socket_group,
			    strerror(errno));
		goto out;
	}
	lws_sul_schedule(r.ctx, 0, &r.tick, tick, 250000);
	say(&r, "listening on %s for %s", o->socket_path, o->path);
	if (o->ready)
		o->ready(o->ctx);
	while (!*o->stop)
		if (lws_service(r.ctx, 0) < 0) {
			vdi_err_set(err, VDI_R_FAIL, "the event loop failed");
			goto out;
		}
	ret = 0;
out:
	r.stopping = true;
	if (r.ctx) {
		/* Every console closes here, and each is recorded (finish). */
		lws_context_destroy(r.ctx);
		unlink(o->socket_path);
	}
	log_to = NULL;
	if (ret == 0)
		say(&r, "stopped");
	return ret;
}
