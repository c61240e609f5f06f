/*
 * vm-migrate - move running desktops live to another host.
 *
 * A thin main: the workflow is vdi_migrate() (lib/flow/migrate.c), one call per
 * session, migrate_parallel of them in flight (vdi_migrate_many), the
 * results printed in input order.  Users are names, always; a session is
 * named only by --session ID.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "mem.h"
#include "migrate.h"
#include "names.h"
#include "parse.h"
#include "session.h"
#include "strv.h"

static const char usage[] =
	"usage: vm-migrate [--db PATH] [-o table|tsv|json] [-q] [-v] [-n] [--to HOST [--force]]\n"
	"                  [-p POLICY] [USER...]\n"
	"       vm-migrate [options as above] --session ID...\n"
	"       vm-migrate -h | --help | --version\n"
	"\n"
	"Moves each user's running desktop live to another host: the one named by\n"
	"--to, else the one the policy picks with every filter applied (its own host\n"
	"excluded).  Users are read one per line from standard input when none are\n"
	"given.  Says where each went and how long it took.\n"
	"Exit: 0 ok, 1 a migration failed (the desktop stays where it was), 2 usage,\n"
	"3 no such user, session or host, 4 no host can take it, 5 not a running\n"
	"desktop, or another process moves it, 75 temporary.\n"
	"See vm-migrate(1).\n";

static const struct vdi_cli_help help[] = {
	{ "--to HOST", "the destination (else the policy's pick)" },
	{ "--force", "with --to: past a failing filter" },
	{ "-p, --policy POLICY", "the policy that picks the destination" },
	{ "--session ID", "move these sessions (again for more)" },
	{ NULL, NULL },
};

enum {
	OPT_TO = VDI_OPT_FIRST_PRIVATE,
	OPT_FORCE,
	OPT_SESSION,
};

static const struct option opts[] = {
	VDI_CLI_OPTS,
	VDI_CLI_DRYRUN,
	{ "policy", required_argument, NULL, 'p' },
	{ "to", required_argument, NULL, OPT_TO },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "session", required_argument, NULL, OPT_SESSION },
	{ NULL, 0, NULL, 0 },
};

struct batch {
	struct vdi_cli *c;
	int code;
	size_t ended, total; /* for the progress line */
};

static void
done(void *ctx, size_t i, const struct vdi_migrate_result *r, const struct vdi_err *e)
{
	struct batch *b = ctx;

	(void)i;
	b->ended++;
	if (e) {
		b->code = vdi_code_worst(b->code, vdi_cli_fail(b->c, e));
		vdi_cli_progress(b->c, "moving", (int64_t)b->ended, (int64_t)b->total, false);
		return;
	}
	if (!b->c->dry_run)
		vdi_cli_progress_line(b->c, "%s: moved %s -> %s in %lld.%lld s", r->user, r->from, r->to,
				      (long long)(r->ms / 1000), (long long)(r->ms % 1000 / 100));
	vdi_cli_progress(b->c, "moving", (int64_t)b->ended, (int64_t)b->total, false);
	if (b->c->quiet && !b->c->dry_run)
		return;
	vdi_out_obj_begin(b->c->out);
	vdi_out_str(b->c->out, "user", r->user);
	vdi_out_int(b->c->out, "session", r->session);
	vdi_out_str(b->c->out, "from", r->from);
	vdi_out_str(b->c->out, "to", r->to);
	if (b->c->dry_run) {
		vdi_out_str(b->c->out, "why", r->why);
	} else {
		vdi_out_real(b->c->out, "seconds", (double)r->ms / 1000, 3); /* a number in JSON, as every duration */
		vdi_out_int(b->c->out, "port", r->port);
	}
	vdi_out_obj_end(b->c->out);
}

int
main(int argc, char **argv)
{
	struct vdi_cli c;
	struct vdi_err err = { 0 };
	struct vdi_migrate_opts mo = { 0 };
	struct vdi_migrate_batch mb = { 0 };
	struct batch b = { 0 };
	const char *policy = NULL, *to = NULL;
	bool force = false;
	char **users = NULL;
	int64_t *ids = NULL;
	size_t n = 0, nids = 0;
	int o, rc, code = 0;

	vdi_cli_init(&c, "vm-migrate", usage);
	vdi_cli_set_help(&c, help, true);
	while ((o = getopt_long(argc, argv, VDI_CLI_SHORT "np:", opts, NULL)) != -1) {
		if (vdi_cli_option(&c, o, optarg))
			continue;
		switch (o) {
		case 'p':
			if (vdi_policy_parse(optarg, &mo.policy) < 0)
				vdi_cli_usage_error(&c, "-p: unknown policy '%s'", optarg);
			policy = optarg;
			break;
		case OPT_TO:
			if (vdi_name_check("host", optarg, &err) < 0)
				vdi_cli_usage_error(&c, "--to: %s", err.msg);
			to = optarg;
			break;
		case OPT_FORCE:
			force = true;
			break;
		case OPT_SESSION:
			ids = vdi_grow(ids, nids, sizeof(*ids));
			if (vdi_int_parse(optarg, 1, INT64_MAX, &ids[nids++], &err) < 0)
				vdi_cli_usage_error(&c, "--session: %s", err.msg);
			break;
		default:
			vdi_cli_usage_error(&c, "unknown option");
		}
	}
	if (force && !to)
		vdi_cli_usage_error(&c, "--force needs --to HOST");
	if (nids && optind < argc)
		vdi_cli_usage_error(&c, "give users or --session IDs, not both");
	if (!nids) {
		vdi_cli_args(&c, argc, argv, &users, &n);
		if (n == 0)
			vdi_cli_usage_error(&c, "no users given (as arguments or on standard input)");
		for (size_t i = 0; i < n; i++)
			if (vdi_name_check("user", users[i], &err) < 0)
				vdi_cli_usage_error(&c, "%s", err.msg);
	}
	if ((rc = vdi_cli_open(&c)) != 0) {
		code = rc;
		goto out;
	}
	/* Users name their session that is not ended. */
	for (size_t i = 0; i < n; i++) {
		struct vdi_session s;
		vdi_err_reset(&err);
		if (vdi_session_of_user(c.db, users[i], &s, &err) < 0) {
			vdi_err_object(&err, "%s", users[i]);
			code = vdi_code_worst(code, vdi_cli_fail(&c, &err));
			continue;
		}
		ids = vdi_grow(ids, nids, sizeof(*ids));
		ids[nids++] = s.id;
		vdi_session_clear(&s);
	}
	vdi_migrate_opts_config(&mo, &c.cfg);
	if (policy)
		vdi_policy_parse(policy, &mo.policy); /* checked when parsed */
	mo.rng = &c.rng;
	mo.to = to;
	mo.force = force;
	mb.db = c.db;
	mb.timeout_ms = c.cfg.poll_timeout;
	mb.parallel = (int)c.cfg.migrate_parallel;
	mb.done = done;
	mb.ctx = &b;
	b.c = &c;
	b.code = code;
	b.total = nids;
	vdi_out_list_begin(c.out);
	vdi_migrate_many(ids, NULL, nids, &mo, &mb);
	vdi_cli_progress(&c, NULL, -1, 0, false);
	vdi_out_list_end(c.out);
	code = b.code;
out:
	vdi_strv_free(users, n);
	free(ids);
	return vdi_cli_finish(&c, code);
}
