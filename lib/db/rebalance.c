/* rebalance.c - planning moves that lower the spread (see rebalance.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file.h"
#include "mem.h"
#include "rebalance.h"
#include "strv.h"

int
vdi_rebalance_metric(enum vdi_policy p, enum vdi_rebalance_metric *m, struct vdi_err *err)
{
	switch (p) {
	case VDI_POLICY_LEAST_LOAD:
	case VDI_POLICY_RANDOM2:
		*m = VDI_METRIC_MEMORY;
		return 0;
	case VDI_POLICY_LEAST_SESSIONS:
	case VDI_POLICY_ROUND_ROBIN:
	case VDI_POLICY_STICKY:
		*m = VDI_METRIC_SESSIONS;
		return 0;
	case VDI_POLICY_PACK:
		break;
	}
	return vdi_err_set(err, VDI_R_USAGE, "policy pack fills hosts on purpose: there is no spread to lower "
			   "(use least-load or least-sessions)");
}

/* ---- the pure planner ---- */

static double
value(const struct vdi_rebalance_plan *p, const struct vdi_rebalance_host *h)
{
	if (p->metric == VDI_METRIC_SESSIONS)
		return (double)h->sessions;
	return h->mem_cap > 0 ? 100.0 * (double)h->mem_used / (double)h->mem_cap : 100.0;
}

/* What moving s adds to (or takes from) host h's value. */
static double
share(const struct vdi_rebalance_plan *p, const struct vdi_rebalance_host *h, const struct vdi_rebalance_session *s)
{
	if (p->metric == VDI_METRIC_SESSIONS)
		return 1.0;
	return h->mem_cap > 0 ? 100.0 * (double)s->mem / (double)h->mem_cap : 100.0;
}

/* max - mean over the eligible hosts; *mean and *n too. */
static double
spread(const struct vdi_rebalance_plan *p, double *mean, size_t *n)
{
	double sum = 0, max = 0;
	size_t k = 0;

	for (size_t i = 0; i < p->nhosts; i++) {
		double v;
		if (!p->hosts[i].eligible)
			continue;
		v = value(p, &p->hosts[i]);
		sum += v;
		if (k == 0 || v > max)
			max = v;
		k++;
	}
	*n = k;
	*mean = k ? sum / (double)k : 0;
	return k ? max - *mean : 0;
}

static bool
tags_ok(char *const *have, char *const *need)
{
	for (size_t i = 0; need && need[i]; i++) {
		bool found = false;
		for (size_t k = 0; have && have[k] && !found; k++)
			found = strcmp(have[k], need[i]) == 0;
		if (!found)
			return false;
	}
	return true;
}

/* Does host h pass every filter for s (its state was checked: h is eligible)? */
static bool
fits(const struct vdi_rebalance_host *h, const struct vdi_rebalance_session *s)
{
	return strcmp(h->pool, s->pool) == 0 && tags_ok(h->tags, s->tags) && h->mem_used + s->mem <= h->mem_cap &&
	       h->vcpus_used + s->vcpus <= h->vcpu_cap && (h->max_sessions < 0 || h->sessions < h->max_sessions);
}

static int
by_value_desc(const void *a, const void *b, void *ctx)
{
	const struct vdi_rebalance_plan *p = ctx;
	double x = value(p, &p->hosts[*(const size_t *)a]), y = value(p, &p->hosts[*(const size_t *)b]);

	if (x != y)
		return x < y ? 1 : -1;
	return strcmp(p->hosts[*(const size_t *)a].name, p->hosts[*(const size_t *)b].name);
}

#define TARGETS 8   /* per session, the emptiest hosts that fit that are tried */

