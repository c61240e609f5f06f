/* watch.c - vm-watch's event loop over every host (see watch.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


#include "clock.h"
#include "start.h"
#include "conns.h"
#include "domlog.h"
#include "file.h"
#include "host.h"
#include "mem.h"
#include "reaper.h"
#include "session.h"
#include "strv.h"
#include "virt.h"
#include "watch.h"

enum ev_kind { EV_STOPPED, EV_STUCK, EV_GFX, EV_CLOSED };

/* What a callback saw, queued for the watcher's thread. */
struct ev {
	enum ev_kind kind;
	int64_t host, gen;
	char domain[160];
	int detail;              /* EV_STOPPED: virDomainEventStoppedDetailType; EV_CLOSED: the reason */
	int phase;               /* EV_GFX: virDomainEventGraphicsPhase */
	char client[128];        /* EV_GFX: "HOST PORT" of the client socket */
};

/* A callback's opaque: freed by libvirt when the callback is gone for good. */
struct cbctx {
	struct watch *w;
	int64_t host, gen;       /* gen: which connection of the host (a late event of an old one is dropped) */
};

struct whost {
	int64_t id;
	char *name, *uri;
	virConnectPtr conn;
	int cb_life, cb_gfx;
	bool cb_close, present, failing;
	int64_t gen;                 /* connections made so far */
	int64_t next_try, backoff;   /* ms, monotonic */
	int64_t since;               /* the watch_since this watcher recorded (0: none) */
};

/* The sockets of one session that got past authentication. */
struct clients {
	int64_t session;
	int64_t host;            /* where they were seen: a desktop that moved is read again there */
	char **keys;
	size_t n;
	int64_t spend_at;        /* ms, monotonic: when to spend the ticket its first viewer used (0: none due) */
};

/*
 * A viewer opens its channels (main, display, inputs, cursor, sound, USB)
 * one after another, each with the ticket: it is spent this long after the
 * first got in, once they all have.
 */
#define TICKET_SPEND_MS 3000

struct watch {
	pthread_mutex_t mu;
	struct ev *q;            /* under mu */
	size_t nq;
	int pipe[2];             /* callbacks wake the loop */
	struct whost **hosts;
	size_t nhosts;
	struct clients *cl;
	size_t ncl;
	struct vdi_db *db;
	struct vdi_conns *conns; /* for ending sessions (vdi_reaper_end) */
	const struct vdi_watch_opts *o;
};

static void __attribute__((format(printf, 2, 3)))
say(struct watch *w, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!w->o->log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	w->o->log(w->o->ctx, line);
}

int
vdi_watch_lock(struct vdi_db *db, int *fd, struct vdi_err *err)
{
	return vdi_db_lock(db, "watch", false, fd, err);
}

int
vdi_watch_lock_wait(struct vdi_db *db, const volatile sig_atomic_t *stop, int *fd, struct vdi_err *err)
{
	int rc;

	while ((rc = vdi_watch_lock(db, fd, err)) == 0 && !*stop)
		usleep(500 * 1000);
	return rc;
}

/* ---- the callbacks: libvirt's event thread; they only queue ---- */

static void
push(struct watch *w, const struct ev *e)
{
	char b = 1;

	pthread_mutex_lock(&w->mu);
	w->q = vdi_grow(w->q, w->nq, sizeof(*w->q));
	w->q[w->nq++] = *e;
	pthread_mutex_unlock(&w->mu);
	/* A full pipe already wakes the loop. */
	if (write(w->pipe[1], &b, 1) < 0 && errno != EAGAIN)
		return;
}

