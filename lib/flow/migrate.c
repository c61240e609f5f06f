/* migrate.c - moving a running desktop live to another host (see migrate.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "clock.h"
#include "assign.h"
#include "batch.h"
#include "config.h"
#include "file.h"
#include "host.h"
#include "mem.h"
#include "migrate.h"
#include "session.h"
#include "start.h"
#include "strv.h"
#include "virt.h"
#include "xml.h"

/* ---- the watchdog: abort the job past the deadline ---- */

struct watchdog {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done, fired;
	virDomainPtr dom;          /* the source domain, borrowed */
	int64_t deadline;          /* monotonic ms; 0: none */
	bool test_stop;            /* VDI_TEST_STOP_AT=migrate-running: die once the job runs */
};

static bool
job_runs(virDomainPtr dom)
{
	virDomainJobInfo ji;

	return virDomainGetJobInfo(dom, &ji) == 0 && ji.type != VIR_DOMAIN_JOB_NONE;
}

static void *
watchdog_run(void *p)
{
	struct watchdog *w = p;

	pthread_mutex_lock(&w->mu);
	while (!w->done) {
		int64_t now = vdi_clock_mono_ms(), until = now + 1000;
		struct timespec ts;

		if (w->deadline && now >= w->deadline) {
			w->fired = true;
			pthread_mutex_unlock(&w->mu);
			/* The job's owner (virDomainMigrate3) then fails, and libvirt resumes the source. */
			virDomainAbortJob(w->dom);
			return NULL;
		}
		if (w->test_stop) {
			pthread_mutex_unlock(&w->mu);
			if (job_runs(w->dom))
				vdi_file_test_stop("migrate-running");
			pthread_mutex_lock(&w->mu);
			until = now + 20;
		}
		if (w->deadline && w->deadline < until)
			until = w->deadline;
		clock_gettime(CLOCK_REALTIME, &ts);
		until -= now; /* the wait, as a realtime deadline */
		ts.tv_sec += until / 1000;
		ts.tv_nsec += (until % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		if (!w->done)
			pthread_cond_timedwait(&w->cv, &w->mu, &ts);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* ---- where a domain is ---- */

enum where { W_GONE, W_RUNNING, W_PAUSED, W_BUSY };

/* The state of domain name on c: a where, or -1 with err (75: the host did not say). */
static int
where_is(virConnectPtr c, const char *host, const char *name, struct vdi_err *err)
{
	virDomainPtr d = virDomainLookupByName(c, name);
	int state = 0, reason = 0, ret = -1;

	if (!d) {
		if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN)
			return W_GONE;
		vdi_virt_fail(VDI_R_TEMP, "looking up the domain", err);
		return vdi_err_prefix(err, "host %s", host);
	}
	if (virDomainGetState(d, &state, &reason, 0) < 0) {
		if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN) {
			ret = W_GONE;
			goto out;
		}
		vdi_virt_fail(VDI_R_TEMP, "reading the domain's state", err);
		vdi_err_prefix(err, "host %s", host);
		goto out;
	}
	if (job_runs(d))
		ret = W_BUSY;
	else if (state == VIR_DOMAIN_RUNNING)
		ret = W_RUNNING;
	else if (state == VIR_DOMAIN_PAUSED)
		ret = W_PAUSED;
	else
		ret = W_GONE; /* shut off, crashed: a transient domain about to vanish */
out:
	virDomainFree(d);
	return ret;
}

static int
resume(virConnectPtr c, const char *host, const char *name, struct vdi_err *err)
{
	virDomainPtr d = virDomainLookupByName(c, name);
	int rc = d ? virDomainResume(d) : -1;

	if (rc < 0) {
		vdi_virt_fail(VDI_R_TEMP, "resuming the domain", err);
		vdi_err_prefix(err, "host %s", host);
	}
	if (d)
		virDomainFree(d);
	return rc;
}

/*
 * Migrating session s is held by this process: find where its domain
 * runs, leave it on one host only, and record that.  0 settled
 * (*moved), -1 with err (the session stays migrating, for a later try).
 */
static int
resolve(struct vdi_db *db, struct vdi_conns *conns, const struct vdi_session *s, bool *moved,
	struct vdi_ports *port, struct vdi_err *err)
{
	virConnectPtr src, dst;
	int ws, wd;
	char detail[256], listen[256];

	*moved = false;
	vdi_start_listen(s->to_display, s->to_uri, listen, sizeof(listen));
	port->spice = s->display_port;
	port->vnc = s->console_port;
	if (!(dst = vdi_conns_get(conns, s->to_host, s->to_uri, err)) ||
	    (wd = where_is(dst, s->to_host, s->domain, err)) < 0)
		return -1;
	/*
	 * A domain running on the destination has been handed over (libvirt
	 * resumes it only after the source finished sending): it wins even when
	 * the source does not answer.  A copy left there later is an orphan to
	 * vm-reap --orphans, as it is on no host the VMDB names for it.
	 */
	if (!(src = vdi_conns_get(conns, s->host, s->host_uri, err)) ||
	    (ws = where_is(src, s->host, s->domain, err)) < 0) {
		if (wd != W_RUNNING)
			return -1;
		vdi_err_reset(err);
		src = NULL;
		ws = W_GONE;
	}
	if (ws == W_BUSY || wd == W_BUSY)
		return vdi_err_set(err, VDI_R_TEMP, "a migration job of session %lld still runs on %s; try again later",
				   (long long)s->id, ws == W_BUSY ? s->host : s->to_host);
	if (wd == W_RUNNING || (wd == W_PAUSED && ws == W_GONE)) {
		/* It got there: the source is a paused leftover (or already gone). */
		if (src && ws != W_GONE && vdi_domain_destroy(src, s->domain, err) < 0)
			return -1;
		if (wd == W_PAUSED && resume(dst, s->to_host, s->domain, err) < 0)
			return -1;
		if (vdi_domain_port(dst, s->domain, s->id, port, err) < 0)
			return -1;
		*moved = true;
	} else {
		/* It stays (or is gone everywhere: vm-reap ends it poweroff): an unfinished incoming copy goes. */
		if (wd != W_GONE && vdi_domain_destroy(dst, s->domain, err) < 0)
			return -1;
		if (ws == W_PAUSED && resume(src, s->host, s->domain, err) < 0)
			return -1;
	}
	snprintf(detail, sizeof(detail), "session=%lld %s (settled: the domain was %s on %s, %s on %s)",
		 (long long)s->id, *moved ? s->to_host : s->host,
		 !src ? "unknown (no answer)" : ws == W_RUNNING ? "running" : ws == W_PAUSED ? "paused" : "gone", s->host,
		 wd == W_RUNNING ? "running" : wd == W_PAUSED ? "paused" : "gone", s->to_host);
	return vdi_session_end_move(db, s->id, *moved, port, listen, detail, err);
}

int
vdi_migrate_settle(struct vdi_db *db, struct vdi_conns *conns, int64_t id, bool *moved, struct vdi_err *err)
{
	struct vdi_session s = { 0 };
	struct vdi_ports port;
	int rc;

	if ((rc = vdi_session_claim_move(db, id, err)) != 0)
		return rc;
	if (vdi_session_get(db, id, &s, err) < 0)
		return -1;
	rc = resolve(db, conns, &s, moved, &port, err);
	vdi_session_clear(&s);
	return rc;
}

/* ---- the move ---- */

/* After the move: who is connected is read from the destination's QEMU, as vm-watch does. */
static void
record_viewer(struct vdi_db *db, virDomainPtr dom, const struct vdi_session *s)
{
	struct vdi_err e = { 0 };
	char **keys;
	size_t n = 0;

	if (!(keys = vdi_domain_clients(dom, &e)))
		return; /* vm-watch reconciles at its next connect; nothing is lost but a moment's view */
	while (keys[n])
		n++;
	if ((n > 0) != vdi_session_connected(s))
		vdi_session_set_viewer(db, s->id, n > 0, vdi_clock_now(), &e);
	vdi_strv_free(keys, n);
}

static int
add_param(virTypedParameterPtr *p, int *n, int *max, const char *name, const char *value, struct vdi_err *err)
{
	if (virTypedParamsAddString(p, n, max, name, value) < 0)
		return vdi_virt_fail(VDI_R_FAIL, "building the migration's parameters", err);
	return 0;
}

/* Move claimed session s; on return it is recorded where it runs (or left migrating on a VMDB error). */
static int
move(struct vdi_db *db, const struct vdi_session *s, const struct vdi_migrate_opts *o,
     struct vdi_migrate_result *r, struct vdi_err *err)
{
	virConnectPtr src, dst;
	virDomainPtr dom = NULL, ddom = NULL;
	virTypedParameterPtr params = NULL;
	virErrorPtr saved = NULL;
	int nparams = 0, maxparams = 0, ret = -1;
	char *xml = NULL, *dxml = NULL, gfx[300], detail[256], listen[256];
	struct watchdog w = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
	pthread_t t;
	bool tried = false, moved = false;
	int64_t t0 = vdi_clock_mono_ms();
	struct vdi_ports port = { 0 };
	const char *stop = getenv("VDI_TEST_STOP_AT");

	if (!(src = vdi_conns_get(o->conns, s->host, s->host_uri, err)) ||
	    !(dst = vdi_conns_get(o->conns, s->to_host, s->to_uri, err)))
		goto undo;
	if (!(dom = virDomainLookupByName(src, s->domain))) {
		vdi_virt_fail(virGetLastErrorCode() == VIR_ERR_NO_DOMAIN ? VDI_R_FAIL : VDI_R_TEMP, "finding its domain",
			      err);
		goto undo;
	}
	/* SECURE: the SPICE password goes along, or the viewer could not follow. */
	if (!(xml = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_SECURE | VIR_DOMAIN_XML_MIGRATABLE))) {
		vdi_virt_fail(VDI_R_TEMP, "reading its domain XML", err);
		goto undo;
	}
	vdi_start_listen(s->to_display, s->to_uri, listen, sizeof(listen));
	if (!(dxml = vdi_xml_domain_move(xml, listen, s->to_network, s->to_network ? NULL : s->to_bridge, err)))
		goto undo;
	if (add_param(&params, &nparams, &maxparams, VIR_MIGRATE_PARAM_DEST_XML, dxml, err) < 0 ||
	    (s->to_migration_uri &&
	     add_param(&params, &nparams, &maxparams, VIR_MIGRATE_PARAM_URI, s->to_migration_uri, err) < 0))
		goto undo;
	if (o->bandwidth > 0 && virTypedParamsAddULLong(&params, &nparams, &maxparams, VIR_MIGRATE_PARAM_BANDWIDTH,
							(unsigned long long)o->bandwidth) < 0) {
		vdi_virt_fail(VDI_R_FAIL, "building the migration's parameters", err);
		goto undo;
	}
	/* The viewer is told where to follow: the destination's SPICE address (its port from libvirt). */
	snprintf(gfx, sizeof(gfx), "spice://%s", listen);
	if (add_param(&params, &nparams, &maxparams, VIR_MIGRATE_PARAM_GRAPHICS_URI, gfx, err) < 0)
		goto undo;
	w.dom = dom;
	w.deadline = o->timeout_ms > 0 ? t0 + o->timeout_ms : 0;
	w.test_stop = stop && strcmp(stop, "migrate-running") == 0;
	if (pthread_create(&t, NULL, watchdog_run, &w) != 0) {
		vdi_err_set(err, VDI_R_FAIL, "cannot start the migration's watchdog");
		goto undo;
	}
	tried = true;
	ddom = virDomainMigrate3(dom, dst, params, (unsigned int)nparams,
				 VIR_MIGRATE_LIVE | (o->unsafe ? VIR_MIGRATE_UNSAFE : 0));
	if (!ddom)
		saved = virSaveLastError();
	pthread_mutex_lock(&w.mu);
	w.done = true;
	pthread_cond_signal(&w.cv);
	pthread_mutex_unlock(&w.mu);
	pthread_join(t, NULL);
	r->ms = vdi_clock_mono_ms() - t0;
	if (!ddom) {
		if (w.fired)
			vdi_err_set(err, VDI_R_FAIL, "migrating to %s took longer than migrate_timeout (%lld s): aborted",
				    s->to_host, (long long)(o->timeout_ms / 1000));
		else
			vdi_virt_fail_saved(VDI_R_FAIL, "migrating", saved, err);
		/* libvirt refuses a disk cache mode it cannot prove safe on shared storage it does not know. */
		if (saved && saved->code == VIR_ERR_MIGRATE_UNSAFE && !o->unsafe) {
			size_t n = strlen(err->msg);
			snprintf(err->msg + n, sizeof(err->msg) - n, " (on shared storage libvirt does not know, "
				 "such as a plain shared folder: migrate_unsafe = yes in vdi.conf)");
		}
		goto undo;
	}
	vdi_file_test_stop("migrate-done");
	if (vdi_domain_port(dst, s->domain, s->id, &port, err) < 0)
		goto undo; /* resolve() looks again */
	snprintf(detail, sizeof(detail), "session=%lld from=%s to=%s in %lld.%03lld s", (long long)s->id, s->host,
		 s->to_host, (long long)(r->ms / 1000), (long long)(r->ms % 1000));
	if (vdi_session_end_move(db, s->id, true, &port, listen, detail, err) < 0)
		goto out;
	record_viewer(db, ddom, s);
	r->port = port.spice;
	r->moved = true;
	ret = 0;
	goto out;
undo:
	/*
	 * It did not move, as far as this process knows.  Before any
	 * migration was asked for, it surely runs where it ran; after, both
	 * hosts are asked.  If they do not answer, it stays migrating, for
	 * vm-reap to settle.
	 */
	if (!tried) {
		struct vdi_err e = { 0 };
		snprintf(detail, sizeof(detail), "session=%lld stays on %s: %.160s", (long long)s->id, s->host, err->msg);
		vdi_session_end_move(db, s->id, false, &port, NULL, detail, &e);
	} else {
		struct vdi_err e = { 0 };
		if (resolve(db, o->conns, s, &moved, &port, &e) == 0 && moved) {
			/* The job failed to report but the domain made it (a lost reply). */
			r->port = port.spice;
			r->moved = true;
			vdi_err_reset(err);
			ret = 0;
		}
	}
out:
	if (saved)
		virFreeError(saved);
	virTypedParamsFree(params, nparams);
	free(xml);
	free(dxml);
	if (ddom)
		virDomainFree(ddom);
	if (dom)
		virDomainFree(dom);
	return ret;
}

