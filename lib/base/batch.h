/*
 * batch.h - running a batch of independent jobs on a few threads.
 *
 * vdi_batch_run() calls fn(ctx, worker, i) once for every i in [0, n), on
 * at most `parallel` threads; worker (0 .. parallel-1) names the thread,
 * so the caller can give each its own resources (a VMDB handle, a libvirt
 * connection cache: neither is shared between threads).  Jobs are handed
 * out in order; they finish in any order.  Returns when all are done.
 *
 * vdi_gate bounds how many jobs work on one key at once (a host): enter
 * waits while `limit` jobs hold the key.
 *
 * vdi_order says a batch's results in input order, each as soon as its
 * turn comes: a job calls vdi_order_done(o, job) when it is finished, and
 * say(ctx, i, job) is called, under o's lock, for every input i whose job
 * is done and whose turn it is.  job_of maps input i to its job (borrowed;
 * NULL: input i is job i), for batches where inputs share a job.
 */
#ifndef VDI_BATCH_H
#define VDI_BATCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void vdi_batch_run(size_t n, int parallel, void (*fn)(void *ctx, int worker, size_t i), void *ctx);

struct vdi_gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int limit;
	int64_t *keys;   /* one slot per holder: the key it holds, or 0 */
	size_t nkeys;
};

void vdi_gate_init(struct vdi_gate *g, int limit);
void vdi_gate_enter(struct vdi_gate *g, int64_t key);
void vdi_gate_leave(struct vdi_gate *g, int64_t key);
void vdi_gate_destroy(struct vdi_gate *g);

struct vdi_order {
	pthread_mutex_t mu;
	bool *done;              /* per job */
	const size_t *job_of;    /* borrowed; NULL: identity */
	size_t n, next;
	void (*say)(void *ctx, size_t i, size_t job);
	void *ctx;
};

void vdi_order_init(struct vdi_order *o, size_t n, const size_t *job_of,
		    void (*say)(void *ctx, size_t i, size_t job), void *ctx);
void vdi_order_done(struct vdi_order *o, size_t job);
void vdi_order_destroy(struct vdi_order *o);

#endif
