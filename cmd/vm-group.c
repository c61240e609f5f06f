/*
 * vm-group - entitlements: which masters the members of a system group may
 * request and use, how many sessions and how much memory a group's
 * desktops may hold at once, and what a given user may use and why.
 * Groups are the system's (NSS); the rules live in the VMDB.
 *
 * A thin main: the work is vdi_group_*() (lib/db/group.c) and
 * vdi_nss_groups() (lib/base/nss.c).  Never loads libvirt.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "group.h"
#include "master.h"
#include "names.h"
#include "nss.h"
#include "parse.h"
#include "strv.h"

static const char usage[] =
	"usage: vm-group [--db PATH|URI] [-o table|tsv|json] [-q] [-v] COMMAND [ARGS]\n"
	"       vm-group list\n"
	"       vm-group grant [-n] GROUP MASTER...\n"
	"       vm-group revoke [-n] GROUP MASTER...\n"
	"       vm-group limit [-n] GROUP [--sessions N|none] [--mem SIZE|none]\n"
	"       vm-group check USER [MASTER...]\n"
	"       vm-group -h | --help | --version\n"
	"\n"
	"GROUP: a system group (getent group).  While no grant exists every user may use\n"
	"every master; with one, only through a group of theirs that has it.\n"
	"Exit: 0 ok, 1 failure, 2 usage, 3 no such master, 5 (check) a master the user may\n"
	"not use, 75 temporary.  See vm-group(1).\n";

static const struct vdi_cli_help help[] = {
	{ "list", "every group with its masters, limits and what it holds now" },
	{ "grant GROUP MASTER...", "the group's members may request and use these masters" },
	{ "revoke GROUP MASTER...", "no longer (running desktops are left alone)" },
	{ "limit GROUP", "cap what the group's desktops hold at once" },
	{ "--sessions N|none", "limit: at most N desktops at once" },
	{ "--mem SIZE|none", "limit: at most this much memory at once" },
	{ "check USER [MASTER...]", "what the user may use, through which group, and why" },
	{ NULL, NULL },
};

enum {
	OPT_SESSIONS = VDI_OPT_FIRST_PRIVATE,
	OPT_MEM,
};

static const struct option opts[] = {
	VDI_CLI_OPTS,
	VDI_CLI_DRYRUN,
	{ "sessions", required_argument, NULL, OPT_SESSIONS },
	{ "mem", required_argument, NULL, OPT_MEM },
	{ NULL, 0, NULL, 0 },
};

struct args {
	int64_t sessions, mem; /* -2: not given, -1: none */
};

static const char *const cols[] = { "group", "masters", "sessions", "memory", NULL };

static void
group_arg(struct vdi_cli *c, const char *s)
{
	struct vdi_err err = { 0 };

	if (vdi_group_name_check(s, &err) < 0)
		vdi_cli_usage_error(c, "%s", err.msg);
}

