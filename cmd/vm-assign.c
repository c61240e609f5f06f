/*
 * vm-assign - pick the best host for each user's next session and reserve
 * its memory and vCPUs there (the paper's VMQS).  Works from the VMDB
 * alone and never loads libvirt: it runs once per login.
 *
 * Prints USER<TAB>HOST<TAB>SESSION per user, a line as soon as it is
 * decided, so `vm-assign u1 u2 | vm-start` starts the first desktop while
 * the second is still being placed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "assign.h"
#include "cli.h"
#include "names.h"
#include "parse.h"

static const char usage[] =
	"usage: vm-assign [--db PATH] [-o table|tsv|json] [-q] [-v] [-n] [-p POLICY]\n"
	"                 [--host HOST [--force]] [--explain] [--seed N] [USER...]\n"
	"       vm-assign -h | --help | --version\n"
	"\n"
	"Policies: least-sessions (default), least-load, round-robin, sticky, pack, random2.\n"
	"Users are read one per line from standard input when none are given.\n"
	"Exit: 0 ok, 1 failure, 2 usage, 3 no such user VM or host, 4 no eligible host,\n"
	"5 the user VM is being made, or runs on another host (--host), 75 VMDB busy.\n"
	"See vm-assign(1).\n";

static const struct vdi_cli_help help[] = {
	{ "-p, --policy POLICY", "the policy (the policies are below)" },
	{ "--host HOST", "the helpdesk's host; the filters still apply" },
	{ "--force", "with --host: past a failing filter (recorded)" },
	{ "--explain", "every host's verdicts and rank; reserves nothing" },
	{ "--seed N", "the seed of random2's draw" },
	{ NULL, NULL },
};

enum {
	OPT_HOST = VDI_OPT_FIRST_PRIVATE,
	OPT_FORCE,
	OPT_EXPLAIN,
	OPT_SEED,
};

static const struct option opts[] = {
	VDI_CLI_OPTS,
	VDI_CLI_DRYRUN,
	{ "policy", required_argument, NULL, 'p' },
	{ "host", required_argument, NULL, OPT_HOST },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "explain", no_argument, NULL, OPT_EXPLAIN },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ NULL, 0, NULL, 0 },
};

static void
put_sizes(char *buf, size_t len, int64_t used, int64_t need, int64_t cap)
{
	char a[16], b[16], c[16];

	vdi_size_format((uint64_t)used, a, sizeof(a));
	vdi_size_format((uint64_t)need, b, sizeof(b));
	vdi_size_format((uint64_t)(cap > 0 ? cap : 0), c, sizeof(c));
	snprintf(buf, len, "%s+%s/%s", a, b, c);
}

/* One row per host: each filter's verdict with its numbers, the score and the rank. */
static void
explain(struct vdi_out *o, const char *user, const struct vdi_assign_result *r, const char *policy)
{
	for (size_t i = 0; i < r->nhosts; i++) {
		const struct vdi_sched_host *h = &r->hosts[i];
		char buf[96];
		bool won = r->host && strcmp(h->name, r->host) == 0;

		vdi_out_obj_begin(o);
		vdi_out_str(o, "user", user);
		vdi_out_str(o, "host", h->name);
		vdi_out_str(o, "state", strcmp(h->admin, "active") ? h->admin : h->health);
		vdi_out_str(o, "fresh", h->reject && strcmp(h->reject, "stale") == 0 ? "stale" : "ok");
		vdi_out_str(o, "pool", h->pool_ok ? "ok" : "no");
		vdi_out_str(o, "tags", h->tags_ok ? "ok" : "no");
		if (h->max_sessions >= 0)
			snprintf(buf, sizeof(buf), "%lld/%lld", (long long)h->sessions, (long long)h->max_sessions);
		else
			snprintf(buf, sizeof(buf), "%lld/-", (long long)h->sessions);
		vdi_out_str(o, "sessions", buf);
		put_sizes(buf, sizeof(buf), h->mem_used, r->mem, vdi_sched_mem_cap(h));
		vdi_out_str(o, "memory", buf);
		snprintf(buf, sizeof(buf), "%lld+%lld/%lld", (long long)h->vcpus_used, (long long)r->vcpus,
			 (long long)vdi_sched_vcpu_cap(h));
		vdi_out_str(o, "vcpus", buf);
		vdi_out_str(o, "verdict", h->reject ? h->reject : "eligible");
		if (h->rank > 0)
			vdi_out_real(o, "score", h->score, 3);
		else
			vdi_out_null(o, "score");
		if (h->rank > 0)
			vdi_out_int(o, "rank", h->rank);
		else
			vdi_out_null(o, "rank");
		vdi_out_bool(o, "chosen", won);
		vdi_out_str(o, "why", won ? r->why : (h->reject ? h->detail : NULL));
		vdi_out_obj_end(o);
	}
	(void)policy;
}

