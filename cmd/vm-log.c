/*
 * vm-log - the audit trail: what changed, when, by whom and which program,
 * oldest first, filtered by user, host, session, action, program and time;
 * -f follows new events as they are committed, as journalctl -f does.
 * Reads the VMDB only (vdi_event_list, lib/db/event.c); never loads libvirt.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "clock.h"
#include "event.h"
#include "names.h"
#include "parse.h"

static const char usage[] =
	"usage: vm-log [--db PATH|URI] [-o table|tsv|json] [-q] [-v] [-f] [--last N]\n"
	"              [--user USER] [--host HOST] [--session ID] [--action ACTION]\n"
	"              [--program PROGRAM] [--since TIME] [--until TIME]\n"
	"       vm-log -h | --help | --version\n"
	"\n"
	"TIME: YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS]Z (UTC), now, or how long ago (30m, 2h, 7d).\n"
	"ACTION: an action (session-end), or a prefix and * (session-*).\n"
	"Exit: 0 ok, 1 failure, 2 usage, 75 the VMDB is busy or away.  See vm-log(1).\n";

static const struct vdi_cli_help help[] = {
	{ "-f, --follow", "print new events as they come, until interrupted" },
	{ "--last N", "only the last N events that match (-f: 10 unless given)" },
	{ "--user USER", "events about this user (their user VM, sessions, requests)" },
	{ "--host HOST", "events about this host and the sessions on it" },
	{ "--session ID", "events about this session" },
	{ "--action ACTION", "this action, or actions beginning so (session-*)" },
	{ "--program PROGRAM", "events written by this program (vm-watch)" },
	{ "--since TIME", "events at or after TIME" },
	{ "--until TIME", "events at or before TIME" },
	{ NULL, NULL },
};

enum {
	OPT_LAST = VDI_OPT_FIRST_PRIVATE,
	OPT_USER,
	OPT_HOST,
	OPT_SESSION,
	OPT_ACTION,
	OPT_PROGRAM,
	OPT_SINCE,
	OPT_UNTIL,
};

static const struct option opts[] = {
	VDI_CLI_OPTS,
	{ "follow", no_argument, NULL, 'f' },
	{ "last", required_argument, NULL, OPT_LAST },
	{ "user", required_argument, NULL, OPT_USER },
	{ "host", required_argument, NULL, OPT_HOST },
	{ "session", required_argument, NULL, OPT_SESSION },
	{ "action", required_argument, NULL, OPT_ACTION },
	{ "program", required_argument, NULL, OPT_PROGRAM },
	{ "since", required_argument, NULL, OPT_SINCE },
	{ "until", required_argument, NULL, OPT_UNTIL },
	{ NULL, 0, NULL, 0 },
};

/* How often -f asks the VMDB for new events (one indexed query on the newest ids). */
#define FOLLOW_MS 500

static const char *const cols[] = { "id", "time", "object", "action", "session", "host", "detail", "program",
				    "who", NULL };
static const char *const drop[] = { "id", "who", "program", "host", "session", NULL };

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* One event as a record (table, TSV, JSON). */
static int
put_record(const struct vdi_event *e, void *arg)
{
	struct vdi_cli *c = arg;

	vdi_out_obj_begin(c->out);
	vdi_out_int(c->out, "id", e->id);
	vdi_out_time(c->out, "time", e->at);
	vdi_out_str(c->out, "object", e->object);
	vdi_out_str(c->out, "action", e->action);
	if (e->session_id)
		vdi_out_int(c->out, "session", e->session_id);
	else
		vdi_out_null(c->out, "session");
	vdi_out_str(c->out, "host", e->host);
	vdi_out_str(c->out, "detail", e->detail);
	vdi_out_str(c->out, "program", e->program);
	vdi_out_str(c->out, "who", e->who);
	vdi_out_obj_end(c->out);
	return ferror(stdout) ? -1 : 0;
}

/* One event as a line for people, as journalctl -f prints them (a table cannot stream: its widths). */
static int
put_line(const struct vdi_event *e, void *arg)
{
	char when[32];
	time_t t = (time_t)e->at;
	struct tm tm;

	(void)arg;
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	printf("%s ", when);
	vdi_table_escape(stdout, e->object);
	putchar(' ');
	vdi_table_escape(stdout, e->action);
	if (e->detail && *e->detail) {
		putchar(' ');
		vdi_table_escape(stdout, e->detail);
	}
	printf(" (");
	vdi_table_escape(stdout, e->program);
	printf(", ");
	vdi_table_escape(stdout, e->who);
	printf(")\n");
	return ferror(stdout) ? -1 : 0;
}