int
vdi_migrate(struct vdi_db *db, int64_t id, const struct vdi_migrate_opts *o, struct vdi_migrate_result *r,
	    struct vdi_err *err)
{
	struct vdi_session s = { 0 };
	struct vdi_assign_opts ao = { 0 };
	struct vdi_assign_result ar = { 0 };
	bool moved;
	int ret = -1;

	memset(r, 0, sizeof(*r));
	r->session = id;
	if (vdi_session_get(db, id, &s, err) < 0)
		goto out;
	r->user = vdi_xstrdup(s.user);
	if (s.host)
		r->from = vdi_xstrdup(s.host);
	/* A move left half done by a process that died is settled first. */
	if (strcmp(s.state, "migrating") == 0 && !vdi_db_dry_run(db)) {
		if (vdi_migrate_settle(db, o->conns, id, &moved, err) < 0)
			goto out;
		vdi_session_clear(&s);
		if (vdi_session_get(db, id, &s, err) < 0)
			goto out;
		free(r->from);
		r->from = s.host ? vdi_xstrdup(s.host) : NULL;
	}
	if (o->to && s.host && strcmp(o->to, s.host) == 0) {
		vdi_err_set(err, VDI_R_CONFLICT, "session %lld runs on %s already", (long long)id, s.host);
		goto out;
	}
	ao.policy = o->policy;
	ao.fallback = o->fallback;
	ao.host = o->to;
	ao.force = o->force;
	ao.max_age = o->max_age;
	ao.rng = o->rng;
	ao.move = id;
	ao.explain = vdi_db_dry_run(db); /* the why names its hosts */
	if (vdi_assign(db, s.user, &ao, &ar, err) < 0)
		goto out;
	snprintf(r->why, sizeof(r->why), "%s", ar.why);
	if (vdi_db_dry_run(db)) {
		r->to = ar.host;
		ar.host = NULL;
		ret = 0;
		goto out;
	}
	vdi_file_test_stop("migrate-claimed");
	vdi_session_clear(&s);
	if (vdi_session_get(db, id, &s, err) < 0)
		goto out;
	if (move(db, &s, o, r, err) < 0)
		goto out;
	r->to = vdi_xstrdup(s.to_host);
	ret = 0;
out:
	vdi_assign_result_clear(&ar);
	vdi_session_clear(&s);
	return ret;
}

