/* test_reap.c - unit tests of vm-reap's planner (lib/db/reap.c): pure decisions, no I/O. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "reap.h"

#define NOW 1000000

static bool
alive(int64_t pid, const char *owner, int64_t lease)
{
	return pid == 4242;
}

static struct vdi_session
sess(int64_t id, const char *user, int64_t host, const char *state, int64_t age, int64_t pid)
{
	struct vdi_session s = { 0 };
	static char overlays[16][32];

	s.id = id;
	s.user = (char *)user;
	s.host = (char *)"h";
	s.host_id = host;
	s.state = (char *)state;
	s.created = s.changed = NOW - age;
	s.pid = pid;
	snprintf(overlays[id % 16], sizeof(overlays[0]), "s%lld-%s.qcow2", (long long)id, user);
	s.overlay = overlays[id % 16];
	return s;
}

static struct vdi_domain_info
dom(const char *name, int64_t session)
{
	struct vdi_domain_info d = { 0 };

	d.name = (char *)name;
	d.ours = session > 0;
	d.session_id = session;
	d.state = "running";
	return d;
}

static struct vdi_reap_opts
opts(void)
{
	struct vdi_reap_opts o = { 0 };

	o.now = NOW;
	o.assign_ttl = 600;
	o.start_ttl = 300;
	o.stop_ttl = 300;
	o.host_lost_after = 600;
	o.claim_alive = alive;
	return o;
}

/* The items as "action:reason:session" joined with spaces. */
static char *
plan(const struct vdi_session *ss, size_t nss, const struct vdi_reap_host *hs, size_t nhs,
     const struct vdi_reap_opts *o)
{
	static char buf[1024];
	struct vdi_reap_item *items;
	size_t n;

	assert_int_equal(vdi_reap_plan(ss, nss, hs, nhs, o, &items, &n), 0);
	buf[0] = '\0';
	for (size_t i = 0; i < n; i++)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s:%s:%lld", i ? " " : "",
			 items[i].action == VDI_REAP_END_DB ? "enddb" : vdi_reap_action_name(items[i].action),
			 items[i].reason, (long long)items[i].session);
	free(items);
	return buf;
}

static void
test_sessions(void **state)
{
	struct vdi_domain_info d[] = { dom("vdi-s1-a", 1), dom("vdi-s4-d", 4) };
	struct vdi_node_report rep = { .doms = d, .ndoms = 2 };
	struct vdi_reap_host h = { .id = 1, .name = "h1", .pool = "vdi", .rep = &rep };
	struct vdi_session ss[] = {
		sess(1, "a", 1, "running", 10, 0),     /* its domain runs: nothing */
		sess(2, "b", 1, "running", 10, 0),     /* domain gone: poweroff */
		sess(3, "c", 1, "assigned", 700, 0),   /* past assign_ttl: expired */
		sess(4, "d", 1, "starting", 400, 99),  /* starter dead, domain runs: finish */
		sess(5, "e", 1, "starting", 400, 4242),/* starter alive: wait for it */
		sess(6, "f", 1, "starting", 400, 99),  /* starter dead, no domain: failed */
		sess(7, "g", 1, "stopping", 10, 99),   /* within stop_ttl: nothing yet */
	};
	struct vdi_reap_opts o = opts();

	(void)state;
	assert_string_equal(plan(ss, 7, &h, 1, &o),
			    "end:poweroff:2 enddb:expired:3 finish:running:4 end:failed:6");
	/* --user d ends d's session whatever its state: admin. */
	{
		char *const users[] = { (char *)"a" };
		const int64_t ids[] = { 3 };
		o.users = users;
		o.nusers = 1;
		o.ids = ids;
		o.nids = 1;
		assert_string_equal(plan(ss, 3, &h, 1, &o), "end:admin:1 end:poweroff:2 enddb:admin:3");
	}
}

static void
test_host_down(void **state)
{
	struct vdi_node_report rep = { 0 };
	struct vdi_reap_host h = { .id = 1, .name = "h1", .pool = "vdi", .rep = &rep, .down_since = NOW - 60 };
	struct vdi_session ss[] = { sess(1, "a", 1, "running", 10, 0), sess(2, "b", 1, "assigned", 10, 0) };
	struct vdi_reap_opts o = opts();

	(void)state;
	rep.err.code = 75;
	/* Silent: its sessions wait; an assigned one needs no host. */
	assert_string_equal(plan(ss, 2, &h, 1, &o), "wait:host-down:1");
	/* Down past host_lost_after: ended in the VMDB only. */
	h.down_since = NOW - 700;
	assert_string_equal(plan(ss, 2, &h, 1, &o), "enddb:host-lost:1");
}

