/* sched.c - host filters and placement policies (see sched.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "parse.h"
#include "sched.h"

static const char *const policy_names[] = {
	"least-sessions", "least-load", "round-robin", "sticky", "pack", "random2", NULL,
};

int
vdi_policy_parse(const char *s, enum vdi_policy *p)
{
	for (int i = 0; policy_names[i]; i++) {
		if (strcmp(s, policy_names[i]) == 0) {
			*p = (enum vdi_policy)i;
			return 0;
		}
	}
	return -1;
}

const char *
vdi_policy_name(enum vdi_policy p)
{
	return policy_names[p];
}

uint64_t
vdi_rand_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

int64_t
vdi_sched_mem_cap(const struct vdi_sched_host *h)
{
	int64_t cap = (int64_t)((double)h->mem_total * h->ram_ratio) - h->reserve_mem;
	return cap > 0 ? cap : 0;
}

int64_t
vdi_sched_vcpu_cap(const struct vdi_sched_host *h)
{
	return (int64_t)((double)h->vcpus * h->cpu_ratio + 1e-9);
}

static void
fmt_size(int64_t v, char *b, size_t len)
{
	vdi_size_format((uint64_t)(v > 0 ? v : 0), b, len);
}

void
vdi_sched_filter(struct vdi_sched_host *hs, size_t n, const struct vdi_sched_req *r)
{
	for (size_t i = 0; i < n; i++) {
		struct vdi_sched_host *h = &hs[i];

		h->rank = 0;
		h->score = 0;
		h->detail[0] = '\0';
		if (strcmp(h->admin, "maintenance") == 0)
			h->reject = "maintenance";
		else if (strcmp(h->health, "down") == 0)
			h->reject = "down";
		else if (strcmp(h->admin, "draining") == 0)
			h->reject = "draining";
		else if (strcmp(h->health, "up") != 0)
			h->reject = "unknown";
		else if (r->max_age > 0 && (h->last_ok <= 0 || r->now - h->last_ok > r->max_age))
			h->reject = "stale";
		else if (!h->pool_ok)
			h->reject = "pool";
		else if (!h->tags_ok)
			h->reject = "tags";
		else if (h->max_sessions >= 0 && h->sessions + 1 > h->max_sessions)
			h->reject = "sessions";
		else if (h->mem_used + r->mem > vdi_sched_mem_cap(h))
			h->reject = "memory";
		else if (h->vcpus_used + r->vcpus > vdi_sched_vcpu_cap(h))
			h->reject = "vcpus";
		else
			h->reject = NULL;
	}
}

void
vdi_sched_detail(struct vdi_sched_host *h, const struct vdi_sched_req *r)
{
	int64_t mcap = vdi_sched_mem_cap(h), vcap = vdi_sched_vcpu_cap(h);
	const char *why = h->reject ? h->reject : "";
	char a[16], b[16], c[16];

	h->detail[0] = '\0';
	if (strcmp(why, "unknown") == 0) {
		snprintf(h->detail, sizeof(h->detail), "never polled");
	} else if (strcmp(why, "stale") == 0) {
		snprintf(h->detail, sizeof(h->detail), "last answer %llds ago, limit %llds",
			 (long long)(r->now - h->last_ok), (long long)r->max_age);
	} else if (strcmp(why, "sessions") == 0) {
		snprintf(h->detail, sizeof(h->detail), "%lld of %lld sessions", (long long)h->sessions,
			 (long long)h->max_sessions);
	} else if (strcmp(why, "memory") == 0) {
		fmt_size(r->mem, a, sizeof(a));
		fmt_size(mcap - h->mem_used, b, sizeof(b));
		fmt_size(mcap, c, sizeof(c));
		snprintf(h->detail, sizeof(h->detail), "needs %s, %s free of %s", a, b, c);
	} else if (strcmp(why, "vcpus") == 0) {
		snprintf(h->detail, sizeof(h->detail), "needs %lld, %lld free of %lld", (long long)r->vcpus,
			 (long long)(vcap - h->vcpus_used), (long long)vcap);
	} else if (!h->reject) {
		fmt_size(mcap - h->mem_used - r->mem, a, sizeof(a));
		snprintf(h->detail, sizeof(h->detail), "fits: %s and %lld vCPUs left after, %lld sessions",
			 a, (long long)(vcap - h->vcpus_used - r->vcpus), (long long)h->sessions);
	}
}

/* Utilisation after placing the request: memory, vCPUs. */
static double
mem_util(const struct vdi_sched_host *h, const struct vdi_sched_req *r)
{
	int64_t cap = vdi_sched_mem_cap(h);
	return cap > 0 ? (double)(h->mem_used + r->mem) / (double)cap : 1;
}