static int
follow(struct vdi_cli *c, const struct vdi_event_filter *f)
{
	struct vdi_err err = { 0 };
	struct vdi_event_cursor cur = { 0 };
	bool lines = vdi_out_fmt(c->out) == VDI_FMT_TABLE;
	struct sigaction sa = { .sa_handler = on_signal };
	int rc = 0;

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if (!lines)
		vdi_out_list_begin(c->out);
	while (!stop) {
		if (vdi_event_list(c->db, f, &cur, lines ? put_line : put_record, c, &err) != 0) {
			if (err.code == 0)
				break; /* stdout is gone: a pager quit */
			rc = vdi_cli_fail(c, &err);
			break;
		}
		if (fflush(stdout) != 0)
			break;
		struct timespec ts = { .tv_sec = FOLLOW_MS / 1000, .tv_nsec = (FOLLOW_MS % 1000) * 1000000L };
		nanosleep(&ts, NULL);
	}
	if (!lines)
		vdi_out_list_end(c->out);
	vdi_event_cursor_clear(&cur);
	return rc;
}

static int
list(struct vdi_cli *c, const struct vdi_event_filter *f)
{
	struct vdi_err err = { 0 };
	int rc;

	vdi_out_table_columns(c->out, cols, drop);
	vdi_out_list_begin(c->out);
	rc = vdi_event_list(c->db, f, NULL, put_record, c, &err);
	vdi_out_list_end(c->out);
	return rc < 0 && err.code ? vdi_cli_fail(c, &err) : 0;
}

static void
name_opt(struct vdi_cli *c, const char *kind, const char *arg, const char **to)
{
	struct vdi_err err = { 0 };

	if (vdi_name_check(kind, arg, &err) < 0)
		vdi_cli_usage_error(c, "%s", err.msg);
	*to = arg;
}

static void
time_opt(struct vdi_cli *c, const char *opt, const char *arg, int64_t *to)
{
	struct vdi_err err = { 0 };

	if (vdi_time_parse(arg, vdi_clock_now(), to, &err) < 0)
		vdi_cli_usage_error(c, "%s: %s", opt, err.msg);
	if (*to <= 0)
		vdi_cli_usage_error(c, "%s: '%s' is before 1970", opt, arg);
}

/* An action: lower-case letters, digits and '-', or such a prefix and '*'. */
static void
action_opt(struct vdi_cli *c, const char *arg, const char **to)
{
	size_t n = strlen(arg);

	if (n == 0 || n > 64 || strspn(arg, "abcdefghijklmnopqrstuvwxyz0123456789-") < n - (arg[n - 1] == '*'))
		vdi_cli_usage_error(c, "--action: '%.64s' is not an action (session-end) or a prefix and * "
				    "(session-*)", arg);
	*to = arg;
}

int
main(int argc, char **argv)
{
	struct vdi_cli c;
	struct vdi_err err = { 0 };
	struct vdi_event_filter f = { 0 };
	bool follow_on = false;
	int o, rc;

	vdi_cli_init(&c, "vm-log", usage);
	vdi_cli_set_help(&c, help, false);
	while ((o = getopt_long(argc, argv, VDI_CLI_SHORT "f", opts, NULL)) != -1) {
		if (vdi_cli_option(&c, o, optarg))
			continue;
		switch (o) {
		case 'f':
			follow_on = true;
			break;
		case OPT_LAST:
			if (vdi_int_parse(optarg, 1, INT64_MAX, &f.last, &err) < 0)
				vdi_cli_usage_error(&c, "--last: %s", err.msg);
			break;
		case OPT_USER:
			name_opt(&c, "user", optarg, &f.object);
			break;
		case OPT_HOST:
			name_opt(&c, "host", optarg, &f.host);
			break;
		case OPT_SESSION:
			if (vdi_int_parse(optarg, 1, INT64_MAX, &f.session_id, &err) < 0)
				vdi_cli_usage_error(&c, "--session: %s", err.msg);
			break;
		case OPT_ACTION:
			action_opt(&c, optarg, &f.action);
			break;
		case OPT_PROGRAM:
			name_opt(&c, "program", optarg, &f.program);
			break;
		case OPT_SINCE:
			time_opt(&c, "--since", optarg, &f.since);
			break;
		case OPT_UNTIL:
			time_opt(&c, "--until", optarg, &f.until);
			break;
		default:
			vdi_cli_usage_error(&c, "unknown option");
		}
	}
	if (optind < argc)
		vdi_cli_usage_error(&c, "unexpected argument '%.64s' (filters are options: --user %.64s)", argv[optind],
				    argv[optind]);
	if (f.since && f.until && f.since > f.until)
		vdi_cli_usage_error(&c, "--since is after --until");
	if (follow_on && f.last == 0)
		f.last = 10; /* as journalctl -f: the last few, then what comes */
	if ((rc = vdi_cli_open(&c)) == 0)
		rc = follow_on ? follow(&c, &f) : list(&c, &f);
	return vdi_cli_finish(&c, rc);
}
