/*
 * vm-rebalance - the global approach to balance, for cron: plan a few live
 * moves that lower the spread the policy cares about, then make them.
 *
 * A thin main: the plan is vdi_rebalance_plan() (lib/db/rebalance.c), each
 * move vm-migrate's vdi_migrate(), migrate_parallel in flight.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "cli.h"
#include "conns.h"
#include "mem.h"
#include "migrate.h"
#include "parse.h"
#include "rebalance.h"

static const char usage[] =
	"usage: vm-rebalance [--db PATH] [-o table|tsv|json] [-q] [-v] [-n] [--max-moves N]\n"
	"                    [-p POLICY] [--threshold POINTS] [--explain]\n"
	"       vm-rebalance -h | --help | --version\n"
	"\n"
	"Plans up to --max-moves live moves (3) that lower the spread of the hosts that\n"
	"take sessions (the fullest host's value minus the mean: memory use in percent\n"
	"for least-load and random2, sessions for least-sessions, round-robin and\n"
	"sticky), when it exceeds --threshold (rebalance_threshold, 5 points, or\n"
	"rebalance_threshold_sessions, 1 session), and makes them.\n"
	"-n prints the plan with the spread before and after; --explain prints every\n"
	"host's figure before and after instead, and moves nothing.\n"
	"Exit: 0 ok (balanced, or the moves made), 1 a move failed (it stays), 2 usage\n"
	"(pack has nothing to balance), 75 temporary.\n"
	"See vm-rebalance(1).\n";

static const struct vdi_cli_help help[] = {
	{ "--max-moves N", "at most this many moves (3)" },
	{ "-p, --policy POLICY", "the policy whose spread to lower" },
	{ "--threshold POINTS", "act only above this spread (vdi.conf's by default)" },
	{ "--explain", "every host before and after; moves nothing" },
	{ NULL, NULL },
};

enum {
	OPT_MAX_MOVES = VDI_OPT_FIRST_PRIVATE,
	OPT_THRESHOLD,
	OPT_EXPLAIN,
};

static const struct option opts[] = {
	VDI_CLI_OPTS,
	VDI_CLI_DRYRUN,
	{ "policy", required_argument, NULL, 'p' },
	{ "max-moves", required_argument, NULL, OPT_MAX_MOVES },
	{ "threshold", required_argument, NULL, OPT_THRESHOLD },
	{ "explain", no_argument, NULL, OPT_EXPLAIN },
	{ NULL, 0, NULL, 0 },
};

struct run {
	struct vdi_cli *c;
	const struct vdi_rebalance_plan *p;
	int code;
};

static void
put_move(struct vdi_cli *c, const struct vdi_rebalance_plan *p, size_t i, int64_t ms)
{
	const struct vdi_rebalance_move *m = &p->moves[i];

	vdi_out_obj_begin(c->out);
	vdi_out_int(c->out, "move", (int64_t)i + 1);
	vdi_out_int(c->out, "session", m->session);
	vdi_out_str(c->out, "user", m->user);
	vdi_out_str(c->out, "from", p->hosts[m->from].name);
	vdi_out_str(c->out, "to", p->hosts[m->to].name);
	vdi_out_size(c->out, "mem", m->mem);
	vdi_out_real(c->out, "spread_after", m->spread_after, 1);
	if (ms >= 0)
		vdi_out_real(c->out, "seconds", (double)ms / 1000, 3);
	vdi_out_obj_end(c->out);
}

static void
done(void *ctx, size_t i, const struct vdi_migrate_result *r, const struct vdi_err *e)
{
	struct run *x = ctx;

	if (e) {
		/* Recorded in the VMDB's events by the move itself; not tried again in this run. */
		x->code = vdi_code_worst(x->code, vdi_cli_fail(x->c, e));
		return;
	}
	if (x->c->quiet)
		return;
	put_move(x->c, x->p, i, r->ms);
}

static void
waiting(void *ctx)
{
	vdi_cli_info(ctx, "another vm-rebalance is running; waiting for it to finish");
}

/* --explain: every host's figure before and after the plan, as the output (the plan's summary is the info line). */
static void
explain(struct vdi_cli *c, const struct vdi_rebalance_plan *p)
{
	vdi_out_list_begin(c->out);
	for (size_t i = 0; i < p->nhosts; i++) {
		const struct vdi_rebalance_host *h = &p->hosts[i];
		vdi_out_obj_begin(c->out);
		vdi_out_str(c->out, "host", h->name);
		vdi_out_str(c->out, "counted", h->eligible ? "yes" : "no (not active, up and fresh)");
		vdi_out_str(c->out, "metric", p->metric == VDI_METRIC_MEMORY ? "memory %" : "sessions");
		vdi_out_real(c->out, "before", h->before, 1);
		vdi_out_real(c->out, "after", h->after, 1);
		vdi_out_obj_end(c->out);
	}
	vdi_out_list_end(c->out);
}