void
vdi_rebalance_compute(struct vdi_rebalance_plan *p, const struct vdi_rebalance_opts *o)
{
	size_t n = 0, *order = vdi_xcalloc(p->nhosts + 1, sizeof(*order));
	double mean, s;

	for (size_t i = 0; i < p->nhosts; i++)
		p->hosts[i].before = value(p, &p->hosts[i]);
	p->spread_before = spread(p, &mean, &n);
	snprintf(p->why, sizeof(p->why), "no move lowers the spread further within the filters, the hysteresis and rebalance_rest");
	for (;;) {
		double best_gain = o->min_gain > 0 ? o->min_gain : 1e-9;
		size_t bs = 0, bt = 0, ne = 0;
		bool found = false;

		s = spread(p, &mean, &n);
		if (n < 2) {
			snprintf(p->why, sizeof(p->why), "fewer than two hosts can take sessions");
			break;
		}
		if (s <= o->threshold) {
			snprintf(p->why, sizeof(p->why), "balanced: the fullest host is %.1f %s above the mean, within "
				 "the threshold of %.1f (--threshold, or %s in vdi.conf)", s,
				 p->metric == VDI_METRIC_MEMORY ? "points" : "sessions", o->threshold,
				 p->metric == VDI_METRIC_MEMORY ? "rebalance_threshold" : "rebalance_threshold_sessions");
			break;
		}
		if ((int64_t)p->nmoves >= o->max_moves) {
			snprintf(p->why, sizeof(p->why), "stopped at --max-moves %lld", (long long)o->max_moves);
			break;
		}
		for (size_t i = 0; i < p->nhosts; i++)
			if (p->hosts[i].eligible)
				order[ne++] = i;
		qsort_r(order, ne, sizeof(*order), by_value_desc, p);
		/*
		 * From the fullest host that has a move to make: each move lowers the
		 * top (taking the best of the three fullest measured worse in
		 * test/bench/migrate).
		 */
		for (size_t k = 0; k < ne && !found; k++) {
			struct vdi_rebalance_host *a = &p->hosts[order[k]];
			double va = value(p, a);
			for (size_t j = 0; j < p->nsessions; j++) {
				struct vdi_rebalance_session *x = &p->sessions[j];
				size_t tried = 0;
				if (!x->movable || x->host != order[k])
					continue;
				/* The emptiest hosts first: the best target for x is among the first few that fit. */
				for (size_t t = ne; t-- > 0 && tried < TARGETS;) {
					struct vdi_rebalance_host *b = &p->hosts[order[t]];
					double vb = value(p, b), na, nb, gain, mu2;
					if (order[t] == order[k] || !fits(b, x))
						continue;
					tried++;
					na = va - share(p, a, x);
					nb = vb + share(p, b, x);
					/* Hysteresis: the destination ends below where the source was. */
					if (nb >= va)
						continue;
					/* The drop in the sum of squared deviations from the mean (which moves with unequal hosts). */
					mu2 = mean + (share(p, b, x) - share(p, a, x)) / (double)n;
					gain = (va * va + vb * vb - na * na - nb * nb) + (double)n * (mu2 * mu2 - mean * mean);
					if (gain > best_gain) {
						best_gain = gain;
						bs = j;
						bt = order[t];
						found = true;
					}
				}
			}
		}
		if (!found)
			break;
		{
			struct vdi_rebalance_session *x = &p->sessions[bs];
			struct vdi_rebalance_host *a = &p->hosts[x->host], *b = &p->hosts[bt];
			struct vdi_rebalance_move *m;
			a->mem_used -= x->mem;
			a->vcpus_used -= x->vcpus;
			a->sessions--;
			b->mem_used += x->mem;
			b->vcpus_used += x->vcpus;
			b->sessions++;
			p->moves = vdi_grow(p->moves, p->nmoves, sizeof(*p->moves));
			m = &p->moves[p->nmoves++];
			m->session = x->id;
			m->user = x->user;
			m->from = x->host;
			m->to = bt;
			m->mem = x->mem;
			m->spread_after = spread(p, &mean, &n);
			x->host = bt;
			x->movable = false; /* once per run */
		}
	}
	for (size_t i = 0; i < p->nhosts; i++)
		p->hosts[i].after = value(p, &p->hosts[i]);
	p->spread_after = spread(p, &mean, &n);
	free(order);
}

/* ---- reading the VMDB ---- */