static void
test_orphans(void **state)
{
	struct vdi_domain_info d1[] = { dom("vdi-s9-z", 9), dom("foreign", 0) };
	struct vdi_node_report r1 = { .doms = d1, .ndoms = 2 }, r2 = { 0 };
	char *vols[] = { (char *)"master-m", (char *)"user-a.qcow2", (char *)"s1-a.qcow2", (char *)"s8-y.qcow2",
			 (char *)"s9-z.qcow2", NULL };
	struct vdi_reap_host hs[] = {
		{ .id = 1, .name = "h1", .pool = "vdi", .rep = &r1, .volumes = vols },
		{ .id = 2, .name = "h2", .pool = "vdi", .rep = &r2, .volumes = vols },
	};
	struct vdi_session ss[] = { sess(1, "a", 2, "running", 10, 0) };
	struct vdi_domain_info d2[] = { dom("vdi-s1-a", 1) };
	struct vdi_reap_opts o = opts();

	(void)state;
	o.orphans = true;
	r2.doms = d2;
	r2.ndoms = 1;
	/* s9's domain runs without a session: destroyed; its disk is kept until it is gone; s8's goes. */
	assert_string_equal(plan(ss, 1, hs, 2, &o), "destroy:orphan:9 delete:orphan:8");
	/* A host of the pool does not answer: no overlay of the pool is judged. */
	r2.err.code = 75;
	assert_string_equal(plan(ss, 1, hs, 2, &o), "wait:host-down:1 destroy:orphan:9 wait:host-down:0");
	/* A host of the pool not asked at all is as good as silent. */
	r2.err.code = 0;
	hs[1].rep = NULL;
	assert_string_equal(plan(ss, 1, hs, 2, &o), "wait:host-down:1 destroy:orphan:9 wait:host-down:0");
}

/*
 * Warm files (wB-USER.qcow2, wB-USER.save): kept while a user VM's image, a
 * live build or a live session restored from it stands on them; the others
 * go; a warm build killed while starting is ended, never finished.
 */
static void
test_warm(void **state)
{
	struct vdi_node_report r1 = { 0 };
	char *vols[] = { (char *)"user-a.qcow2", (char *)"w3-a.qcow2", (char *)"w3-a.save", (char *)"w5-b.qcow2",
			 (char *)"w6-c.qcow2", (char *)"w6-c.save", (char *)"w7-d.save", (char *)"w8-e.qcow2",
			 (char *)"wx-e.save", (char *)"w9-f.qcow2.bak", NULL };
	struct vdi_reap_host hs[] = { { .id = 1, .name = "h1", .pool = "vdi", .rep = &r1, .volumes = vols } };
	struct vdi_session ss[] = { sess(5, "b", 1, "starting", 10, 4242), sess(11, "c", 1, "starting", 10, 4242),
				    sess(12, "g", 1, "starting", 400, 0) };
	struct vdi_domain_info d[] = { dom("vdi-w12-g", 12) };
	const int64_t keep[] = { 3 };
	struct vdi_reap_opts o = opts();

	(void)state;
	ss[0].kind = (char *)"warm";      /* a build that runs: its layer stays */
	ss[1].warm = 6;                    /* restored from build 6 (a user VM's image no more) */
	ss[2].kind = (char *)"warm";      /* a build whose builder died after its domain started */
	r1.doms = d;
	r1.ndoms = 1;
	o.orphans = true;
	o.warm_keep = keep;
	o.nwarm_keep = 1;
	/* 3 is a user VM's image, 5 builds, 6 stands under a session; 7 and 8 are nothing's; odd names are not ours. */
	assert_string_equal(plan(ss, 3, hs, 1, &o), "end:failed:12 delete:orphan:0 delete:orphan:0");
	{
		struct vdi_reap_item *items;
		size_t n;
		assert_int_equal(vdi_reap_plan(ss, 3, hs, 1, &o, &items, &n), 0);
		assert_int_equal(n, 3);
		assert_string_equal(items[1].object, "w7-d.save");
		assert_string_equal(items[2].object, "w8-e.qcow2");
		free(items);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sessions),
		cmocka_unit_test(test_host_down),
		cmocka_unit_test(test_orphans),
		cmocka_unit_test(test_warm),
	};
	return cmocka_run_group_tests_name("reap", tests, NULL, NULL);
}
