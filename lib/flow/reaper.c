/* reaper.c - ending sessions for real, and vm-reap's run (see reaper.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "event.h"
#include "batch.h"
#include "file.h"
#include "host.h"
#include "master.h"
#include "mem.h"
#include "migrate.h"
#include "proc.h"
#include "strv.h"
#include "home.h"
#include "reaper.h"
#include "uservm.h"
#include "virt.h"

int
vdi_reaper_end(struct vdi_db *db, struct vdi_conns *cs, const struct vdi_session *s, const char *expect,
	       const char *reason, const char *detail, struct vdi_err *err)
{
	char domain[160], overlay[160], image[160];
	virConnectPtr conn;
	int rc;

	rc = vdi_session_claim_stop(db, s->id, expect, err);
	if (rc != 0)
		return rc;
	vdi_file_test_stop("stopping");
	if (s->host && strcmp(s->state, "assigned") != 0) {
		vdi_session_names(s->id, s->user, domain, sizeof(domain), overlay, sizeof(overlay));
		/*
		 * A warm build that ends here is not saved: its layer goes, and the
		 * image it began if it began one (only a build that is stopping
		 * saves: a file of that name before then is not ours to delete).
		 */
		if (vdi_session_is_warm_build(s))
			vdi_session_warm_names(s->id, s->user, domain, sizeof(domain), overlay, sizeof(overlay), image,
					       sizeof(image));
		if (!(conn = vdi_conns_get(cs, s->host, s->host_uri, err)) ||
		    vdi_domain_destroy(conn, s->domain ? s->domain : domain, err) < 0 ||
		    /*
		     * A first boot runs on the user VM's own disk: there is no overlay to
		     * delete.  Unlisted: a session that moved here has an overlay this
		     * host's view of the pool may not know.
		     */
		    (!vdi_session_is_prepare(s) &&
		     vdi_vol_delete_unlisted(conn, s->pool, s->overlay ? s->overlay : overlay, err) < 0) ||
		    (vdi_session_is_warm_build(s) && strcmp(s->state, "stopping") == 0 &&
		     vdi_vol_delete_unlisted(conn, s->pool, image, err) < 0))
			return -1;
		/* The home disk's allocation now that nothing writes it, for vm-ls (best effort: a figure). */
		if (s->home) {
			int64_t cap = 0, used = 0;
			if (vdi_vol_info(conn, s->pool, s->home, &cap, &used, VDI_ERR_SCRATCH) == 0)
				vdi_home_set_used(db, s->user, used, VDI_ERR_SCRATCH);
		}
	}
	rc = vdi_session_end(db, s->id, "stopping", reason, detail, err);
	return rc < 0 ? -1 : 0;
}

int
vdi_reaper_lock(struct vdi_db *db, int *fd, struct vdi_err *err)
{
	return vdi_db_lock(db, "reap", false, fd, err);
}

static const struct vdi_session *
find_session(const struct vdi_session *ss, size_t n, int64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (ss[i].id == id)
			return &ss[i];
	return NULL;
}

