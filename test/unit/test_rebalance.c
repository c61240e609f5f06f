/* test_rebalance.c - unit tests of vm-rebalance's planner (lib/db/rebalance.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mem.h"
#include "rebalance.h"

#define G (1LL << 30)
/* cmocka 1.1 has no assert_double_equal. */
#define assert_near(a, b) assert_true((a) - (b) < 1e-9 && (b) - (a) < 1e-9)

static char *ssd_tags[] = { "ssd", NULL };

/* A plan of nh hosts (cap GiB each, all eligible, pool "vdi", no tags) and no sessions. */
static void
hosts(struct vdi_rebalance_plan *p, enum vdi_rebalance_metric m, size_t nh, const int64_t *cap_g)
{
	static char *names[] = { "h1", "h2", "h3", "h4" };

	memset(p, 0, sizeof(*p));
	p->metric = m;
	p->nhosts = nh;
	p->hosts = vdi_xcalloc(nh, sizeof(*p->hosts));
	for (size_t i = 0; i < nh; i++) {
		p->hosts[i].id = (int64_t)i + 1;
		p->hosts[i].name = names[i];
		p->hosts[i].pool = "vdi";
		p->hosts[i].eligible = true;
		p->hosts[i].mem_cap = cap_g[i] * G;
		p->hosts[i].vcpu_cap = 64;
		p->hosts[i].max_sessions = -1;
	}
}

/* Add a session of mem_g GiB on host h; its counters follow. */
static struct vdi_rebalance_session *
session(struct vdi_rebalance_plan *p, size_t h, int64_t mem_g)
{
	struct vdi_rebalance_session *s;

	p->sessions = vdi_grow(p->sessions, p->nsessions, sizeof(*p->sessions));
	s = &p->sessions[p->nsessions++];
	memset(s, 0, sizeof(*s));
	s->id = (int64_t)p->nsessions;
	s->user = "u";
	s->host = h;
	s->pool = "vdi";
	s->mem = mem_g * G;
	s->vcpus = 1;
	s->movable = true;
	p->hosts[h].mem_used += s->mem;
	p->hosts[h].vcpus_used++;
	p->hosts[h].sessions++;
	return s;
}

static void
done(struct vdi_rebalance_plan *p)
{
	free(p->hosts);
	free(p->sessions);
	free(p->moves);
}

static const struct vdi_rebalance_opts opts = { .max_moves = 100, .threshold = 1 };

static void
test_levels_sessions(void **state)
{
	struct vdi_rebalance_plan p;
	int64_t caps[] = { 64, 64 };

	(void)state;
	hosts(&p, VDI_METRIC_SESSIONS, 2, caps);
	for (int i = 0; i < 5; i++)
		session(&p, 0, 1);
	vdi_rebalance_compute(&p, &opts);
	assert_near(p.spread_before, 2.5);
	assert_int_equal(p.nmoves, 2);
	for (size_t i = 0; i < p.nmoves; i++) {
		assert_int_equal(p.moves[i].from, 0);
		assert_int_equal(p.moves[i].to, 1);
	}
	assert_near(p.spread_after, 0.5);
	assert_int_equal(p.hosts[0].sessions, 3);
	assert_int_equal(p.hosts[1].sessions, 2);
	done(&p);
}

static void
test_no_ping_pong(void **state)
{
	struct vdi_rebalance_plan p;
	struct vdi_rebalance_opts o = opts;
	int64_t caps[] = { 64, 64 };

	(void)state;
	/* 3 against 2: moving one makes 2 against 3, no better; never planned, at any threshold. */
	hosts(&p, VDI_METRIC_SESSIONS, 2, caps);
	for (int i = 0; i < 3; i++)
		session(&p, 0, 1);
	session(&p, 1, 1);
	session(&p, 1, 1);
	o.threshold = 0;
	vdi_rebalance_compute(&p, &o);
	assert_int_equal(p.nmoves, 0);
	assert_non_null(strstr(p.why, "no move lowers the spread"));
	done(&p);
}