int
main(int argc, char **argv)
{
	struct vdi_cli c;
	struct vdi_err err = { 0 };
	struct vdi_rebalance_opts ro = { 0 };
	struct vdi_rebalance_plan p = { 0 };
	struct vdi_migrate_opts mo = { 0 };
	struct vdi_migrate_batch mb = { 0 };
	struct run x = { 0 };
	const char *policy = NULL;
	bool want_explain = false, has_threshold = false;
	int64_t max_moves = 3, *ids = NULL;
	char **to = NULL;
	double threshold = 0;
	int o, rc, code = 0, lockfd = -1;

	vdi_cli_init(&c, "vm-rebalance", usage);
	vdi_cli_set_help(&c, help, true);
	while ((o = getopt_long(argc, argv, VDI_CLI_SHORT "np:", opts, NULL)) != -1) {
		if (vdi_cli_option(&c, o, optarg))
			continue;
		switch (o) {
		case 'p':
			if (vdi_policy_parse(optarg, &ro.policy) < 0)
				vdi_cli_usage_error(&c, "-p: unknown policy '%s'", optarg);
			policy = optarg;
			break;
		case OPT_MAX_MOVES:
			if (vdi_int_parse(optarg, 0, 100000, &max_moves, &err) < 0)
				vdi_cli_usage_error(&c, "--max-moves: %s", err.msg);
			break;
		case OPT_THRESHOLD:
			if (vdi_real_parse(optarg, 0, 1000, &threshold, &err) < 0)
				vdi_cli_usage_error(&c, "--threshold: %s", err.msg);
			has_threshold = true;
			break;
		case OPT_EXPLAIN:
			want_explain = true;
			break;
		default:
			vdi_cli_usage_error(&c, "unknown option");
		}
	}
	if (optind < argc)
		vdi_cli_usage_error(&c, "unexpected argument '%s'", argv[optind]);
	if (want_explain)
		c.dry_run = true; /* explaining moves nothing, as vm-assign --explain */
	if ((rc = vdi_cli_open(&c)) != 0) {
		code = rc;
		goto out;
	}
	/* A second run waits for the first, then plans on what it left (vdi_rebalance_lock). */
	if (!c.dry_run && vdi_rebalance_lock(c.db, waiting, &c, &lockfd, &err) < 0) {
		code = vdi_cli_fail(&c, &err);
		goto out;
	}
	if (!policy && vdi_policy_parse(c.cfg.policy, &ro.policy) < 0)
		ro.policy = VDI_POLICY_LEAST_SESSIONS;
	ro.max_moves = max_moves;
	{
		/* The threshold is in the metric's unit: points of memory use, or sessions. */
		enum vdi_rebalance_metric m = VDI_METRIC_MEMORY;
		vdi_rebalance_metric(ro.policy, &m, VDI_ERR_SCRATCH);
		ro.threshold = has_threshold ? threshold : m == VDI_METRIC_SESSIONS ?
			       (double)c.cfg.rebalance_threshold_sessions : (double)c.cfg.rebalance_threshold;
	}
	ro.rest = c.cfg.rebalance_rest / 1000;
	ro.now = vdi_clock_now();
	ro.max_age = c.cfg.poll_max_age / 1000;
	if (vdi_rebalance_plan(c.db, &ro, &p, &err) < 0) {
		code = vdi_cli_fail(&c, &err);
		goto out;
	}
	vdi_cli_info(&c, "%s: spread %.1f%s -> %.1f%s with %zu move%s; %s",
		     p.metric == VDI_METRIC_MEMORY ? "memory use" : "sessions", p.spread_before,
		     p.metric == VDI_METRIC_MEMORY ? " points" : "", p.spread_after,
		     p.metric == VDI_METRIC_MEMORY ? " points" : "", p.nmoves, p.nmoves == 1 ? "" : "s", p.why);
	if (want_explain) {
		explain(&c, &p);
		goto out;
	}
	vdi_out_list_begin(c.out);
	if (c.dry_run) {
		for (size_t i = 0; i < p.nmoves; i++)
			put_move(&c, &p, i, -1);
	} else if (p.nmoves > 0) {
		ids = vdi_xcalloc(p.nmoves, sizeof(*ids));
		to = vdi_xcalloc(p.nmoves, sizeof(*to));
		for (size_t i = 0; i < p.nmoves; i++) {
			ids[i] = p.moves[i].session;
			to[i] = p.hosts[p.moves[i].to].name;
		}
		vdi_migrate_opts_config(&mo, &c.cfg);
		mo.policy = ro.policy;
		mo.rng = &c.rng;
		mb.db = c.db;
		mb.timeout_ms = c.cfg.poll_timeout;
		mb.parallel = (int)c.cfg.migrate_parallel;
		mb.done = done;
		mb.ctx = &x;
		x.c = &c;
		x.p = &p;
		vdi_migrate_many(ids, to, p.nmoves, &mo, &mb);
		code = x.code;
	}
	vdi_out_list_end(c.out);
out:
	if (lockfd >= 0)
		close(lockfd);
	free(ids);
	free(to);
	vdi_rebalance_plan_clear(&p);
	return vdi_cli_finish(&c, code);
}