void
vdi_migrate_result_clear(struct vdi_migrate_result *r)
{
	free(r->user);
	free(r->from);
	free(r->to);
	memset(r, 0, sizeof(*r));
}

/* ---- batches: a few moves in flight, results in input order ---- */

struct many {
	const struct vdi_migrate_opts *o;
	const struct vdi_migrate_batch *b;
	const int64_t *ids;
	char *const *to;
	size_t n;
	struct vdi_migrate_result *res;
	struct vdi_err *errs;
	struct vdi_order order;
	struct vdi_workers w;
};

/* Input i's turn has come (vdi_order): tell the caller. */
static void
many_say(void *ctx, size_t i, size_t job)
{
	struct many *m = ctx;

	(void)job;
	m->b->done(m->b->ctx, i, &m->res[i], m->errs[i].code ? &m->errs[i] : NULL);
}

static void
many_job(void *ctx, int worker, size_t i)
{
	struct many *m = ctx;
	struct vdi_migrate_opts o = *m->o;
	struct vdi_err *e = &m->errs[i];
	struct vdi_db *db;

	if (vdi_workers_get(&m->w, worker, &db, &o.conns, e) < 0) {
		vdi_err_object(e, "session %lld", (long long)m->ids[i]);
	} else {
		if (m->to && m->to[i])
			o.to = m->to[i];
		if (vdi_migrate(db, m->ids[i], &o, &m->res[i], e) < 0)
			vdi_err_object(e, "session %lld%s%s", (long long)m->ids[i], m->res[i].user ? " of " : "",
				       m->res[i].user ? m->res[i].user : "");
	}
	vdi_order_done(&m->order, i);
}

