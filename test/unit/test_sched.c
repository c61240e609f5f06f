/* test_sched.c - unit tests of host filters and policies (lib/db/sched.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sched.h"

#define G (1LL << 30)
#define M (1LL << 20)

static struct vdi_sched_host hs[4];
static struct vdi_sched_req req = { 256 * M, 1, 1000, 600 };

static void
host(int i, const char *name, int64_t cap, int64_t used, int64_t sessions)
{
	memset(&hs[i], 0, sizeof(hs[i]));
	hs[i].id = i + 1;
	hs[i].name = name;
	hs[i].admin = "active";
	hs[i].health = "up";
	hs[i].last_ok = 990;
	hs[i].pool_ok = hs[i].tags_ok = true;
	hs[i].mem_total = cap;
	hs[i].ram_ratio = 1;
	hs[i].mem_used = used;
	hs[i].vcpus = 4;
	hs[i].cpu_ratio = 2;
	hs[i].vcpus_used = sessions;
	hs[i].sessions = sessions;
	hs[i].max_sessions = -1;
}

static int
pick(enum vdi_policy p)
{
	uint64_t rng = 7;
	struct vdi_sched_ctx ctx = { .policy = p, .fallback = VDI_POLICY_LEAST_SESSIONS, .rng = &rng,
				     .rank_all = true };

	vdi_sched_filter(hs, 3, &req);
	return vdi_sched_pick(hs, 3, &req, &ctx);
}

static void
test_filters(void **state)
{
	(void)state;
	host(0, "a", 4 * G, 0, 0);
	hs[0].admin = "draining";
	host(1, "b", 4 * G, 0, 0);
	hs[1].last_ok = 100; /* 900 s ago, limit 600 */
	host(2, "c", 4 * G, 4 * G - 100 * M, 1);
	vdi_sched_filter(hs, 3, &req);
	assert_string_equal(hs[0].reject, "draining");
	assert_string_equal(hs[1].reject, "stale");
	assert_string_equal(hs[2].reject, "memory");
	vdi_sched_detail(&hs[2], &req);
	assert_non_null(strstr(hs[2].detail, "needs 256M, 100M free of 4G"));
	host(2, "c", 4 * G, 0, 8); /* 8 of 8 vCPUs */
	vdi_sched_filter(hs, 3, &req);
	assert_string_equal(hs[2].reject, "vcpus");
	hs[2].max_sessions = 8;
	vdi_sched_filter(hs, 3, &req);
	assert_string_equal(hs[2].reject, "sessions");
	hs[2].health = "down";
	hs[2].admin = "maintenance";
	vdi_sched_filter(hs, 3, &req);
	assert_string_equal(hs[2].reject, "maintenance");
}

static void
test_why_none(void **state)
{
	char buf[256];

	(void)state;
	host(0, "a", 4 * G, 0, 0);
	hs[0].admin = "draining";
	host(1, "b", 4 * G, 0, 0);
	hs[1].admin = "draining";
	host(2, "c", 1 * G, 1 * G, 0);
	vdi_sched_filter(hs, 3, &req);
	vdi_sched_why_none(hs, 3, buf, sizeof(buf));
	assert_string_equal(buf, "no host: 2 draining, 1 full (memory)");
	vdi_sched_why_none(hs, 0, buf, sizeof(buf));
	assert_non_null(strstr(buf, "none is known"));
}

static void
test_policies(void **state)
{
	(void)state;
	/* a: 1G cap, 2 sessions; b: 4G, 3 sessions; c: 2G, 2 sessions, 1G used; 8 vCPUs each */
	host(0, "a", 1 * G, 0, 2);
	host(1, "b", 4 * G, 0, 3);
	host(2, "c", 2 * G, 1 * G, 2);
	assert_string_equal(hs[pick(VDI_POLICY_LEAST_SESSIONS)].name, "a"); /* a, c tie at 2: by name */
	/* dominant share after: a max(.25, 3/8) = .375, b max(.0625, 4/8) = .5, c max(.625, 3/8) = .625 */
	assert_string_equal(hs[pick(VDI_POLICY_LEAST_LOAD)].name, "a");
	hs[1].vcpus_used = hs[1].sessions = 0;  /* b: max(.0625, 1/8) = .125 */
	assert_string_equal(hs[pick(VDI_POLICY_LEAST_LOAD)].name, "b");
	hs[1].vcpus_used = hs[1].sessions = 3;
	assert_string_equal(hs[pick(VDI_POLICY_PACK)].name, "c");       /* 1.25G/2G beats .25G/1G */
	assert_int_equal(hs[0].rank, 2); /* c, then a (.25), then b (.06) */
}

static void
test_round_robin_and_sticky(void **state)
{
	uint64_t rng = 1;
	struct vdi_sched_ctx ctx = { .policy = VDI_POLICY_ROUND_ROBIN, .rng = &rng };

	(void)state;
	host(0, "a", 4 * G, 0, 0);
	host(1, "b", 4 * G, 0, 0);
	host(2, "c", 4 * G, 0, 0);
	vdi_sched_filter(hs, 3, &req);
	ctx.rr_last = "b";
	hs[2].rr_after = true;
	assert_string_equal(hs[vdi_sched_pick(hs, 3, &req, &ctx)].name, "c");
	ctx.rr_last = "c";
	hs[2].rr_after = false;
	assert_string_equal(hs[vdi_sched_pick(hs, 3, &req, &ctx)].name, "a");
	ctx.policy = VDI_POLICY_STICKY;
	ctx.fallback = VDI_POLICY_LEAST_SESSIONS;
	ctx.sticky_host = 2;
	hs[0].sessions = 1;
	assert_string_equal(hs[vdi_sched_pick(hs, 3, &req, &ctx)].name, "b");
	hs[1].admin = "draining";
	vdi_sched_filter(hs, 3, &req);
	assert_string_equal(hs[vdi_sched_pick(hs, 3, &req, &ctx)].name, "c");
	assert_non_null(strstr(ctx.why, "fallback least-sessions"));
}

static void
test_random2_reproducible(void **state)
{
	uint64_t r1 = 99, r2 = 99;
	struct vdi_sched_ctx c1 = { .policy = VDI_POLICY_RANDOM2, .rng = &r1 };
	struct vdi_sched_ctx c2 = { .policy = VDI_POLICY_RANDOM2, .rng = &r2 };
	int w1, w2;

	(void)state;
	host(0, "a", 4 * G, 0, 0);
	host(1, "b", 4 * G, 1 * G, 0);
	host(2, "c", 4 * G, 2 * G, 0);
	vdi_sched_filter(hs, 3, &req);
	w1 = vdi_sched_pick(hs, 3, &req, &c1);
	w2 = vdi_sched_pick(hs, 3, &req, &c2);
	assert_int_equal(w1, w2);
	assert_int_not_equal(w1, 2); /* c is the worst: it can only win if drawn alone, never */
}

static void
test_policy_names(void **state)
{
	enum vdi_policy p;

	(void)state;
	assert_int_equal(vdi_policy_parse("pack", &p), 0);
	assert_string_equal(vdi_policy_name(p), "pack");
	assert_int_equal(vdi_policy_parse("fastest", &p), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_filters),
		cmocka_unit_test(test_why_none),
		cmocka_unit_test(test_policies),
		cmocka_unit_test(test_round_robin_and_sticky),
		cmocka_unit_test(test_random2_reproducible),
		cmocka_unit_test(test_policy_names),
	};
	return cmocka_run_group_tests_name("sched", tests, NULL, NULL);
}