/* Carry out one planned item; 0 done, 1 left alone (moved on meanwhile), -1 error. */
static int
act(struct vdi_db *db, struct vdi_conns *cs, const struct vdi_host *hs, const struct vdi_reap_item *it,
    const struct vdi_session *s, struct vdi_err *err)
{
	const struct vdi_host *h = &hs[it->host];
	virConnectPtr conn;
	struct vdi_ports port;

	switch (it->action) {
	case VDI_REAP_WAIT:
		return 0;
	case VDI_REAP_SETTLE: {
		bool moved;
		return vdi_migrate_settle(db, cs, s->id, &moved, err) < 0 ? -1 : 0;
	}
	case VDI_REAP_END_DB:
		/* Only while it is still what the plan saw: a vm-start may have claimed it since. */
		return vdi_session_end(db, s->id, s->state, it->reason, NULL, err);
	case VDI_REAP_END:
		return vdi_reaper_end(db, cs, s, s->state, it->reason, NULL, err);
	case VDI_REAP_FINISH_START:
		if (!(conn = vdi_conns_get(cs, h->name, h->uri, err)) ||
		    vdi_domain_port(conn, s->domain, s->id, &port, err) < 0)
			return -1;
		/* The starter is dead: take its claim, then record what runs. */
		switch (vdi_session_claim_start(db, s->id, s->domain, s->overlay, s->warm, s->display_address,
						s->display_password, s->console_password, err)) {
		case -1: return -1;
		case 1: return 1; /* running already */
		default: return vdi_session_set_running(db, s->id, &port, s->warm, err);
		}
	case VDI_REAP_DESTROY_DOMAIN:
		if (!(conn = vdi_conns_get(cs, h->name, h->uri, err)))
			return -1;
		return vdi_domain_destroy(conn, it->object, err) < 0 ? -1 : 0;
	case VDI_REAP_DELETE_OVERLAY:
		if (!(conn = vdi_conns_get(cs, h->name, h->uri, err)))
			return -1;
		return vdi_vol_delete(conn, h->pool, it->object, err) < 0 ? -1 : 0;
	}
	return 0;
}

/*
 * The orphan audit's word on home disks: those whose user has no user VM
 * (removed, or expired) are kept for the user's next one, never deleted
 * here (vm-copy --rm --purge-home deletes one on request).
 */
static void
report_kept_homes(struct vdi_db *db, const struct vdi_reaper_opts *o, int *worst)
{
	struct vdi_home *hs = NULL;
	struct vdi_err e = { 0 };
	size_t n = 0;

	if (vdi_home_list(db, true, &hs, &n, &e) < 0) {
		*worst = vdi_code_worst(*worst, e.code);
		o->report(o->ctx, "keep", "home disks", "no-uservm", &e);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		char obj[300];
		snprintf(obj, sizeof(obj), "home disk %s of %s", hs[i].volume, hs[i].user);
		o->report(o->ctx, "keep", obj, "no-uservm", NULL);
	}
	vdi_homes_free(hs, n);
}

/* User VMs whose preparation nobody will carry on: failed, for vm-copy to retry. */
static void
reap_unwatched(struct vdi_db *db, const struct vdi_reaper_opts *o, int *worst)
{
	struct vdi_uservm *us = NULL;
	struct vdi_err e = { 0 };
	size_t n = 0;

	if (vdi_uservm_list_unwatched(db, &us, &n, &e) < 0) {
		*worst = vdi_code_worst(*worst, e.code);
		o->report(o->ctx, "fail", "user VMs", "abandoned", &e);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		char obj[160];
		snprintf(obj, sizeof(obj), "user VM %s", us[i].user);
		vdi_err_reset(&e);
		if (!vdi_db_dry_run(db) && vdi_uservm_fail(db, us[i].id, "its preparation was abandoned (no first boot, "
						   "its vm-copy gone)", &e) < 0)
			*worst = vdi_code_worst(*worst, e.code);
		o->report(o->ctx, "fail", obj, "abandoned", e.code ? &e : NULL);
	}
	vdi_uservms_free(us, n);
}