void
vdi_migrate_many(const int64_t *ids, char *const *to, size_t n, const struct vdi_migrate_opts *o,
		 const struct vdi_migrate_batch *b)
{
	struct many m = { .o = o, .b = b, .ids = ids, .to = to, .n = n,
			  .w = { .db = b->db, .timeout_ms = b->timeout_ms } };
	int parallel = b->parallel < 1 ? 1 : b->parallel;

	vdi_workers_init(&m.w, parallel);

	m.res = vdi_xcalloc(n + 1, sizeof(*m.res));
	m.errs = vdi_xcalloc(n + 1, sizeof(*m.errs));
	vdi_order_init(&m.order, n, NULL, many_say, &m);
	vdi_batch_run(n, parallel, many_job, &m);
	vdi_order_destroy(&m.order);
	vdi_workers_free(&m.w);
	for (size_t i = 0; i < n; i++)
		vdi_migrate_result_clear(&m.res[i]);
	free(m.res);
	free(m.errs);
}

void
vdi_migrate_opts_config(struct vdi_migrate_opts *o, const struct vdi_config *cfg)
{
	if (vdi_policy_parse(cfg->policy, &o->policy) < 0)
		o->policy = VDI_POLICY_LEAST_SESSIONS;
	o->fallback = VDI_POLICY_LEAST_SESSIONS;
	o->max_age = cfg->poll_max_age / 1000;
	o->timeout_ms = cfg->migrate_timeout;
	o->unsafe = cfg->migrate_unsafe != 0;
	o->bandwidth = cfg->migrate_bandwidth;
}