static int
load_hosts(struct vdi_db *db, const struct vdi_rebalance_opts *o, struct vdi_rebalance_plan *p, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int rc;

	if (vdi_db_prepare(db, &st, "SELECT id, name, pool, admin = 'active' AND health = 'up' AND coalesce(last_ok, 0) >= ?1, "
			   "mem_total, ram_ratio, reserve_mem, vcpus, cpu_ratio, coalesce(max_sessions, -1), "
			   "mem_used, vcpus_used, sessions FROM hosts ORDER BY id", err) < 0)
		return -1;
	vdi_stmt_bind_int64(st, 1, o->max_age > 0 ? o->now - o->max_age : INT64_MIN);
	while ((rc = vdi_stmt_step(st)) == VDI_DB_ROW) {
		struct vdi_rebalance_host *h;
		struct vdi_sched_host sh = { 0 };
		p->hosts = vdi_grow(p->hosts, p->nhosts, sizeof(*p->hosts));
		h = &p->hosts[p->nhosts++];
		memset(h, 0, sizeof(*h));
		h->id = vdi_stmt_int64(st, 0);
		h->name = vdi_stmt_strdup(st, 1);
		h->pool = vdi_stmt_strdup(st, 2);
		h->eligible = vdi_stmt_int(st, 3) != 0;
		sh.mem_total = vdi_stmt_int64(st, 4);
		sh.ram_ratio = vdi_stmt_double(st, 5);
		sh.reserve_mem = vdi_stmt_int64(st, 6);
		sh.vcpus = vdi_stmt_int64(st, 7);
		sh.cpu_ratio = vdi_stmt_double(st, 8);
		h->mem_cap = vdi_sched_mem_cap(&sh);
		h->vcpu_cap = vdi_sched_vcpu_cap(&sh);
		h->max_sessions = vdi_stmt_int64(st, 9);
		h->mem_used = vdi_stmt_int64(st, 10);
		h->vcpus_used = vdi_stmt_int64(st, 11);
		h->sessions = vdi_stmt_int64(st, 12);
	}
	vdi_stmt_finalize(st);
	return rc == VDI_DB_DONE ? 0 : vdi_db_fail(db, "reading hosts", err);
}