/* --expired: user VMs past their expiry with no session: volumes, then the row. */
static void
reap_expired(struct vdi_db *db, const struct vdi_reaper_opts *o, const struct vdi_host *hs, size_t nhs,
	     int *worst)
{
	struct vdi_uservm *us;
	struct vdi_err err = { 0 };
	size_t n;
	int64_t now = vdi_clock_now();

	if (vdi_uservm_list(db, NULL, 0, &us, &n, &err) < 0) {
		*worst = vdi_code_worst(*worst, err.code);
		o->report(o->ctx, "delete", "expired user VMs", "expired", &err);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct vdi_uservm *u = &us[i];
		virConnectPtr conn = NULL;
		char obj[160];

		if (!u->expires || u->expires > now || u->session_id || strcmp(u->state, "ready") != 0)
			continue;
		snprintf(obj, sizeof(obj), "user VM of %s", u->user);
		vdi_err_reset(&err);
		if (vdi_db_dry_run(db)) {
			o->report(o->ctx, "delete", obj, "expired", NULL);
			continue;
		}
		for (size_t k = 0; k < nhs && !conn; k++)
			if (strcmp(hs[k].pool, u->pool) == 0 && strcmp(hs[k].health, "down") != 0)
				conn = vdi_conns_get(o->conns, hs[k].name, hs[k].uri, &err);
		if (!conn) {
			if (!err.code)
				vdi_err_set(&err, VDI_R_TEMP, "no host that answers sees pool %s", u->pool);
		} else if (vdi_vol_delete(conn, u->pool, u->volume, &err) >= 0 &&
			   vdi_vol_delete(conn, u->pool, u->seed, &err) >= 0 &&
			   vdi_uservm_rm_row(db, u->id, u->user, &err) == 0) {
			o->report(o->ctx, "delete", obj, "expired", NULL);
			continue;
		}
		*worst = vdi_code_worst(*worst, err.code ? err.code : VDI_EFAIL);
		o->report(o->ctx, "delete", obj, "expired", &err);
	}
	vdi_uservms_free(us, n);
}

/* Ask the hosts that matter (with sessions past assigned, fenced ones; all with --orphans) for their domains. */
static void
probe_hosts(const struct vdi_reaper_opts *o, const struct vdi_session *ss, size_t nss, const struct vdi_host *hs,
	    size_t nhs, struct vdi_node_report *reps, struct vdi_reap_host *rh)
{
	struct vdi_probe_req *reqs = vdi_xcalloc(nhs + 1, sizeof(*reqs));
	struct vdi_node_report *tmp = vdi_xcalloc(nhs + 1, sizeof(*tmp));
	size_t *map = vdi_xcalloc(nhs + 1, sizeof(*map)), nq = 0;

	for (size_t k = 0; k < nhs; k++) {
		bool want = o->plan.orphans || hs[k].fenced;
		for (size_t i = 0; i < nss && !want; i++)
			want = ss[i].host_id == hs[k].id && strcmp(ss[i].state, "assigned") != 0;
		rh[k].id = hs[k].id;
		rh[k].name = hs[k].name;
		rh[k].pool = hs[k].pool;
		rh[k].down_since = hs[k].down_since;
		rh[k].fenced = hs[k].fenced != 0;
		if (!want)
			continue;
		reqs[nq].uri = hs[k].uri;
		reqs[nq].domains = true;
		map[nq++] = k;
	}
	vdi_virt_probe_many(reqs, nq, o->timeout_ms, o->parallel, tmp);
	for (size_t q = 0; q < nq; q++) {
		reps[map[q]] = tmp[q];
		rh[map[q]].rep = &reps[map[q]];
	}
	free(tmp);
	free(map);
	free(reqs);
}

/*
 * Carrying the plan out.  Items on one session are one chain, done in plan
 * order by one worker (an orphan's domain is destroyed before its overlay
 * is deleted); chains run o->act_parallel at once, o->act_parallel_host on
 * one host, each worker with its own VMDB handle and connections.  Results
 * are kept per item and reported in plan order by the caller.
 */
struct acts {
	struct vdi_db *db;                 /* the caller's, when one worker does it all */
	const struct vdi_reaper_opts *o;
	const struct vdi_host *hs;
	const struct vdi_session *ss;
	size_t nss;
	const struct vdi_reap_item *items;
	size_t *chain;                     /* chain c: items chain[start[c]] .. chain[start[c + 1] - 1] */
	size_t *start;
	int *rc;                           /* per item */
	struct vdi_err *errs;              /* per item */
	struct vdi_workers w;
	struct vdi_gate gate;
};