int
vdi_migrate_away(struct vdi_db *db, const char *host, const struct vdi_migrate_opts *o,
		 const struct vdi_migrate_batch *b, int64_t *left, struct vdi_err *err)
{
	struct vdi_session *ss = NULL;
	int64_t *ids = NULL;
	size_t n = 0, nids = 0;
	int rc;

	*left = 0;
	rc = vdi_host_exists(db, host, err);
	if (rc <= 0)
		return rc < 0 ? -1 : vdi_err_set(err, VDI_R_NOTFOUND, "no host '%s'", host);
	if (vdi_session_list(db, host, NULL, &ss, &n, err) < 0)
		return -1;
	/* Oldest first: the list comes newest first. */
	for (size_t i = n; i-- > 0;)
		if (ss[i].host && strcmp(ss[i].host, host) == 0 && (strcmp(ss[i].state, "running") == 0 ||
								      strcmp(ss[i].state, "migrating") == 0)) {
			ids = vdi_grow(ids, nids, sizeof(*ids));
			ids[nids++] = ss[i].id;
		}
	vdi_sessions_free(ss, n);
	vdi_migrate_many(ids, NULL, nids, o, b);
	free(ids);
	/* What stays: every session there that is not ended (the moves that failed, and the ones not running). */
	if (vdi_session_list(db, host, NULL, &ss, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		*left += ss[i].host && strcmp(ss[i].host, host) == 0;
	vdi_sessions_free(ss, n);
	return 0;
}

int
vdi_migrate_drain(struct vdi_db *db, const char *host, const char *admin, bool force,
		  const struct vdi_migrate_opts *o, const struct vdi_migrate_batch *b, int64_t *left,
		  struct vdi_err *err)
{
	bool dry = vdi_db_dry_run(db);

	*left = 0;
	vdi_err_object(err, "%s", host);
	if (b) {
		/* No new sessions first; then the moves; then (maintenance) the mark. */
		if (!dry && vdi_host_set_admin(db, host, "draining", false, err) < 0)
			return -1;
		if (vdi_migrate_away(db, host, o, b, left, err) < 0)
			return -1;
		if (strcmp(admin, "draining") == 0 || dry)
			return 0;
	}
	return vdi_host_set_admin(db, host, admin, force, err);
}