static double
vcpu_util(const struct vdi_sched_host *h, const struct vdi_sched_req *r)
{
	int64_t cap = vdi_sched_vcpu_cap(h);
	return cap > 0 ? (double)(h->vcpus_used + r->vcpus) / (double)cap : 1;
}

/*
 * least-load: the share of the host's dominant resource that would be in
 * use after placing the request (memory or vCPUs, whichever is fuller:
 * a weighted sum lets hosts trade memory for vCPUs and leaves memory
 * unbalanced), plus a tenth of the CPU load measured at the last poll.
 */
static double
load_score(const struct vdi_sched_host *h, const struct vdi_sched_req *r)
{
	double m = mem_util(h, r), v = vcpu_util(h, r);

	return (m > v ? m : v) + 0.1 * (h->load_known ? h->load : 0);
}

static const struct vdi_sched_host *cmp_base;

/* By score, then by position: the array is in name order. */
static int
by_score(const void *pa, const void *pb)
{
	size_t ia = *(const size_t *)pa, ib = *(const size_t *)pb;
	const struct vdi_sched_host *a = &cmp_base[ia], *b = &cmp_base[ib];

	if (a->score < b->score - 1e-12)
		return -1;
	if (a->score > b->score + 1e-12)
		return 1;
	return ia < ib ? -1 : ia > ib;
}

double
vdi_sched_score(const struct vdi_sched_host *h, const struct vdi_sched_req *r, enum vdi_policy p)
{
	switch (p) {
	case VDI_POLICY_LEAST_SESSIONS:
		return (double)h->sessions;
	case VDI_POLICY_LEAST_LOAD:
	case VDI_POLICY_RANDOM2:
		return load_score(h, r);
	case VDI_POLICY_PACK:
		/* Fullest first: the least room left after placing. */
		return -mem_util(h, r);
	default:
		return 0;
	}
}

static void
score_all(struct vdi_sched_host *hs, const size_t *el, size_t ne, const struct vdi_sched_req *r,
	  enum vdi_policy p, const struct vdi_sched_ctx *ctx)
{
	for (size_t k = 0; k < ne; k++) {
		struct vdi_sched_host *h = &hs[el[k]];
		switch (p) {
		case VDI_POLICY_LEAST_SESSIONS:
		case VDI_POLICY_LEAST_LOAD:
		case VDI_POLICY_RANDOM2:
		case VDI_POLICY_PACK:
			h->score = vdi_sched_score(h, r, p);
			break;
		case VDI_POLICY_ROUND_ROBIN:
			/* The next name after the last one picked, wrapping around. */
			h->score = ctx->rr_last && !h->rr_after ? 1 : 0;
			break;
		case VDI_POLICY_STICKY:
			h->score = 0;
			break;
		}
	}
}

int
vdi_sched_pick(struct vdi_sched_host *hs, size_t n, const struct vdi_sched_req *r,
	       struct vdi_sched_ctx *ctx)
{
	size_t *el, ne = 0, k;
	enum vdi_policy p = ctx->policy;
	int win = -1;