static void
acts_job(void *ctx, int worker, size_t c)
{
	struct acts *a = ctx;
	const struct vdi_reap_item *first = &a->items[a->chain[a->start[c]]];
	int64_t host = a->hs[first->host].id;
	struct vdi_conns *cs = a->o->conns;
	struct vdi_db *db = a->db;
	struct vdi_err e = { 0 };

	if (a->w.n > 1 && vdi_workers_get(&a->w, worker, &db, &cs, &e) < 0) {
		for (size_t k = a->start[c]; k < a->start[c + 1]; k++) {
			a->rc[a->chain[k]] = -1;
			a->errs[a->chain[k]] = e;
		}
		return;
	}
	vdi_gate_enter(&a->gate, host);
	for (size_t k = a->start[c]; k < a->start[c + 1]; k++) {
		size_t i = a->chain[k];
		a->rc[i] = act(db, cs, a->hs, &a->items[i], find_session(a->ss, a->nss, a->items[i].session),
			       &a->errs[i]);
	}
	vdi_gate_leave(&a->gate, host);
}

/* Run every item that acts (not WAIT) of items[0..n); rc[i] and errs[i] say how each went. */
static void
acts_run(struct vdi_db *db, const struct vdi_reaper_opts *o, const struct vdi_host *hs, const struct vdi_session *ss,
	 size_t nss, const struct vdi_reap_item *items, size_t n, int *rc, struct vdi_err *errs)
{
	struct acts a = { .db = db, .o = o, .hs = hs, .ss = ss, .nss = nss, .items = items, .rc = rc, .errs = errs,
			  .w = { .db = db, .timeout_ms = o->timeout_ms } };
	bool *taken = vdi_xcalloc(n + 1, sizeof(*taken));
	size_t nchains = 0, m = 0;
	int parallel = o->act_parallel < 1 ? 1 : o->act_parallel;

	a.chain = vdi_xcalloc(n + 1, sizeof(*a.chain));
	a.start = vdi_xcalloc(n + 2, sizeof(*a.start));
	for (size_t i = 0; i < n; i++) {
		if (taken[i] || items[i].action == VDI_REAP_WAIT)
			continue;
		a.start[nchains++] = m;
		for (size_t k = i; k < n; k++)
			if (!taken[k] && items[k].action != VDI_REAP_WAIT &&
			    (k == i || (items[i].session != 0 && items[k].session == items[i].session))) {
				taken[k] = true;
				a.chain[m++] = k;
			}
	}
	a.start[nchains] = m;
	if ((size_t)parallel > nchains)
		parallel = nchains ? (int)nchains : 1;
	vdi_workers_init(&a.w, parallel);
	vdi_gate_init(&a.gate, parallel > 1 && o->act_parallel_host > 0 ? o->act_parallel_host : parallel);
	vdi_batch_run(nchains, parallel, acts_job, &a);
	vdi_gate_destroy(&a.gate);
	vdi_workers_free(&a.w);
	free(a.chain);
	free(a.start);
	free(taken);
}

/* Each pool's volumes (for --orphans), read through the first host of it that answers. */
static void
pool_volumes(const struct vdi_reaper_opts *o, const struct vdi_host *hs, size_t nhs, struct vdi_reap_host *rh,
	     char ***vols)
{
	for (size_t k = 0; k < nhs; k++) {
		struct vdi_err e = { 0 };
		virConnectPtr conn;
		bool seen = false;
		for (size_t j = 0; j < k; j++)
			seen |= vols[j] && strcmp(hs[j].pool, hs[k].pool) == 0;
		if (seen || !rh[k].rep || rh[k].rep->err.code)
			continue;
		conn = vdi_conns_get(o->conns, hs[k].name, hs[k].uri, &e);
		vols[k] = conn ? vdi_pool_volumes(conn, hs[k].pool, &e) : NULL;
		for (size_t j = 0; vols[k] && j < nhs; j++)
			if (strcmp(hs[j].pool, hs[k].pool) == 0)
				rh[j].volumes = vols[k];
	}
}