static int
on_lifecycle(virConnectPtr c, virDomainPtr d, int event, int detail, void *opaque)
{
	struct cbctx *x = opaque;
	struct ev e = { .kind = EV_STOPPED, .host = x->host, .gen = x->gen, .detail = detail };

	(void)c;
	/* Paused or crashed on its own: handled only after the domain's state confirms it (vdi_domain_stuck). */
	if (event == VIR_DOMAIN_EVENT_SUSPENDED || event == VIR_DOMAIN_EVENT_CRASHED ||
	    event == VIR_DOMAIN_EVENT_PMSUSPENDED)
		e.kind = EV_STUCK;
	else if (event != VIR_DOMAIN_EVENT_STOPPED)
		return 0;
	snprintf(e.domain, sizeof(e.domain), "%s", virDomainGetName(d));
	push(x->w, &e);
	return 0;
}

static void
on_graphics(virConnectPtr c, virDomainPtr d, int phase, const virDomainEventGraphicsAddress *local,
	    const virDomainEventGraphicsAddress *remote, const char *scheme,
	    const virDomainEventGraphicsSubject *subject, void *opaque)
{
	struct cbctx *x = opaque;
	struct ev e = { .kind = EV_GFX, .host = x->host, .gen = x->gen, .phase = phase };

	(void)c;
	(void)local;
	(void)scheme;
	(void)subject;
	snprintf(e.domain, sizeof(e.domain), "%s", virDomainGetName(d));
	snprintf(e.client, sizeof(e.client), "%s %s", remote && remote->node ? remote->node : "?",
		 remote && remote->service ? remote->service : "?");
	push(x->w, &e);
}

static void
on_close(virConnectPtr c, int reason, void *opaque)
{
	struct cbctx *x = opaque;
	struct ev e = { .kind = EV_CLOSED, .host = x->host, .gen = x->gen, .detail = reason };

	(void)c;
	push(x->w, &e);
}

/* ---- per-session client sets ---- */

static struct clients *
clients_of(struct watch *w, int64_t session, bool make)
{
	for (size_t i = 0; i < w->ncl; i++)
		if (w->cl[i].session == session)
			return &w->cl[i];
	if (!make)
		return NULL;
	w->cl = vdi_grow(w->cl, w->ncl, sizeof(*w->cl));
	memset(&w->cl[w->ncl], 0, sizeof(*w->cl));
	w->cl[w->ncl].session = session;
	return &w->cl[w->ncl++];
}

static void
clients_forget(struct watch *w, int64_t session)
{
	for (size_t i = 0; i < w->ncl; i++)
		if (w->cl[i].session == session) {
			vdi_strv_free(w->cl[i].keys, w->cl[i].n);
			w->cl[i] = w->cl[--w->ncl];
			return;
		}
}

/* The live session that domain (on host) belongs to: 0 found, 1 none (not ours, ended, elsewhere). */
static int
session_of(struct watch *w, int64_t host, const char *domain, struct vdi_session *s, struct vdi_err *err)
{
	memset(s, 0, sizeof(*s));
	/* By the name the session records, not by parsing it: a restored desktop keeps its image's name. */
	if (strncmp(domain, "vdi-", 4) != 0)
		return 1;
	if (vdi_session_of_domain(w->db, domain, s, err) < 0) {
		if (err->code == VDI_ENOTFOUND) {
			vdi_err_reset(err);
			return 1;
		}
		return -1;
	}
	if (strcmp(s->state, "ended") == 0 || s->host_id != host || !s->domain || strcmp(s->domain, domain) != 0) {
		vdi_session_clear(s);
		return 1;
	}
	return 0;
}

static const char *
stopped_why(int detail)
{
	switch (detail) {
	case VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN: return "the guest shut down";
	case VIR_DOMAIN_EVENT_STOPPED_DESTROYED: return "it was destroyed";
	case VIR_DOMAIN_EVENT_STOPPED_CRASHED: return "it crashed";
	case VIR_DOMAIN_EVENT_STOPPED_FAILED: return "QEMU failed";
	case VIR_DOMAIN_EVENT_STOPPED_SAVED: return "it was saved";
	default: return "it stopped";
	}
}

