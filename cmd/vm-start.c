/*
 * vm-start - run each user's session: a disposable overlay on the user VM,
 * as a transient libvirt domain on the assigned host, and say how to
 * connect.  The paper's VMCU and the start half of VSCS.
 *
 * A thin main: the workflow is vdi_start() (lib/flow/start.c), one call per
 * user or session, start_parallel of them in flight (vdi_start_many), the
 * results printed in input order.  Users are names, always; a session is named only by
 * --session ID, so a user called "7" can never get session 7.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "conns.h"
#include "session.h"
#include "names.h"
#include "parse.h"
#include "start.h"
#include "strv.h"

static const char usage[] =
	"usage: vm-start [--db PATH] [-o table|tsv|json] [-q] [-v] [--vv DIR] [--rdp DIR]\n"
	"                [--show-password] [-p POLICY] [USER...]\n"
	"       vm-start [options as above] --session ID...\n"
	"       vm-start -h | --help | --version\n"
	"\n"
	"Users are read one per line from standard input (first field) when none are\n"
	"given, so `vm-assign u1 u2 | vm-start` works.  Sessions are named only with\n"
	"--session (a bare number is a user's name).\n"
	"Exit: 0 ok, 1 failure (the host failed), 2 usage, 3 no such user VM or session,\n"
	"4 no eligible host, 5 the session is ending or being started, 75 temporary.\n"
	"See vm-start(1).\n";

static const struct vdi_cli_help help[] = {
	{ "--vv DIR", "write DIR/USER.vv for remote-viewer (mode 0600)" },
	{ "--rdp DIR", "write DIR/USER.rdp with the guest's address" },
	{ "--show-password", "print the display password (the helpdesk)" },
	{ "-p, --policy POLICY", "the policy for sessions placed here" },
	{ "--session ID", "start these assigned sessions (again for more)" },
	{ NULL, NULL },
};

enum {
	OPT_VV = VDI_OPT_FIRST_PRIVATE,
	OPT_SHOW_PASSWORD,
	OPT_SESSION,
	OPT_RDP,
};

static const struct option opts[] = {
	VDI_CLI_OPTS,
	{ "policy", required_argument, NULL, 'p' },
	{ "vv", required_argument, NULL, OPT_VV },
	{ "show-password", no_argument, NULL, OPT_SHOW_PASSWORD },
	{ "session", required_argument, NULL, OPT_SESSION },
	{ "rdp", required_argument, NULL, OPT_RDP },
	{ NULL, 0, NULL, 0 },
};

static void
put(struct vdi_cli *c, const struct vdi_session *s, bool show_password)
{
	char url[300];

	snprintf(url, sizeof(url), "spice://%s:%lld", s->display_address, (long long)s->display_port);
	vdi_out_obj_begin(c->out);
	vdi_out_str(c->out, "user", s->user);
	vdi_out_str(c->out, "host", s->host);
	vdi_out_int(c->out, "session", s->id);
	vdi_out_str(c->out, "url", url);
	if (show_password)
		vdi_out_str(c->out, "password", s->display_password);
	vdi_out_obj_end(c->out);
}

static void
host_failed(void *ctx, const struct vdi_err *e)
{
	vdi_cli_warn_err(ctx, e);
}

struct batch {
	struct vdi_cli *c;
	const char *vv;
	char **started;    /* for --rdp: the users whose session runs */
	size_t nstarted;
	bool show_password;
	int code;
	size_t ended, total; /* for the progress line */
};

/* Each result in input order (vdi_start_many holds its lock). */
static void
done(void *ctx, size_t i, const struct vdi_session *s, const struct vdi_err *e)
{
	struct batch *b = ctx;
	struct vdi_err err = { 0 };

	(void)i;
	b->ended++;
	if (e) {
		b->code = vdi_code_worst(b->code, vdi_cli_fail(b->c, e));
		vdi_cli_progress(b->c, "starting", (int64_t)b->ended, (int64_t)b->total, false);
		return;
	}
	vdi_cli_progress_line(b->c, "%s: running on %s (session %lld)", s->user, s->host, (long long)s->id);
	vdi_cli_progress(b->c, "starting", (int64_t)b->ended, (int64_t)b->total, false);
	put(b->c, s, b->show_password);
	vdi_strv_push_copy(&b->started, &b->nstarted, s->user);
	if (b->vv && vdi_start_write_vv(s, b->vv, &err) < 0)
		b->code = vdi_code_worst(b->code, vdi_cli_fail(b->c, &err));
}