/* Each planned item to o->report, in plan order, with how it went; *worst: the worst code. */
static void
report_items(struct vdi_db *db, const struct vdi_reaper_opts *o, const struct vdi_host *hs,
	     const struct vdi_reap_host *rh, const struct vdi_reap_item *items, size_t nitems, const int *rcs,
	     const struct vdi_err *errs, int *worst)
{
	for (size_t i = 0; i < nitems; i++) {
		const struct vdi_reap_item *it = &items[i];
		struct vdi_err e = { 0 };
		int rc;

		if (it->action == VDI_REAP_WAIT) {
			*worst = vdi_code_worst(*worst, VDI_ETEMP);
			vdi_err_set(&e, VDI_R_TEMP, "host %s does not answer (%s); left alone", hs[it->host].name,
				    rh[it->host].rep ? rh[it->host].rep->err.msg : "not asked");
			o->report(o->ctx, vdi_reap_action_name(it->action), it->object, it->reason, &e);
			continue;
		}
		if (vdi_db_dry_run(db)) {
			o->report(o->ctx, vdi_reap_action_name(it->action), it->object, it->reason, NULL);
			continue;
		}
		rc = rcs[i];
		e = errs[i];
		if (rc == 1)
			continue; /* moved on since we looked: whoever moved it owns it */
		if (rc < 0)
			*worst = vdi_code_worst(*worst, e.code ? e.code : VDI_EFAIL);
		o->report(o->ctx, vdi_reap_action_name(it->action), it->object, it->reason, rc < 0 ? &e : NULL);
	}
}

void
vdi_reaper_opts_config(struct vdi_reaper_opts *o, const struct vdi_config *cfg)
{
	o->plan.assign_ttl = cfg->assign_ttl / 1000;
	o->plan.start_ttl = cfg->start_ttl / 1000;
	o->plan.stop_ttl = cfg->stop_ttl / 1000;
	o->plan.host_lost_after = cfg->host_lost_after / 1000;
	o->plan.prepare_timeout = cfg->prepare_timeout / 1000;
	o->plan.disconnect_timeout = cfg->disconnect_timeout / 1000;
	o->plan.connect_timeout = cfg->connect_timeout / 1000;
	o->plan.watch_stale = VDI_WATCH_STALE;
	o->events_keep = cfg->events_keep / 1000;
	o->timeout_ms = cfg->poll_timeout;
	o->parallel = (int)cfg->poll_parallel;
	o->act_parallel = (int)cfg->start_parallel;
	o->act_parallel_host = (int)cfg->start_parallel_host;
}

/* The audit trail past events_keep; the counters the metrics print are not events and stay. */
static void
prune_events(struct vdi_db *db, const struct vdi_reaper_opts *o, int64_t before, int *worst)
{
	struct vdi_err err = { 0 };
	char why[64];
	int64_t n = 0;

	snprintf(why, sizeof(why), "older than %lld days", (long long)((o->events_keep + 86399) / 86400));
	if (vdi_event_prune(db, before, &n, &err) < 0) {
		*worst = vdi_code_worst(*worst, err.code);
		o->report(o->ctx, "prune", "events", why, &err);
		return;
	}
	if (n > 0) {
		char what[64];
		snprintf(what, sizeof(what), "%lld events", (long long)n);
		o->report(o->ctx, "prune", what, why, NULL);
	}
}