/*
 * A running session's domain is gone: end it the way vm-reap does, with
 * the truth libvirt told: 'crashed' when it died on its own (QEMU failed
 * or crashed), else 'poweroff'.  A failure is logged, not fatal: vm-reap
 * ends it later (a busy VMDB, a host that broke mid-call).
 */
static void
end_stopped(struct watch *w, const struct vdi_session *s, const char *why, bool crashed)
{
	const char *reason = crashed ? "crashed" : "poweroff";
	struct vdi_err e = { 0 };
	char detail[160];
	int rc;

	snprintf(detail, sizeof(detail), "libvirt: %s", why);
	rc = vdi_reaper_end(w->db, w->conns, s, "running", reason, detail, &e);
	clients_forget(w, s->id);
	if (rc == 0)
		say(w, "session %lld (%s on %s): %s; ended %s, %lld MiB back on %s", (long long)s->id, s->user,
		    s->host, why, reason, (long long)(s->mem >> 20), s->host);
	else if (rc < 0)
		say(w, "session %lld (%s on %s): %s, but ending it failed: %s (vm-reap will)", (long long)s->id,
		    s->user, s->host, why, e.msg);
}

/*
 * A running session's guest stopped running on its own (paused on an
 * error, crashed): it will not come back by itself, and its user waits on
 * a frozen screen.  End it 'crashed' with what libvirt says and what the
 * host logged; for a first boot that fails the user VM.  An admin's pause,
 * a migration's or a save's is left alone.
 */
static bool
end_stuck(struct watch *w, virConnectPtr conn, const struct vdi_session *s)
{
	struct vdi_err e = { 0 };
	char stuck[128], said[900];
	int rc;

	if (vdi_domain_stuck(conn, s->domain, stuck, sizeof(stuck), &e) != 1)
		return false;
	vdi_domlog_say(&w->o->logs, s->host, s->host_uri, s->domain, stuck, said, sizeof(said));
	rc = vdi_reaper_end(w->db, w->conns, s, "running", "crashed", said, &e);
	clients_forget(w, s->id);
	if (rc == 0)
		say(w, "session %lld (%s on %s): %s; ended crashed, %lld MiB back on %s", (long long)s->id, s->user,
		    s->host, said, (long long)(s->mem >> 20), s->host);
	else if (rc < 0)
		say(w, "session %lld (%s on %s): %s, but ending it failed: %s (vm-reap will)", (long long)s->id,
		    s->user, s->host, said, e.msg);
	return true;
}

static int
viewer(struct watch *w, const struct vdi_session *s, bool in, const char *client, struct vdi_err *err)
{
	int rc = vdi_session_set_viewer(w->db, s->id, in, vdi_clock_now(), err);

	if (rc > 0)
		say(w, "session %lld (%s on %s): viewer %s (%s)", (long long)s->id, s->user, s->host,
		    in ? "connected" : "disconnected", client);
	return rc < 0 ? -1 : 0;
}

/* The SPICE clients QEMU lists for domain on conn (vdi_domain_clients), or NULL with e. */
static char **
clients_read(virConnectPtr conn, const char *domain, struct vdi_err *e)
{
	virDomainPtr d = virDomainLookupByName(conn, domain);
	char **keys;

	if (!d) {
		vdi_virt_fail(VDI_R_TEMP, "looking up the domain", e);
		return NULL;
	}
	keys = vdi_domain_clients(d, e);
	virDomainFree(d);
	return keys;
}

/*
 * Session s's clients on host are keys (taken, NULL-terminated; NULL:
 * unknown, counted from nothing): kept in c, and recorded in the VMDB
 * when that changes whether a viewer is connected.
 */