/* --explain for a user whose session is placed already: where, and the reason recorded then. */
static void
explain_existing(struct vdi_out *o, const char *user, const struct vdi_assign_result *r)
{
	static const char *const blank[] = { "state", "fresh", "pool", "tags", "sessions", "memory", "vcpus" };

	vdi_out_obj_begin(o);
	vdi_out_str(o, "user", user);
	vdi_out_str(o, "host", r->host);
	for (size_t i = 0; i < sizeof(blank) / sizeof(blank[0]); i++)
		vdi_out_null(o, blank[i]);
	vdi_out_str(o, "verdict", "has-session");
	vdi_out_null(o, "score");
	vdi_out_null(o, "rank");
	vdi_out_bool(o, "chosen", true);
	vdi_out_str(o, "why", r->why);
	vdi_out_obj_end(o);
}

int
main(int argc, char **argv)
{
	struct vdi_cli c;
	struct vdi_assign_opts ao = { 0 };
	struct vdi_err err = { 0 };
	const char *policy = NULL;
	bool do_explain = false;
	char **users = NULL;
	size_t n = 0;
	int o, rc, code = 0;

	vdi_cli_init(&c, "vm-assign", usage);
	vdi_cli_set_help(&c, help, true);
	while ((o = getopt_long(argc, argv, VDI_CLI_SHORT "np:", opts, NULL)) != -1) {
		if (vdi_cli_option(&c, o, optarg))
			continue;
		switch (o) {
		case 'p':
			if (vdi_policy_parse(optarg, &ao.policy) < 0)
				vdi_cli_usage_error(&c, "-p: unknown policy '%s' (least-sessions, least-load, "
						    "round-robin, sticky, pack, random2)", optarg);
			policy = optarg;
			break;
		case OPT_HOST:
			if (vdi_name_check("host", optarg, &err) < 0)
				vdi_cli_usage_error(&c, "%s", err.msg);
			ao.host = optarg;
			break;
		case OPT_FORCE:
			ao.force = true;
			break;
		case OPT_EXPLAIN:
			do_explain = true;
			break;
		case OPT_SEED: {
			int64_t s;
			if (vdi_int_parse(optarg, 0, INT64_MAX, &s, &err) < 0)
				vdi_cli_usage_error(&c, "--seed: %s", err.msg);
			c.rng = (uint64_t)s;
			break;
		}
		default:
			vdi_cli_usage_error(&c, "unknown option");
		}
	}
	if (ao.force && !ao.host)
		vdi_cli_usage_error(&c, "--force goes with --host");
	vdi_cli_args(&c, argc, argv, &users, &n);
	if (n == 0)
		vdi_cli_usage_error(&c, "no users given (as arguments or on standard input)");
	if (do_explain)
		c.dry_run = true; /* explaining reserves nothing */
	if ((rc = vdi_cli_open(&c)) != 0)
		goto out;
	if (!policy && vdi_policy_parse(c.cfg.policy, &ao.policy) < 0)
		ao.policy = VDI_POLICY_LEAST_SESSIONS;
	ao.fallback = VDI_POLICY_LEAST_SESSIONS;
	ao.max_age = c.cfg.poll_max_age / 1000;
	ao.rng = &c.rng;
	ao.explain = do_explain;
	vdi_out_list_begin(c.out);
	for (size_t i = 0; i < n; i++) {
		struct vdi_assign_result res;

		vdi_err_reset(&err);
		if (vdi_name_check("user", users[i], &err) < 0) {
			code = vdi_code_worst(code, vdi_cli_fail(&c, &err));
			continue;
		}
		if (vdi_assign(c.db, users[i], &ao, &res, &err) < 0) {
			/* The explanation is most wanted when nothing fits: every host, then the error. */
			if (do_explain && res.nhosts)
				explain(c.out, users[i], &res, policy);
			vdi_assign_result_clear(&res);
			code = vdi_code_worst(code, vdi_cli_fail(&c, &err));
			continue;
		}
		if (do_explain && res.existing) {
			explain_existing(c.out, users[i], &res);
		} else if (do_explain) {
			explain(c.out, users[i], &res, policy);
			if (res.entitled[0])
				vdi_cli_info(&c, "%s: %s", users[i], res.entitled);
		} else {
			vdi_out_obj_begin(c.out);
			vdi_out_str(c.out, "user", users[i]);
			vdi_out_str(c.out, "host", res.host);
			if (res.session_id)
				vdi_out_int(c.out, "session", res.session_id);
			else
				vdi_out_null(c.out, "session");
			vdi_out_obj_end(c.out);
		}
		if (res.existing && c.verbose)
			vdi_cli_info(&c, "%s already has session %lld on %s", users[i], (long long)res.session_id,
				     res.host ? res.host : "-");
		if (res.forced)
			vdi_cli_warn(&c, "%s placed on %s by force, past the filters (recorded)", users[i], res.host);
		vdi_assign_result_clear(&res);
	}
	vdi_out_list_end(c.out);
	rc = code;
out:
	vdi_cli_args_free(users, n);
	return vdi_cli_finish(&c, rc);
}