static void
test_threshold_and_max_moves(void **state)
{
	struct vdi_rebalance_plan p;
	struct vdi_rebalance_opts o = opts;
	int64_t caps[] = { 64, 64 };

	(void)state;
	hosts(&p, VDI_METRIC_SESSIONS, 2, caps);
	for (int i = 0; i < 8; i++)
		session(&p, 0, 1);
	o.threshold = 5; /* spread 4: within it */
	vdi_rebalance_compute(&p, &o);
	assert_int_equal(p.nmoves, 0);
	assert_non_null(strstr(p.why, "balanced"));
	free(p.moves);
	p.moves = NULL;
	o.threshold = 0;
	o.max_moves = 1;
	vdi_rebalance_compute(&p, &o);
	assert_int_equal(p.nmoves, 1);
	assert_non_null(strstr(p.why, "--max-moves 1"));
	done(&p);
}

static void
test_filters(void **state)
{
	struct vdi_rebalance_plan p;
	int64_t caps[] = { 64, 64, 64, 4 };

	(void)state;
	hosts(&p, VDI_METRIC_SESSIONS, 4, caps);
	/* h2 is another pool, h3 is draining (not eligible), h4 has no room for 8 GiB. */
	p.hosts[1].pool = "other";
	p.hosts[2].eligible = false;
	for (int i = 0; i < 6; i++)
		session(&p, 0, 8);
	vdi_rebalance_compute(&p, &opts);
	assert_int_equal(p.nmoves, 0);
	done(&p);
	/* A session that needs a tag goes only where the tag is. */
	hosts(&p, VDI_METRIC_SESSIONS, 3, caps);
	p.hosts[2].tags = ssd_tags;
	for (int i = 0; i < 6; i++)
		session(&p, 0, 1)->tags = ssd_tags;
	vdi_rebalance_compute(&p, &opts);
	assert_true(p.nmoves > 0);
	for (size_t i = 0; i < p.nmoves; i++)
		assert_int_equal(p.moves[i].to, 2);
	done(&p);
}

static void
test_unmovable_stay(void **state)
{
	struct vdi_rebalance_plan p;
	int64_t caps[] = { 64, 64 };

	(void)state;
	hosts(&p, VDI_METRIC_SESSIONS, 2, caps);
	for (int i = 0; i < 6; i++)
		session(&p, 0, 1)->movable = i == 5;
	vdi_rebalance_compute(&p, &opts);
	assert_int_equal(p.nmoves, 1);
	assert_int_equal(p.moves[0].session, 6);
	done(&p);
}

static void
test_memory_unequal_hosts(void **state)
{
	struct vdi_rebalance_plan p;
	int64_t caps[] = { 256, 64 };

	(void)state;
	/* The big host at 50%, the small one empty: the small one gets sessions until it is near 50% too. */
	hosts(&p, VDI_METRIC_MEMORY, 2, caps);
	for (int i = 0; i < 32; i++)
		session(&p, 0, 4);
	vdi_rebalance_compute(&p, &opts);
	assert_near(p.spread_before, 25.0);
	/*
	 * Each 4 GiB is 1.5625 points of the big host and 6.25 of the small one:
	 * six moves make 40.6% and 37.5%; a seventh would leave the small host
	 * (43.75%) above where the big one was, so it is not made.
	 */
	assert_int_equal(p.nmoves, 6);
	assert_int_equal(p.hosts[1].mem_used, 24 * G);
	assert_near(p.spread_after, 40.625 - (40.625 + 37.5) / 2);
	done(&p);
}

static void
test_metric_of_policy(void **state)
{
	enum vdi_rebalance_metric m;
	struct vdi_err err = { 0 };

	(void)state;
	assert_int_equal(vdi_rebalance_metric(VDI_POLICY_LEAST_LOAD, &m, &err), 0);
	assert_int_equal(m, VDI_METRIC_MEMORY);
	assert_int_equal(vdi_rebalance_metric(VDI_POLICY_ROUND_ROBIN, &m, &err), 0);
	assert_int_equal(m, VDI_METRIC_SESSIONS);
	assert_int_equal(vdi_rebalance_metric(VDI_POLICY_PACK, &m, &err), -1);
	assert_int_equal(err.code, VDI_EUSAGE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_levels_sessions),
		cmocka_unit_test(test_no_ping_pong),
		cmocka_unit_test(test_threshold_and_max_moves),
		cmocka_unit_test(test_filters),
		cmocka_unit_test(test_unmovable_stay),
		cmocka_unit_test(test_memory_unequal_hosts),
		cmocka_unit_test(test_metric_of_policy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