static int
clients_set(struct watch *w, struct clients *c, int64_t host, char **keys, const struct vdi_session *s,
	    struct vdi_err *err)
{
	vdi_strv_free(c->keys, c->n);
	c->keys = NULL;
	c->n = 0;
	c->host = host;
	if (!keys)
		return 0;
	for (size_t k = 0; keys[k]; k++)
		vdi_strv_push(&c->keys, &c->n, keys[k]);
	free(keys);
	if ((c->n > 0) != vdi_session_connected(s))
		return viewer(w, s, c->n > 0, c->n ? c->keys[0] : "none left", err);
	return 0;
}

static int
on_gfx(struct watch *w, struct whost *h, const struct ev *e, struct vdi_session *s, struct vdi_err *err)
{
	struct clients *c = clients_of(w, s->id, true);
	bool had, moved = c->host != 0 && c->host != h->id;
	struct vdi_err ve = { 0 };

	if (c->host == 0)
		c->host = h->id;
	/* It moved here (vm-migrate recorded who followed it): start again from who QEMU says is in now. */
	else if (moved && clients_set(w, c, h->id, clients_read(h->conn, s->domain, &ve), s, err) < 0)
		return -1;
	had = vdi_strv_has(c->keys, c->n, e->client);

	if (e->phase == VIR_DOMAIN_EVENT_GRAPHICS_INITIALIZE && !had) {
		vdi_strv_push_copy(&c->keys, &c->n, e->client);
		if (c->n == 1 && !c->spend_at)
			c->spend_at = vdi_clock_mono_ms() + TICKET_SPEND_MS;
		return c->n == 1 ? viewer(w, s, true, e->client, err) : 0;
	}
	if (e->phase != VIR_DOMAIN_EVENT_GRAPHICS_DISCONNECT)
		return 0;
	if (!had && moved)
		return 0; /* a client of before the move: QEMU's own list, just read, has the truth */
	if (!had) {
		say(w, "session %lld (%s on %s): client %s left without getting in (a wrong or expired password, or a channel the viewer gave up)",
		    (long long)s->id, s->user, s->host, e->client);
		return 0;
	}
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->keys[i], e->client) == 0) {
			free(c->keys[i]);
			c->keys[i] = c->keys[--c->n];
			break;
		}
	return c->n == 0 ? viewer(w, s, false, e->client, err) : 0;
}

static struct whost *
host_by_id(struct watch *w, int64_t id)
{
	for (size_t i = 0; i < w->nhosts; i++)
		if (w->hosts[i]->id == id)
			return w->hosts[i];
	return NULL;
}

static void
host_disconnect(struct watch *w, struct whost *h)
{
	if (!h->conn)
		return;
	/* On a broken connection these fail; the connection is let go all the same. */
	if (h->cb_life >= 0)
		virConnectDomainEventDeregisterAny(h->conn, h->cb_life);
	if (h->cb_gfx >= 0)
		virConnectDomainEventDeregisterAny(h->conn, h->cb_gfx);
	if (h->cb_close)
		virConnectUnregisterCloseCallback(h->conn, on_close);
	h->cb_life = h->cb_gfx = -1;
	h->cb_close = false;
	virConnectClose(h->conn);
	h->conn = NULL;
	vdi_conns_drop(w->conns, h->name);
}

static const char *
close_why(int reason)
{
	switch (reason) {
	case VIR_CONNECT_CLOSE_REASON_ERROR: return "connection error";
	case VIR_CONNECT_CLOSE_REASON_EOF: return "libvirtd closed the connection";
	case VIR_CONNECT_CLOSE_REASON_KEEPALIVE: return "keepalive timed out";
	default: return "connection closed";
	}
}