int
vdi_reaper_run(struct vdi_db *db, const struct vdi_reaper_opts *o, int *worst, struct vdi_err *err)
{
	struct vdi_reap_opts ro = o->plan;
	struct vdi_session *ss = NULL;
	struct vdi_host *hs = NULL;
	struct vdi_node_report *reps = NULL;
	struct vdi_reap_host *rh = NULL;
	struct vdi_reap_item *items = NULL;
	int64_t *hostids = NULL, *warm_keep = NULL;
	char ***vols = NULL;
	struct vdi_err *errs = NULL;
	int *rcs = NULL;
	size_t nss = 0, nhs = 0, nitems = 0;
	int ret = -1;

	*worst = 0;
	if (vdi_session_list_live(db, &ss, &nss, err) < 0 || vdi_host_list(db, NULL, 0, &hs, &nhs, err) < 0)
		goto out;
	/* Names given must exist. */
	hostids = vdi_xcalloc(o->nhosts + 1, sizeof(*hostids));
	for (size_t i = 0; i < o->nhosts; i++) {
		size_t k;
		for (k = 0; k < nhs && strcmp(hs[k].name, o->hosts[i]) != 0; k++)
			;
		if (k == nhs) {
			vdi_err_set(err, VDI_R_NOTFOUND, "no host '%s'", o->hosts[i]);
			goto out;
		}
		hostids[i] = hs[k].id;
	}
	for (size_t i = 0; i < ro.nusers; i++) {
		struct vdi_uservm u;
		if (vdi_uservm_get(db, ro.users[i], &u, err) < 0)
			goto out;
		vdi_uservm_clear(&u);
	}
	for (size_t i = 0; i < ro.nids; i++)
		if (!find_session(ss, nss, ro.ids[i])) {
			vdi_err_set(err, VDI_R_NOTFOUND, "no session %lld that is not ended", (long long)ro.ids[i]);
			goto out;
		}
	ro.hosts = hostids;
	ro.nhosts = o->nhosts;
	ro.claim_alive = vdi_claim_alive;
	ro.now = vdi_clock_now();
	reps = vdi_xcalloc(nhs + 1, sizeof(*reps));
	rh = vdi_xcalloc(nhs + 1, sizeof(*rh));
	vols = vdi_xcalloc(nhs + 1, sizeof(*vols));
	/* No VMDB transaction is open while the hosts are asked. */
	probe_hosts(o, ss, nss, hs, nhs, reps, rh);
	if (ro.orphans) {
		int64_t *keep = NULL;
		size_t nkeep = 0;
		pool_volumes(o, hs, nhs, rh, vols);
		/* After the listing: a warm build that begins meanwhile is in this list, or not yet in the pool. */
		if (vdi_uservm_warm_keep(db, &keep, &nkeep, err) < 0)
			goto out;
		warm_keep = keep;
		ro.warm_keep = keep;
		ro.nwarm_keep = nkeep;
	}
	vdi_reap_plan(ss, nss, rh, nhs, &ro, &items, &nitems);
	rcs = vdi_xcalloc(nitems + 1, sizeof(*rcs));
	errs = vdi_xcalloc(nitems + 1, sizeof(*errs));
	if (!vdi_db_dry_run(db))
		acts_run(db, o, hs, ss, nss, items, nitems, rcs, errs);
	report_items(db, o, hs, rh, items, nitems, rcs, errs, worst);
	if (ro.orphans)
		report_kept_homes(db, o, worst);
	reap_unwatched(db, o, worst);
	if (o->expired)
		reap_expired(db, o, hs, nhs, worst);
	if (o->events_keep > 0)
		prune_events(db, o, ro.now - o->events_keep, worst);
	ret = 0;
out:
	for (size_t k = 0; vols && k < nhs; k++) {
		for (size_t i = 0; vols[k] && vols[k][i]; i++)
			free(vols[k][i]);
		free(vols[k]);
	}
	free(vols);
	free(warm_keep);
	free(rcs);
	free(errs);
	for (size_t k = 0; reps && k < nhs; k++)
		vdi_node_report_clear(&reps[k]);
	free(items);
	free(rh);
	free(reps);
	free(hostids);
	vdi_hosts_free(hs, nhs);
	vdi_sessions_free(ss, nss);
	return ret;
}

int
vdi_reaper_host_rm(struct vdi_db *db, struct vdi_conns *cs, const char *name, bool force,
		   struct vdi_err *err)
{
	struct vdi_host h = { 0 };
	struct vdi_session *ss = NULL;
	size_t nss = 0;
	int ret = -1;

