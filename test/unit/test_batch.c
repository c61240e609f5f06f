/* test_batch.c - unit tests of the batch pool and the per-key gate (lib/batch.c). */
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool_and_gate),
		cmocka_unit_test(test_serial),
	};
	return cmocka_run_group_tests_name("batch", tests, NULL, NULL);
}