static int
handle(struct watch *w, const struct ev *e, struct vdi_err *err)
{
	struct whost *h = host_by_id(w, e->host);
	struct vdi_session s;
	int rc = 0;

	if (!h || !h->conn || e->gen != h->gen)
		return 0; /* removed since, or from a connection that is gone */
	if (e->kind == EV_CLOSED) {
		char why[128];
		snprintf(why, sizeof(why), "watch lost: %s", close_why(e->detail));
		host_disconnect(w, h);
		h->backoff = 1000;
		h->next_try = vdi_clock_mono_ms() + h->backoff;
		say(w, "host %s: %s; marked down, reconnecting", h->name, close_why(e->detail));
		return vdi_host_watch_end(w->db, h->id, h->since, true, why, err);
	}
	switch (session_of(w, h->id, e->domain, &s, err)) {
	case -1:
		return -1;
	case 1:
		return 0;
	}
	/*
	 * A domain that moved away, or a session someone is starting, moving
	 * or ending, is not ours to end.  While it moves, its viewers are the
	 * mover's to record (it reads them on the destination when done).
	 */
	if (e->kind == EV_STOPPED && e->detail != VIR_DOMAIN_EVENT_STOPPED_MIGRATED && strcmp(s.state, "running") == 0)
		end_stopped(w, &s, stopped_why(e->detail), e->detail == VIR_DOMAIN_EVENT_STOPPED_CRASHED ||
			    e->detail == VIR_DOMAIN_EVENT_STOPPED_FAILED);
	else if (e->kind == EV_STUCK && strcmp(s.state, "running") == 0)
		end_stuck(w, h->conn, &s);
	else if (e->kind == EV_GFX && strcmp(s.state, "migrating") != 0)
		rc = on_gfx(w, h, e, &s, err);
	vdi_session_clear(&s);
	return rc;
}

/* ---- connecting, and making the record true again ---- */

/* After (re)connecting: what happened while nobody listened. */
static int
reconcile(struct watch *w, struct whost *h, struct vdi_err *err)
{
	struct vdi_session *ss = NULL;
	size_t n = 0;
	int ret = -1;

	if (vdi_session_list(w->db, h->name, "running", &ss, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct vdi_session *s = &ss[i];
		struct vdi_err e = { 0 };
		char **keys;
		int alive = s->domain ? vdi_domain_alive(h->conn, s->domain, &e) : 0;

		if (alive == 0) {
			end_stopped(w, s, "its domain is gone", false);
			continue;
		}
		if (alive < 0)
			continue;
		/* It froze while nobody listened: ended now, so it has no viewers to read. */
		if (end_stuck(w, h->conn, s) || vdi_session_is_prepare(s))
			continue;
		if (!(keys = clients_read(h->conn, s->domain, &e))) {
			say(w, "session %lld (%s on %s): cannot read its viewers: %s", (long long)s->id, s->user,
			    h->name, e.msg);
			continue;
		}
		if (clients_set(w, clients_of(w, s->id, true), h->id, keys, s, err) < 0)
			goto out;
	}
	ret = 0;
out:
	vdi_sessions_free(ss, n);
	return ret;
}

static void
cb_free(void *opaque)
{
	free(opaque);
}

static struct cbctx *
cbctx(struct watch *w, const struct whost *h)
{
	struct cbctx *x = vdi_xcalloc(1, sizeof(*x));

	x->w = w;
	x->host = h->id;
	x->gen = h->gen;
	return x;
}

/* A domain event callback on h's connection; its opaque is freed by libvirt, or here if it was refused. */
static int
register_event(struct watch *w, const struct whost *h, int id, virConnectDomainEventGenericCallback cb)
{
	struct cbctx *x = cbctx(w, h);
	int r = virConnectDomainEventRegisterAny(h->conn, NULL, id, cb, x, cb_free);

	if (r < 0)
		free(x);
	return r;
}

static int
host_connect(struct watch *w, struct whost *h, struct vdi_err *err)
{
	struct vdi_err e = { 0 };
	struct cbctx *x;

	h->gen++;
	h->conn = vdi_virt_connect(h->uri, w->o->connect_timeout_ms, &e);
	if (!h->conn)
		goto fail;
	/* Callbacks first, then the reconcile: nothing falls between the two. */
	x = cbctx(w, h);
	if (virConnectRegisterCloseCallback(h->conn, on_close, x, cb_free) < 0) {
		free(x);
		vdi_virt_fail(VDI_R_TEMP, "close callback", &e);
		goto fail;
	}
	h->cb_close = true;
	if ((h->cb_life = register_event(w, h, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
					 VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle))) < 0 ||
	    (h->cb_gfx = register_event(w, h, VIR_DOMAIN_EVENT_ID_GRAPHICS,
					VIR_DOMAIN_EVENT_CALLBACK(on_graphics))) < 0) {
		vdi_virt_fail(VDI_R_TEMP, "registering for events", &e);
		goto fail;
	}
	h->since = vdi_clock_now();
	if (reconcile(w, h, err) < 0 || vdi_host_watch_begin(w->db, h->id, h->since, err) < 0)
		return -1;
	say(w, "host %s: watching (%s)", h->name, h->uri);
	h->failing = false;
	h->backoff = 1000;
	return 0;
fail:
	host_disconnect(w, h);
	if (!h->failing)
		say(w, "host %s: cannot watch: %s; retrying with backoff", h->name, e.msg);
	h->failing = true;
	h->backoff = h->backoff ? h->backoff * 2 : 1000;
	if (h->backoff > w->o->backoff_max_ms)
		h->backoff = w->o->backoff_max_ms;
	h->next_try = vdi_clock_mono_ms() + h->backoff;
	return 0;
}

