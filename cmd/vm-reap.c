/*
 * vm-reap - end sessions and clean up after them (cron: every 2 minutes).
 * The paper's VSCS stop half, and the audit that keeps the VMDB, the
 * domains and the pool in agreement.
 *
 * A thin main: the work is vdi_reaper_run() (lib/flow/reaper.c), which plans
 * with lib/db/reap.c and ends sessions with vdi_reaper_end().  Only one
 * vm-reap acts at a time (a lock file beside the VMDB); a second one skips.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "host.h"
#include "names.h"
#include "parse.h"
#include "reaper.h"
#include "strv.h"

static const char usage[] =
	"usage: vm-reap [--db PATH] [-o table|tsv|json] [-q] [-v] [-n] [--user USER]...\n"
	"               [--session ID]... [--host HOST]... [--max-age DURATION] [--expired]\n"
	"               [--orphans]\n"
	"       vm-reap -h | --help | --version\n"
	"\n"
	"Default: end sessions whose domain is gone (poweroff), and finish or undo\n"
	"sessions stuck assigned, starting or stopping past their TTL.\n"
	"Exit: 0 ok, 1 failure, 2 usage, 3 no such user, session or host, 5 a session\n"
	"is being started, 75 a host did not answer (its sessions were left alone).\n"
	"See vm-reap(1).\n";

static const struct vdi_cli_help help[] = {
	{ "--user USER", "end this user's session now (admin)" },
	{ "--session ID", "end this session now (admin)" },
	{ "--host HOST", "end every session on this host now (admin)" },
	{ "--max-age DURATION", "end sessions older than this" },
	{ "--expired", "delete user VMs past their expiry, with no session" },
	{ "--orphans", "destroy domains and overlays no session owns" },
	{ NULL, NULL },
};

enum {
	OPT_USER = VDI_OPT_FIRST_PRIVATE,
	OPT_SESSION,
	OPT_HOST,
	OPT_MAX_AGE,
	OPT_EXPIRED,
	OPT_ORPHANS,
};

static const struct option opts[] = {
	VDI_CLI_OPTS,
	VDI_CLI_DRYRUN,
	{ "user", required_argument, NULL, OPT_USER },
	{ "session", required_argument, NULL, OPT_SESSION },
	{ "host", required_argument, NULL, OPT_HOST },
	{ "max-age", required_argument, NULL, OPT_MAX_AGE },
	{ "expired", no_argument, NULL, OPT_EXPIRED },
	{ "orphans", no_argument, NULL, OPT_ORPHANS },
	{ NULL, 0, NULL, 0 },
};

static void
report(void *ctx, const char *action, const char *object, const char *reason, const struct vdi_err *e)
{
	struct vdi_cli *c = ctx;

	if (e) {
		struct vdi_err msg = *e;
		snprintf(msg.object, sizeof(msg.object), "%s", object);
		if (e->code == VDI_ETEMP && (strcmp(action, "wait") == 0 || strcmp(action, "settle") == 0)) {
			if (!c->quiet)
				vdi_cli_warn_err(c, &msg);
		} else {
			vdi_cli_fail(c, &msg);
		}
		return;
	}
	if (c->quiet && !c->dry_run)
		return;
	vdi_out_obj_begin(c->out);
	vdi_out_str(c->out, "action", action);
	vdi_out_str(c->out, "object", object);
	vdi_out_str(c->out, "reason", reason);
	vdi_out_obj_end(c->out);
}

int
main(int argc, char **argv)
{
	struct vdi_cli c;
	struct vdi_err err = { 0 };
	struct vdi_reaper_opts ro = { 0 };
	char **users = NULL, **hosts = NULL;
	int64_t *ids = NULL, ms;
	size_t nusers = 0, nids = 0, nhosts = 0;
	int o, rc, code = 0, lockfd = -1;

	vdi_cli_init(&c, "vm-reap", usage);
	vdi_cli_set_help(&c, help, true);
	while ((o = getopt_long(argc, argv, VDI_CLI_SHORT "n", opts, NULL)) != -1) {
		if (vdi_cli_option(&c, o, optarg))
			continue;
		switch (o) {
		case OPT_USER:
		case OPT_HOST:
			if (vdi_name_check(o == OPT_USER ? "user" : "host", optarg, &err) < 0)
				vdi_cli_usage_error(&c, "%s", err.msg);
			if (o == OPT_USER)
				vdi_strv_push(&users, &nusers, optarg);
			else
				vdi_strv_push(&hosts, &nhosts, optarg);
			break;
		case OPT_SESSION:
			ids = vdi_grow(ids, nids, sizeof(*ids));
			if (vdi_int_parse(optarg, 1, INT64_MAX, &ids[nids++], &err) < 0)
				vdi_cli_usage_error(&c, "--session: %s", err.msg);
			break;
		case OPT_MAX_AGE:
			if (vdi_duration_parse(optarg, &ms, &err) < 0 || ms < 1000)
				vdi_cli_usage_error(&c, "--max-age: %s", err.msg[0] ? err.msg : "at least 1s");
			ro.plan.max_age = ms / 1000;
			break;
		case OPT_EXPIRED:
			ro.expired = true;
			break;
		case OPT_ORPHANS:
			ro.plan.orphans = true;
			break;
		default:
			vdi_cli_usage_error(&c, "unknown option");
		}
	}
	if (optind < argc)
		vdi_cli_usage_error(&c, "unexpected argument '%s'", argv[optind]);
	if ((rc = vdi_cli_open(&c)) != 0) {
		code = rc;
		goto out;
	}
	rc = vdi_reaper_lock(c.db, &lockfd, &err);
	if (rc <= 0) {
		if (rc == 0)
			vdi_cli_info(&c, "another vm-reap is running; skipping this run");
		else
			code = vdi_cli_fail(&c, &err);
		goto out;
	}
	vdi_reaper_opts_config(&ro, &c.cfg);
	ro.plan.users = users;
	ro.plan.nusers = nusers;
	ro.plan.ids = ids;
	ro.plan.nids = nids;
	ro.hosts = hosts;
	ro.nhosts = nhosts;
	ro.conns = vdi_conns_new(c.cfg.poll_timeout);
	ro.report = report;
	ro.ctx = &c;
	vdi_out_list_begin(c.out);
	if (vdi_reaper_run(c.db, &ro, &code, &err) < 0)
		code = vdi_cli_fail(&c, &err);
	vdi_out_list_end(c.out);
	vdi_conns_free(ro.conns);
out:
	free(users);
	free(hosts);
	free(ids);
	if (lockfd >= 0)
		close(lockfd);
	return vdi_cli_finish(&c, code);
}