static int
cmd_list(struct vdi_cli *c, int argc, char **argv)
{
	struct vdi_err err = { 0 };
	struct vdi_group_rule *r;
	size_t n;
	int rc;

	(void)argv;
	if (argc - optind != 0)
		vdi_cli_usage_error(c, "list: too many arguments");
	if ((rc = vdi_cli_open(c)) != 0)
		return rc;
	if (vdi_group_list(c->db, &r, &n, &err) < 0)
		return vdi_cli_fail(c, &err);
	vdi_out_table_columns(c->out, cols, NULL);
	vdi_out_list_begin(c->out);
	for (size_t i = 0; i < n; i++) {
		char buf[64], a[16], b[16];

		vdi_out_obj_begin(c->out);
		vdi_out_str(c->out, "group", r[i].grp);
		vdi_out_strv(c->out, "masters", r[i].masters, r[i].nmasters);
		if (vdi_out_fmt(c->out) == VDI_FMT_TABLE) {
			if (r[i].max_sessions >= 0)
				snprintf(buf, sizeof(buf), "%lld/%lld", (long long)r[i].sessions, (long long)r[i].max_sessions);
			else
				snprintf(buf, sizeof(buf), "%lld/-", (long long)r[i].sessions);
			vdi_out_str(c->out, "sessions", buf);
			vdi_size_format((uint64_t)r[i].mem, a, sizeof(a));
			vdi_size_format((uint64_t)(r[i].max_mem > 0 ? r[i].max_mem : 0), b, sizeof(b));
			snprintf(buf, sizeof(buf), "%s/%s", a, r[i].max_mem >= 0 ? b : "-");
			vdi_out_str(c->out, "memory", buf);
		} else {
			vdi_out_int(c->out, "sessions", r[i].sessions);
			if (r[i].max_sessions >= 0)
				vdi_out_int(c->out, "max_sessions", r[i].max_sessions);
			else
				vdi_out_null(c->out, "max_sessions");
			vdi_out_int(c->out, "mem", r[i].mem);
			if (r[i].max_mem >= 0)
				vdi_out_int(c->out, "max_mem", r[i].max_mem);
			else
				vdi_out_null(c->out, "max_mem");
		}
		vdi_out_obj_end(c->out);
	}
	vdi_out_list_end(c->out);
	vdi_group_rules_free(r, n);
	return 0;
}

static int
grant(struct vdi_cli *c, int argc, char **argv, bool on)
{
	struct vdi_err err = { 0 };
	int rc, worst = 0;

	if (argc - optind < 2)
		vdi_cli_usage_error(c, "%s: give a GROUP and one MASTER or more", on ? "grant" : "revoke");
	group_arg(c, argv[optind]);
	for (int i = optind + 1; i < argc; i++)
		if (vdi_name_check("master", argv[i], &err) < 0)
			vdi_cli_usage_error(c, "%s", err.msg);
	if ((rc = vdi_cli_open(c)) != 0)
		return rc;
	for (int i = optind + 1; i < argc; i++) {
		vdi_err_reset(&err);
		if (vdi_group_grant(c->db, argv[optind], argv[i], on, &err) < 0) {
			worst = vdi_code_worst(worst, vdi_cli_fail(c, &err));
			continue;
		}
		vdi_cli_info(c, "%s%s %s %s %s", c->dry_run ? "would have " : "", on ? "granted" : "revoked", argv[i],
			     on ? "to" : "from", argv[optind]);
	}
	return worst;
}

static int
cmd_grant(struct vdi_cli *c, int argc, char **argv)
{
	return grant(c, argc, argv, true);
}

static int
cmd_revoke(struct vdi_cli *c, int argc, char **argv)
{
	return grant(c, argc, argv, false);
}

static int
cmd_limit(struct vdi_cli *c, int argc, char **argv)
{
	const struct args *a = c->args;
	struct vdi_err err = { 0 };
	int rc;

	if (argc - optind != 1)
		vdi_cli_usage_error(c, "limit: give one GROUP");
	group_arg(c, argv[optind]);
	if (a->sessions == -2 && a->mem == -2)
		vdi_cli_usage_error(c, "limit: give --sessions, --mem or both (none lifts one)");
	if ((rc = vdi_cli_open(c)) != 0)
		return rc;
	if (vdi_group_limit(c->db, argv[optind], a->sessions, a->mem, &err) < 0)
		return vdi_cli_fail(c, &err);
	return 0;
}

static void
put_verdict(struct vdi_cli *c, const char *user, char *const *groups, size_t ng, const char *master,
	    const struct vdi_group_verdict *v)
{
	vdi_out_obj_begin(c->out);
	vdi_out_str(c->out, "user", user);
	vdi_out_strv(c->out, "groups", groups, ng);
	vdi_out_str(c->out, "master", master);
	vdi_out_bool(c->out, "allowed", v->allowed);
	vdi_out_str(c->out, "group", v->grp[0] ? v->grp : NULL);
	vdi_out_str(c->out, "why", v->why);
	vdi_out_obj_end(c->out);
}