static void
host_free(struct whost *h)
{
	free(h->name);
	free(h->uri);
	free(h);
}

/* Hosts added to or removed from the VMDB since the last look. */
static int
rescan(struct watch *w, struct vdi_err *err)
{
	struct vdi_host *hs = NULL;
	size_t n = 0;

	if (vdi_host_list(w->db, NULL, 0, &hs, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < w->nhosts; i++)
		w->hosts[i]->present = false;
	for (size_t k = 0; k < n; k++) {
		struct whost *h = host_by_id(w, hs[k].id);
		if (h && strcmp(h->uri, hs[k].uri) != 0)
			h->present = false; /* a new URI: a new host to us */
		else if (h)
			h->present = true;
		if (h && h->present)
			continue;
		h = vdi_xcalloc(1, sizeof(*h));
		h->id = hs[k].id;
		h->name = vdi_xstrdup(hs[k].name);
		h->uri = vdi_xstrdup(hs[k].uri);
		h->cb_life = h->cb_gfx = -1;
		h->present = true;
		w->hosts = vdi_grow(w->hosts, w->nhosts, sizeof(*w->hosts));
		w->hosts[w->nhosts++] = h;
	}
	vdi_hosts_free(hs, n);
	for (size_t i = 0; i < w->nhosts;) {
		struct whost *h = w->hosts[i];
		if (h->present) {
			i++;
			continue;
		}
		say(w, "host %s: no longer in the VMDB; not watched", h->name);
		host_disconnect(w, h);
		host_free(h);
		w->hosts[i] = w->hosts[--w->nhosts];
	}
	return 0;
}

static int
tick(struct watch *w, struct vdi_err *err)
{
	int64_t *ids = NULL;
	size_t n = 0;
	int ret = -1;

	if (rescan(w, err) < 0)
		goto out;
	/* Sized after the rescan: it may have added hosts. */
	ids = vdi_xcalloc(w->nhosts + 1, sizeof(*ids));
	for (size_t i = 0; i < w->nhosts && !*w->o->stop; i++) {
		struct whost *h = w->hosts[i];
		if (!h->conn && vdi_clock_mono_ms() >= h->next_try && host_connect(w, h, err) < 0)
			goto out;
		if (h->conn)
			ids[n++] = h->id;
	}
	ret = vdi_host_watch_seen(w->db, ids, n, vdi_clock_now(), err);
out:
	free(ids);
	return ret;
}

/* Spend the tickets whose viewer got in (vdi_start_ticket_spend): a replayed .vv is refused. */
static void
spend_tickets(struct watch *w)
{
	int64_t now = vdi_clock_mono_ms();

	for (size_t i = 0; i < w->ncl; i++) {
		struct clients *c = &w->cl[i];
		struct whost *h;
		struct vdi_session s;
		struct vdi_err e = { 0 };

		if (!c->spend_at || now < c->spend_at)
			continue;
		c->spend_at = 0;
		h = host_by_id(w, c->host);
		if (!h || !h->conn || vdi_session_get(w->db, c->session, &s, &e) < 0)
			continue;
		if (strcmp(s.state, "running") == 0 && s.host_id == h->id && s.domain) {
			if (vdi_start_ticket_spend(w->db, h->conn, &s, &e) < 0)
				say(w, "session %lld (%s on %s): its ticket could not be spent: %s", (long long)s.id,
				    s.user, s.host, e.msg);
			else
				say(w, "session %lld (%s on %s): ticket spent (a replay of its .vv is refused)",
				    (long long)s.id, s.user, s.host);
		}
		vdi_session_clear(&s);
	}
}

static int
drain(struct watch *w, struct vdi_err *err)
{
	struct ev *q;
	size_t n;
	char buf[256];
	int ret = 0;

	while (read(w->pipe[0], buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&w->mu);
	q = w->q;
	n = w->nq;
	w->q = NULL;
	w->nq = 0;
	pthread_mutex_unlock(&w->mu);
	for (size_t i = 0; i < n && ret == 0; i++)
		ret = handle(w, &q[i], err);
	free(q);
	return ret;
}

int
vdi_watch_run(struct vdi_db *db, const struct vdi_watch_opts *o, struct vdi_err *err)
{
	struct watch w = { .db = db, .o = o, .pipe = { -1, -1 } };
	int64_t next_tick = 0;
	int ret = -1;

	if (vdi_virt_init(err) < 0)
		return -1;
	pthread_mutex_init(&w.mu, NULL);
	if (pipe2(w.pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		vdi_err_set(err, VDI_R_FAIL, "pipe: %s", strerror(errno));
		goto out;
	}
	w.conns = vdi_conns_new(o->connect_timeout_ms);
	while (!*o->stop) {
		struct pollfd p = { .fd = w.pipe[0], .events = POLLIN };
		int64_t now = vdi_clock_mono_ms();

		if (now >= next_tick) {
			if (tick(&w, err) < 0)
				goto out;
			next_tick = vdi_clock_mono_ms() + o->rescan_ms;
		}
		if (poll(&p, 1, 500) < 0 && errno != EINTR) {
			vdi_err_set(err, VDI_R_FAIL, "poll: %s", strerror(errno));
			goto out;
		}
		if (drain(&w, err) < 0)
			goto out;
		spend_tickets(&w);
	}
	ret = 0;
out:
	for (size_t i = 0; i < w.nhosts; i++) {
		struct vdi_err e = { 0 };
		if (w.hosts[i]->conn)
			vdi_host_watch_end(db, w.hosts[i]->id, w.hosts[i]->since, false, NULL, &e);
		host_disconnect(&w, w.hosts[i]);
		host_free(w.hosts[i]);
	}
	free(w.hosts);
	for (size_t i = 0; i < w.ncl; i++)
		vdi_strv_free(w.cl[i].keys, w.cl[i].n);
	free(w.cl);
	vdi_conns_free(w.conns);
	/* Callbacks may still be queued by libvirt's thread until their connections are closed: now they are. */
	pthread_mutex_lock(&w.mu);
	free(w.q);
	w.q = NULL;
	w.nq = 0;
	pthread_mutex_unlock(&w.mu);
	if (w.pipe[0] >= 0) {
		close(w.pipe[0]);
		close(w.pipe[1]);
	}
	pthread_mutex_destroy(&w.mu);
	return ret;
}