	ctx->why[0] = '\0';
	el = vdi_xcalloc(n + 1, sizeof(*el));
	for (size_t i = 0; i < n; i++)
		if (!hs[i].reject)
			el[ne++] = i;
	if (ne == 0)
		goto out;
	cmp_base = hs;
	if (p == VDI_POLICY_STICKY) {
		for (k = 0; k < ne; k++) {
			if (hs[el[k]].id == ctx->sticky_host) {
				win = (int)el[k];
				break;
			}
		}
		if (win >= 0) {
			hs[win].rank = 1;
			snprintf(ctx->why, sizeof(ctx->why), "sticky: %s ran the user's last session and passes every filter",
				 hs[win].name);
			/* Rank the rest by the fallback, for the explanation. */
			score_all(hs, el, ne, r, ctx->fallback, ctx);
			hs[win].score = -1e9;
			qsort(el, ne, sizeof(*el), by_score);
			for (k = 0; k < ne; k++)
				hs[el[k]].rank = (int)k + 1;
			goto out;
		}
		p = ctx->fallback;
	}
	score_all(hs, el, ne, r, p, ctx);
	if (p == VDI_POLICY_RANDOM2) {
		/* Two distinct random eligible hosts; the better one wins. */
		size_t a, b;
		a = (size_t)(vdi_rand_next(ctx->rng) % ne);
		b = ne > 1 ? (a + 1 + (size_t)(vdi_rand_next(ctx->rng) % (ne - 1))) % ne : a;
		for (k = 0; k < ne; k++)
			if (k != a && k != b)
				hs[el[k]].score += 1e6; /* not drawn: ranked after the two */
	}
	if (ctx->rank_all) {
		qsort(el, ne, sizeof(*el), by_score);
		for (k = 0; k < ne; k++)
			hs[el[k]].rank = (int)k + 1;
	} else {
		/* Only the best is wanted: one pass, same order as the sort. */
		for (k = 1; k < ne; k++)
			if (by_score(&el[k], &el[0]) < 0)
				el[0] = el[k];
		hs[el[0]].rank = 1;
	}
	win = (int)el[0];
	switch (p) {
	case VDI_POLICY_LEAST_SESSIONS:
		snprintf(ctx->why, sizeof(ctx->why), "least-sessions: %s has %lld sessions, the fewest of %zu eligible hosts",
			 hs[win].name, (long long)hs[win].sessions, ne);
		break;
	case VDI_POLICY_LEAST_LOAD:
		snprintf(ctx->why, sizeof(ctx->why), "least-load: %s has the lowest load score %.3f of %zu eligible hosts",
			 hs[win].name, hs[win].score, ne);
		break;
	case VDI_POLICY_PACK:
		snprintf(ctx->why, sizeof(ctx->why), "pack: %s is the fullest host that still fits (%.0f%% memory after)",
			 hs[win].name, -hs[win].score * 100);
		break;
	case VDI_POLICY_ROUND_ROBIN:
		snprintf(ctx->why, sizeof(ctx->why), "round-robin: %s comes after %s", hs[win].name,
			 ctx->rr_last ? ctx->rr_last : "(start)");
		break;
	case VDI_POLICY_RANDOM2:
		snprintf(ctx->why, sizeof(ctx->why), "random2: %s has the better load score of the two drawn",
			 hs[win].name);
		break;
	default:
		break;
	}
	if (ctx->policy == VDI_POLICY_STICKY) {
		static const char pre[] = "sticky: the last host is not eligible; fallback ";
		size_t keep = sizeof(ctx->why) - sizeof(pre);
		memmove(ctx->why + sizeof(pre) - 1, ctx->why, keep);
		memcpy(ctx->why, pre, sizeof(pre) - 1);
		ctx->why[sizeof(ctx->why) - 1] = '\0';
	}
out:
	free(el);
	return win;
}

void
vdi_sched_why_short(const struct vdi_sched_host *hs, size_t n, int win, enum vdi_policy p, char *buf, size_t len)
{
	int two = -1;

	for (size_t i = 0; i < n; i++) {
		if ((int)i == win || hs[i].reject)
			continue;
		if (two < 0 || hs[i].score < hs[two].score - 1e-12)
			two = (int)i;
	}
	if (p == VDI_POLICY_STICKY && hs[win].score < -1e8)
		snprintf(buf, len, "sticky: %s, the host of the user's last session", hs[win].name);
	else if (two < 0)
		snprintf(buf, len, "%s: %s (score %.3g), no runner-up", vdi_policy_name(p), hs[win].name,
			 hs[win].score);
	else
		snprintf(buf, len, "%s: %s (score %.3g), runner-up %s (score %.3g)", vdi_policy_name(p),
			 hs[win].name, hs[win].score, hs[two].name, hs[two].score);
}

void
vdi_sched_why_none(const struct vdi_sched_host *hs, size_t n, char *buf, size_t len)
{
	static const char *const order[] = { "down", "maintenance", "draining", "unknown", "stale", "pool",
					     "tags", "sessions", "memory", "vcpus", "failed", "source", NULL };
	size_t o = 0;

	if (n == 0) {
		snprintf(buf, len, "no host: none is known (see vm-hosts add)");
		return;
	}
	o += (size_t)snprintf(buf, len, "no host:");
	for (int k = 0; order[k] && o < len; k++) {
		int c = 0;
		for (size_t i = 0; i < n; i++)
			c += hs[i].reject && strcmp(hs[i].reject, order[k]) == 0;
		if (!c)
			continue;
		if (strcmp(order[k], "memory") == 0 || strcmp(order[k], "vcpus") == 0 ||
		    strcmp(order[k], "sessions") == 0)
			o += (size_t)snprintf(buf + o, len - o, "%s %d full (%s)", o > 8 ? "," : "", c, order[k]);
		else if (strcmp(order[k], "pool") == 0 || strcmp(order[k], "tags") == 0)
			o += (size_t)snprintf(buf + o, len - o, "%s %d without the %s", o > 8 ? "," : "", c,
					      strcmp(order[k], "pool") == 0 ? "pool" : "tags");
		else if (strcmp(order[k], "failed") == 0)
			o += (size_t)snprintf(buf + o, len - o, "%s %d failed to start it", o > 8 ? "," : "", c);
		else if (strcmp(order[k], "source") == 0)
			o += (size_t)snprintf(buf + o, len - o, "%s %d where it runs", o > 8 ? "," : "", c);
		else
			o += (size_t)snprintf(buf + o, len - o, "%s %d %s", o > 8 ? "," : "", c, order[k]);
	}
}