/* What user may use: each master named, or every active one. */
static int
cmd_check(struct vdi_cli *c, int argc, char **argv)
{
	struct vdi_err err = { 0 };
	struct vdi_master *ms = NULL;
	char **groups = NULL, **names = NULL;
	size_t ng = 0, nms = 0, nn = 0;
	const char *user;
	int rc, worst = 0;

	if (argc - optind < 1)
		vdi_cli_usage_error(c, "check: give a USER");
	user = argv[optind];
	if (vdi_name_check("user", user, &err) < 0)
		vdi_cli_usage_error(c, "%s", err.msg);
	for (int i = optind + 1; i < argc; i++) {
		if (vdi_name_check("master", argv[i], &err) < 0)
			vdi_cli_usage_error(c, "%s", err.msg);
		vdi_strv_push(&names, &nn, argv[i]);
	}
	if ((rc = vdi_cli_open(c)) != 0)
		goto out;
	if (vdi_nss_groups(user, &groups, &ng, &err) < 0) {
		rc = vdi_cli_fail(c, &err);
		goto out;
	}
	if (nn == 0) {
		if (vdi_master_list(c->db, &ms, &nms, &err) < 0) {
			rc = vdi_cli_fail(c, &err);
			goto out;
		}
		for (size_t i = 0; i < nms; i++)
			if (strcmp(ms[i].state, "active") == 0)
				vdi_strv_push(&names, &nn, ms[i].name);
	}
	vdi_out_list_begin(c->out);
	for (size_t i = 0; i < nn; i++) {
		struct vdi_group_verdict v;

		vdi_err_reset(&err);
		if (vdi_group_check_master(c->db, user, groups, ng, names[i], &v, &err) < 0 &&
		    err.reason != VDI_R_NOT_ENTITLED) {
			worst = vdi_code_worst(worst, vdi_cli_fail(c, &err));
			continue;
		}
		put_verdict(c, user, groups, ng, names[i], &v);
		/* A master named that the user may not use is the answer a script checks for. */
		if (!v.allowed && argc - optind > 1)
			worst = vdi_code_worst(worst, VDI_ECONFLICT);
	}
	vdi_out_list_end(c->out);
	rc = worst;
out:
	vdi_strv_free(groups, ng);
	free(names);
	vdi_masters_free(ms, nms);
	return rc;
}

static void
limit_opt(struct vdi_cli *c, int o, const char *arg)
{
	struct args *a = c->args;
	struct vdi_err err = { 0 };

	if (o == OPT_SESSIONS) {
		if (strcmp(arg, "none") == 0)
			a->sessions = -1;
		else if (vdi_int_parse(arg, 0, 1000000, &a->sessions, &err) < 0)
			vdi_cli_usage_error(c, "--sessions: %s", err.msg);
	} else if (o == OPT_MEM) {
		if (strcmp(arg, "none") == 0)
			a->mem = -1;
		else if (vdi_size_parse_range("--mem", arg, 0, (uint64_t)1 << 60, &a->mem, &err) < 0)
			vdi_cli_usage_error(c, "%s", err.msg);
	}
}

static const int no_opts[] = { 0 };
static const int limit_opts[] = { OPT_SESSIONS, OPT_MEM, 0 };

static const struct vdi_cli_cmd cmds[] = {
	{ "list", cmd_list, no_opts, false },
	{ "grant", cmd_grant, no_opts, true },
	{ "revoke", cmd_revoke, no_opts, true },
	{ "limit", cmd_limit, limit_opts, true },
	{ "check", cmd_check, no_opts, false },
	{ NULL, NULL, NULL, false },
};

int
main(int argc, char **argv)
{
	struct vdi_cli c;
	struct args a = { .sessions = -2, .mem = -2 };

	vdi_cli_init(&c, "vm-group", usage);
	vdi_cli_set_help(&c, help, true);
	c.args = &a;
	return vdi_cli_finish(&c, vdi_cli_dispatch(&c, argc, argv, opts, cmds, limit_opt));
}
