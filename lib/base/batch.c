/* batch.c - a bounded pool of threads for a batch, per-key gates, results in input order (see batch.h). */
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "mem.h"

struct run {
	pthread_mutex_t mu;
	size_t next, n;
	void (*fn)(void *ctx, int worker, size_t i);
	void *ctx;
};

struct worker {
	struct run *r;
	int id;
};

static void *
work(void *arg)
{
	struct worker *w = arg;
	struct run *r = w->r;

	for (;;) {
		size_t i;
		pthread_mutex_lock(&r->mu);
		i = r->next < r->n ? r->next++ : r->n;
		pthread_mutex_unlock(&r->mu);
		if (i == r->n)
			break;
		r->fn(r->ctx, w->id, i);
	}
	return NULL;
}

void
vdi_batch_run(size_t n, int parallel, void (*fn)(void *ctx, int worker, size_t i), void *ctx)
{
	struct run r = { .n = n, .fn = fn, .ctx = ctx };
	struct worker *ws;
	pthread_t *ts;
	int k, started = 0;

	if (parallel < 1)
		parallel = 1;
	if ((size_t)parallel > n)
		parallel = n ? (int)n : 1;
	if (parallel == 1) {
		/* No thread for a batch of one at a time: the simplest path stays the common one. */
		for (size_t i = 0; i < n; i++)
			fn(ctx, 0, i);
		return;
	}
	pthread_mutex_init(&r.mu, NULL);
	ws = vdi_xcalloc((size_t)parallel, sizeof(*ws));
	ts = vdi_xcalloc((size_t)parallel, sizeof(*ts));
	for (k = 0; k < parallel; k++) {
		ws[k].r = &r;
		ws[k].id = k;
		if (pthread_create(&ts[k], NULL, work, &ws[k]) != 0)
			break;
		started++;
	}
	if (started == 0) {
		/* No thread could be made: do the work here. */
		struct worker self = { &r, 0 };
		work(&self);
	}
	for (k = 0; k < started; k++)
		pthread_join(ts[k], NULL);
	pthread_mutex_destroy(&r.mu);
	free(ws);
	free(ts);
}

void
vdi_gate_init(struct vdi_gate *g, int limit)
{
	memset(g, 0, sizeof(*g));
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	g->limit = limit < 1 ? 1 : limit;
}

static int
holders(const struct vdi_gate *g, int64_t key)
{
	int n = 0;

	for (size_t i = 0; i < g->nkeys; i++)
		n += g->keys[i] == key;
	return n;
}

void
vdi_gate_enter(struct vdi_gate *g, int64_t key)
{
	size_t i;

	pthread_mutex_lock(&g->mu);
	while (holders(g, key) >= g->limit)
		pthread_cond_wait(&g->cv, &g->mu);
	for (i = 0; i < g->nkeys && g->keys[i]; i++)
		;
	if (i == g->nkeys) {
		g->keys = vdi_grow(g->keys, g->nkeys, sizeof(*g->keys));
		g->nkeys++;
	}
	g->keys[i] = key;
	pthread_mutex_unlock(&g->mu);
}

void
vdi_gate_leave(struct vdi_gate *g, int64_t key)
{
	pthread_mutex_lock(&g->mu);
	for (size_t i = 0; i < g->nkeys; i++)
		if (g->keys[i] == key) {
			g->keys[i] = 0;
			break;
		}
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

void
vdi_gate_destroy(struct vdi_gate *g)
{
	pthread_mutex_destroy(&g->mu);
	pthread_cond_destroy(&g->cv);
	free(g->keys);
}

void
vdi_order_init(struct vdi_order *o, size_t n, const size_t *job_of, void (*say)(void *ctx, size_t i, size_t job),
	       void *ctx)
{
	memset(o, 0, sizeof(*o));
	pthread_mutex_init(&o->mu, NULL);
	o->done = vdi_xcalloc(n + 1, sizeof(*o->done));
	o->job_of = job_of;
	o->n = n;
	o->say = say;
	o->ctx = ctx;
}

void
vdi_order_done(struct vdi_order *o, size_t job)
{
	pthread_mutex_lock(&o->mu);
	o->done[job] = true;
	for (; o->next < o->n; o->next++) {
		size_t j = o->job_of ? o->job_of[o->next] : o->next;
		if (!o->done[j])
			break;
		o->say(o->ctx, o->next, j);
	}
	pthread_mutex_unlock(&o->mu);
}

void
vdi_order_destroy(struct vdi_order *o)
{
	pthread_mutex_destroy(&o->mu);
	free(o->done);
}