	vdi_err_object(err, "%s", name);
	if (vdi_host_get(db, name, &h, err) < 0)
		return -1;
	if (vdi_session_list(db, name, NULL, &ss, &nss, err) < 0)
		goto out;
	if (nss && !force) {
		vdi_err_set(err, VDI_R_CONFLICT, "host '%s' has %zu session%s that %s not ended "
			    "(end them with vm-reap, or use --force)", name, nss, nss == 1 ? "" : "s",
			    nss == 1 ? "is" : "are");
		goto out;
	}
	if (nss && !vdi_conns_get(cs, h.name, h.uri, err)) {
		/* Its guests may run on: their overlays must stay until it answers or is lost. */
		vdi_err_prefix(err, "host '%s' has %zu session%s and cannot be reached; they are kept until it "
			       "answers or vm-reap declares it lost (host_lost_after); then remove it", name, nss,
			       nss == 1 ? "" : "s");
		err->code = VDI_ETEMP;
		goto out;
	}
	if (vdi_db_dry_run(db)) {
		ret = 0;
		goto out;
	}
	for (size_t i = 0; i < nss; i++)
		if (vdi_reaper_end(db, cs, &ss[i], ss[i].state, "admin", NULL, err) < 0)
			goto out;
	/* Without force now: a session assigned there meanwhile keeps the host. */
	ret = vdi_host_rm(db, name, false, err);
out:
	vdi_sessions_free(ss, nss);
	vdi_host_clear(&h);
	return ret;
}

/* The overlays of host's ended sessions that are still in its pool, deleted through another host of it. */
static void
fence_overlays(struct vdi_db *db, const struct vdi_host *h, const struct vdi_fence_opts *o,
	       struct vdi_fence_result *res, struct vdi_err *err)
{
	char **ovl = NULL, **vols = NULL;
	size_t n = 0;
	virConnectPtr conn;

	if (vdi_session_overlays_ended(db, h->id, &ovl, &n, err) < 0 || n == 0)
		goto out;
	if (!(conn = vdi_conns_for_pool(o->conns, db, h->pool, NULL, err)) ||
	    !(vols = vdi_pool_volumes(conn, h->pool, err))) {
		res->left = n;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct vdi_err e = { 0 };
		bool there = false;
		int rc;
		for (size_t k = 0; vols[k] && !there; k++)
			there = strcmp(vols[k], ovl[i]) == 0;
		if (!there)
			continue;
		rc = vdi_vol_delete(conn, h->pool, ovl[i], &e);
		if (rc > 0)
			res->deleted++;
		else if (rc < 0)
			res->left++;
	}
out:
	for (size_t k = 0; vols && vols[k]; k++)
		free(vols[k]);
	free(vols);
	vdi_strv_free(ovl, n);
}

int
vdi_reaper_fence(struct vdi_db *db, const char *name, const struct vdi_fence_opts *o,
		 struct vdi_fence_result *res, struct vdi_err *err)
{
	struct vdi_host h = { 0 };
	struct vdi_err e = { 0 };
	virConnectPtr conn;
	char detail[256];
	int ret = -1;

	memset(res, 0, sizeof(*res));
	vdi_err_object(err, "%s", name);
	if (vdi_host_get(db, name, &h, err) < 0)
		return -1;
	if (o->command && *o->command && !vdi_db_dry_run(db)) {
		char *argv[] = { (char *)o->command, h.name, h.uri, NULL };
		if (vdi_proc_run(argv, o->timeout_ms, err) < 0) {
			vdi_err_prefix(err, "the fence agent failed; nothing was recorded");
			goto out;
		}
		res->agent = true;
	}
	/* Off means off: a host that answers still runs its guests on their disks. */
	vdi_conns_drop(o->conns, h.name);
	if ((conn = vdi_conns_get(o->conns, h.name, h.uri, &e))) {
		vdi_err_set(err, VDI_R_CONFLICT, "host '%s' answers: it is not off, so it is not fenced%s", name,
			    res->agent ? " (the fence agent said it was)" : "");
		goto out;
	}
	if (vdi_db_dry_run(db)) {
		ret = 0;
		goto out;
	}
	snprintf(detail, sizeof(detail), "%s", res->agent ? "turned off by the fence agent" :
		 "the administrator vouches it is off");
	if (vdi_host_fence(db, name, detail, &res->ended, err) < 0)
		goto out;
	fence_overlays(db, &h, o, res, &e);
	ret = 0;
out:
	vdi_host_clear(&h);
	return ret;
}