/* The index of host id in p->hosts (ordered by id), or p->nhosts. */
static size_t
host_index(const struct vdi_rebalance_plan *p, int64_t id)
{
	size_t lo = 0, hi = p->nhosts;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (p->hosts[mid].id == id)
			return mid;
		if (p->hosts[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return p->nhosts;
}

static int
load_host_tags(struct vdi_db *db, struct vdi_rebalance_plan *p, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	size_t *count = vdi_xcalloc(p->nhosts + 1, sizeof(*count));
	int rc;

	if (vdi_db_prepare(db, &st, "SELECT host_id, tag FROM host_tags ORDER BY host_id", err) < 0) {
		free(count);
		return -1;
	}
	while ((rc = vdi_stmt_step(st)) == VDI_DB_ROW) {
		size_t i = host_index(p, vdi_stmt_int64(st, 0));
		if (i == p->nhosts)
			continue;
		vdi_strv_push(&p->hosts[i].tags, &count[i], vdi_stmt_strdup(st, 1));
	}
	vdi_stmt_finalize(st);
	for (size_t i = 0; i < p->nhosts; i++)
		if (count[i])
			vdi_strv_push(&p->hosts[i].tags, &count[i], NULL);
	free(count);
	return rc == VDI_DB_DONE ? 0 : vdi_db_fail(db, "reading host tags", err);
}

static bool
excluded(const struct vdi_rebalance_opts *o, int64_t id)
{
	for (size_t i = 0; i < o->nexclude; i++)
		if (o->exclude[i] == id)
			return true;
	return false;
}

static int
load_sessions(struct vdi_db *db, const struct vdi_rebalance_opts *o, struct vdi_rebalance_plan *p,
	      struct vdi_err *err)
{
	struct vdi_stmt *st = NULL, *tq = NULL;
	int rc;

	if (vdi_db_prepare(db, &st, "SELECT s.id, u.username, s.host_id, u.pool, s.mem, s.vcpus, "
			   "s.state = 'running' AND s.kind = 'desktop' AND (s.migrated IS NULL OR s.migrated <= ?1), "
			   "s.uservm_id, (SELECT count(*) FROM uservm_tags t WHERE t.uservm_id = s.uservm_id) "
			   "FROM sessions s JOIN uservms u ON u.id = s.uservm_id "
			   "WHERE s.state <> 'ended' AND s.host_id IS NOT NULL ORDER BY s.id", err) < 0 ||
	    vdi_db_prepare(db, &tq, "SELECT tag FROM uservm_tags WHERE uservm_id = ?", err) < 0) {
		vdi_stmt_finalize(st);
		return -1;
	}
	vdi_stmt_bind_int64(st, 1, o->now - o->rest);
	while ((rc = vdi_stmt_step(st)) == VDI_DB_ROW) {
		struct vdi_rebalance_session *x;
		size_t h = host_index(p, vdi_stmt_int64(st, 2)), nt = 0;
		if (h == p->nhosts)
			continue;
		p->sessions = vdi_grow(p->sessions, p->nsessions, sizeof(*p->sessions));
		x = &p->sessions[p->nsessions++];
		memset(x, 0, sizeof(*x));
		x->id = vdi_stmt_int64(st, 0);
		x->user = vdi_stmt_strdup(st, 1);
		x->host = h;
		x->pool = vdi_stmt_strdup(st, 3);
		x->mem = vdi_stmt_int64(st, 4);
		x->vcpus = vdi_stmt_int64(st, 5);
		/* Only from hosts in the balance: a draining host is drain's to empty. */
		x->movable = vdi_stmt_int(st, 6) && p->hosts[h].eligible && !excluded(o, x->id);
		if (vdi_stmt_int64(st, 8) > 0) {
			vdi_stmt_reset(tq);
			vdi_stmt_bind_int64(tq, 1, vdi_stmt_int64(st, 7));
			while (vdi_stmt_step(tq) == VDI_DB_ROW)
				vdi_strv_push(&x->tags, &nt, vdi_stmt_strdup(tq, 0));
			vdi_strv_push(&x->tags, &nt, NULL);
		}
	}
	vdi_stmt_finalize(st);
	vdi_stmt_finalize(tq);
	return rc == VDI_DB_DONE ? 0 : vdi_db_fail(db, "reading sessions", err);
}

int
vdi_rebalance_plan(struct vdi_db *db, const struct vdi_rebalance_opts *o, struct vdi_rebalance_plan *p,
		   struct vdi_err *err)
{
	int ret = -1;

	memset(p, 0, sizeof(*p));
	if (vdi_rebalance_metric(o->policy, &p->metric, err) < 0)
		return -1;
	/* One snapshot: hosts and sessions from the same moment. */
	if (vdi_db_begin(db, false, err) < 0)
		return -1;
	if (load_hosts(db, o, p, err) < 0 || load_host_tags(db, p, err) < 0 || load_sessions(db, o, p, err) < 0)
		goto out;
	vdi_rebalance_compute(p, o);
	ret = 0;
out:
	vdi_db_rollback(db);
	if (ret < 0)
		vdi_rebalance_plan_clear(p);
	return ret;
}

static void
free_tags(char **t)
{
	for (size_t i = 0; t && t[i]; i++)
		free(t[i]);
	free(t);
}

void
vdi_rebalance_plan_clear(struct vdi_rebalance_plan *p)
{
	for (size_t i = 0; i < p->nhosts; i++) {
		free(p->hosts[i].name);
		free(p->hosts[i].pool);
		free_tags(p->hosts[i].tags);
	}
	for (size_t i = 0; i < p->nsessions; i++) {
		free(p->sessions[i].user);
		free(p->sessions[i].pool);
		free_tags(p->sessions[i].tags);
	}
	free(p->hosts);
	free(p->sessions);
	free(p->moves);
	memset(p, 0, sizeof(*p));
}

int
vdi_rebalance_lock(struct vdi_db *db, void (*waiting)(void *ctx), void *ctx, int *fd, struct vdi_err *err)
{
	int rc = vdi_db_lock(db, "rebalance", false, fd, err);

	if (rc != 0)
		return rc;
	if (waiting)
		waiting(ctx);
	return vdi_db_lock(db, "rebalance", true, fd, err);
}