int
main(int argc, char **argv)
{
	struct vdi_cli c;
	struct vdi_err err = { 0 };
	struct vdi_start_opts so = { 0 };
	struct vdi_start_batch sb = { 0 };
	struct batch b = { 0 };
	const char *vv = NULL, *rdp = NULL, *policy = NULL;
	bool show_password = false;
	char **users = NULL;
	int64_t *ids = NULL;
	size_t n = 0, nids = 0;
	int o, rc, code = 0;

	vdi_cli_init(&c, "vm-start", usage);
	vdi_cli_set_help(&c, help, true);
	while ((o = getopt_long(argc, argv, VDI_CLI_SHORT "p:", opts, NULL)) != -1) {
		if (vdi_cli_option(&c, o, optarg))
			continue;
		switch (o) {
		case 'p':
			if (vdi_policy_parse(optarg, &so.assign.policy) < 0)
				vdi_cli_usage_error(&c, "-p: unknown policy '%s'", optarg);
			policy = optarg;
			break;
		case OPT_VV: {
			struct stat st;
			if (stat(optarg, &st) < 0 || !S_ISDIR(st.st_mode))
				vdi_cli_usage_error(&c, "--vv: '%s' is not a folder", optarg);
			vv = optarg;
			break;
		}
		case OPT_RDP: {
			struct stat st;
			if (stat(optarg, &st) < 0 || !S_ISDIR(st.st_mode))
				vdi_cli_usage_error(&c, "--rdp: '%s' is not a folder", optarg);
			rdp = optarg;
			break;
		}
		case OPT_SHOW_PASSWORD:
			show_password = true;
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
	if (nids && optind < argc)
		vdi_cli_usage_error(&c, "give users or --session IDs, not both");
	if (!nids) {
		vdi_cli_args(&c, argc, argv, &users, &n);
		if (n == 0)
			vdi_cli_usage_error(&c, "no users given (as arguments or on standard input)");
	}
	if ((rc = vdi_cli_open(&c)) != 0) {
		code = rc;
		goto out;
	}
	vdi_start_opts_config(&so, &c.cfg);
	if (policy)
		vdi_policy_parse(policy, &so.assign.policy); /* checked when parsed */
	so.assign.rng = &c.rng;
	/* A desktop that runs already may have had its password spent (vm-watch): hand out a fresh one. */
	if (vv || show_password)
		so.ticket_ttl = c.cfg.ticket_ttl / 1000;
	so.host_failed = host_failed;
	so.warm_fallback = host_failed;
	so.ctx = &c;
	sb.db = c.db;
	sb.timeout_ms = c.cfg.poll_timeout;
	sb.parallel = (int)c.cfg.start_parallel;
	sb.per_host = (int)c.cfg.start_parallel_host;
	sb.done = done;
	sb.ctx = &b;
	b.c = &c;
	b.vv = vv;
	b.show_password = show_password;
	b.total = nids ? nids : n;
	vdi_out_list_begin(c.out);
	vdi_start_many(nids ? NULL : users, nids ? ids : NULL, nids ? nids : n, &so, &sb);
	vdi_cli_progress(&c, NULL, -1, 0, false);
	vdi_out_list_end(c.out);
	code = b.code;
	/* --rdp: the guests boot in parallel; wait for each one's address in turn. */
	if (rdp && b.nstarted) {
		struct vdi_conns *cs = vdi_conns_new(c.cfg.poll_timeout);
		for (size_t i = 0; i < b.nstarted; i++) {
			char note[160];
			/* The guests boot meanwhile: say whose address is awaited, so the wait is not silent. */
			snprintf(note, sizeof(note), "waiting for %.64s's address (its guest boots)", b.started[i]);
			vdi_cli_progress_note(&c, "rdp files", (int64_t)i, (int64_t)b.nstarted, false, note);
			vdi_err_reset(&err);
			rc = vdi_start_rdp_wait(c.db, cs, b.started[i], rdp, c.cfg.address_timeout, &err);
			if (rc < 0)
				code = vdi_code_worst(code, vdi_cli_fail(&c, &err));
			else if (rc == 1)
				vdi_cli_warn_err(&c, &err);
			else
				vdi_cli_progress_line(&c, "%s: %s/%s.rdp", b.started[i], rdp, b.started[i]);
		}
		vdi_cli_progress(&c, NULL, -1, 0, false);
		vdi_conns_free(cs);
	}
out:
	vdi_strv_free(b.started, b.nstarted);
	vdi_strv_free(users, n);
	free(ids);
	return vdi_cli_finish(&c, code);
}
