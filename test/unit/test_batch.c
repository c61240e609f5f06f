/* test_batch.c - unit tests of the batch pool and the per-key gate (lib/base/batch.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "batch.h"

#define JOBS 40
#define KEYS 3

struct state {
	pthread_mutex_t mu;
	struct vdi_gate gate;
	int ran[JOBS], worker_of[JOBS];
	int now, max, now_key[KEYS + 1], max_key[KEYS + 1];
};

static void
job(void *ctx, int worker, size_t i)
{
	struct state *s = ctx;
	int64_t key = (int64_t)(i % KEYS) + 1;

	vdi_gate_enter(&s->gate, key);
	pthread_mutex_lock(&s->mu);
	s->ran[i]++;
	s->worker_of[i] = worker;
	if (++s->now > s->max)
		s->max = s->now;
	if (++s->now_key[key] > s->max_key[key])
		s->max_key[key] = s->now_key[key];
	pthread_mutex_unlock(&s->mu);
	usleep(2000);
	pthread_mutex_lock(&s->mu);
	s->now--;
	s->now_key[key]--;
	pthread_mutex_unlock(&s->mu);
	vdi_gate_leave(&s->gate, key);
}

static void
test_pool_and_gate(void **state)
{
	static struct state s;

	(void)state;
	memset(&s, 0, sizeof(s));
	pthread_mutex_init(&s.mu, NULL);
	vdi_gate_init(&s.gate, 2);
	vdi_batch_run(JOBS, 8, job, &s);
	for (int i = 0; i < JOBS; i++) {
		assert_int_equal(s.ran[i], 1);
		assert_in_range(s.worker_of[i], 0, 7);
	}
	/* Never more than 2 on one key, never more than 8 at all. */
	for (int k = 1; k <= KEYS; k++)
		assert_in_range(s.max_key[k], 1, 2);
	assert_in_range(s.max, 1, 8);
	vdi_gate_destroy(&s.gate);
	pthread_mutex_destroy(&s.mu);
}

static void
test_serial(void **state)
{
	static struct state s;

	(void)state;
	memset(&s, 0, sizeof(s));
	pthread_mutex_init(&s.mu, NULL);
	vdi_gate_init(&s.gate, 1);
	vdi_batch_run(5, 1, job, &s);
	for (int i = 0; i < 5; i++)
		assert_int_equal(s.ran[i], 1);
	assert_int_equal(s.max, 1);
	vdi_batch_run(0, 4, job, &s);
	vdi_gate_destroy(&s.gate);
	pthread_mutex_destroy(&s.mu);
}

/* vdi_order: what was said, in the order it was said. */
struct said {
	size_t i[8], job[8], n;
};

static void
say(void *ctx, size_t i, size_t job)
{
	struct said *s = ctx;

	s->i[s->n] = i;
	s->job[s->n++] = job;
}

static void
test_order(void **state)
{
	static const size_t job_of[5] = { 0, 1, 0, 3, 4 }; /* input 2 shares job 0 */
	struct vdi_order o;
	struct said s = { 0 };

	(void)state;
	/* Jobs finish 3, 1, 0, 4: nothing before 0 is done, then 0..3 at once, then 4. */
	vdi_order_init(&o, 5, job_of, say, &s);
	vdi_order_done(&o, 3);
	vdi_order_done(&o, 1);
	assert_int_equal(s.n, 0);
	vdi_order_done(&o, 0);
	assert_int_equal(s.n, 4);
	vdi_order_done(&o, 4);
	assert_int_equal(s.n, 5);
	for (size_t k = 0; k < 5; k++) {
		assert_int_equal(s.i[k], k);
		assert_int_equal(s.job[k], job_of[k]);
	}
	vdi_order_destroy(&o);
	/* Without job_of, input i is job i. */
	memset(&s, 0, sizeof(s));
	vdi_order_init(&o, 2, NULL, say, &s);
	vdi_order_done(&o, 1);
	vdi_order_done(&o, 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.i[0], 0);
	assert_int_equal(s.job[1], 1);
	vdi_order_destroy(&o);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool_and_gate),
		cmocka_unit_test(test_serial),
		cmocka_unit_test(test_order),
	};
	return cmocka_run_group_tests_name("batch", tests, NULL, NULL);
}
