/*
 * vm-ls - the helpdesk's "where is this user's desktop?": user VMs with
 * their master, sizes, expiry and current session, or the sessions.
 * Reads the VMDB only; never loads libvirt.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "clock.h"
#include "names.h"
#include "session.h"
#include "uservm.h"
#include "strv.h"

static const char usage[] =
	"usage: vm-ls [--db PATH] [-o table|tsv|json] [-q] [-v] [--sessions] [--host HOST]\n"
	"             [--state STATE] [USER...]\n"
	"       vm-ls -h | --help | --version\n"
	"\n"
	"States: assigned, starting, running, migrating, stopping, ended (default: all but ended).\n"
	"Exit: 0 ok, 1 failure, 2 usage, 3 no such user VM.  See vm-ls(1).\n";

static const struct vdi_cli_help help[] = {
	{ "--sessions", "sessions rather than user VMs" },
	{ "--host HOST", "only those on this host" },
	{ "--state STATE", "only sessions in this state" },
	{ NULL, NULL },
};

enum {
	OPT_SESSIONS = VDI_OPT_FIRST_PRIVATE,
	OPT_HOST,
	OPT_STATE,
};

static const struct option opts[] = {
	VDI_CLI_OPTS,
	{ "sessions", no_argument, NULL, OPT_SESSIONS },
	{ "host", required_argument, NULL, OPT_HOST },
	{ "state", required_argument, NULL, OPT_STATE },
	{ NULL, 0, NULL, 0 },
};

static const char *const states[] = { "assigned", "starting", "running", "migrating", "stopping", "ended", NULL };

static void
display(char *buf, size_t len, const struct vdi_session *s)
{
	if (s->display_port > 0)
		snprintf(buf, len, "spice://%s:%lld", s->display_address, (long long)s->display_port);
	else
		buf[0] = '\0';
}

static bool
wanted(char **users, size_t n, const char *user)
{
	if (n == 0)
		return true;
	for (size_t i = 0; i < n; i++)
		if (strcmp(users[i], user) == 0)
			return true;
	return false;
}

/*
 * The viewer as vm-watch recorded it, and since when (NULL: the session
 * does not run); "unknown" while no live vm-watch watches its host, as
 * what it recorded may be out of date.  Then where it runs: the host's
 * health when that is not "up" (a desktop on a host that is down is not
 * simply running).
 */
static void
out_viewer(struct vdi_cli *c, const struct vdi_session *s)
{
	bool run = s->state && strcmp(s->state, "running") == 0 && !vdi_session_is_prepare(s);
	bool known = run && vdi_session_watched(s, vdi_clock_now());

	vdi_out_str(c->out, "viewer", !run ? NULL : !known ? "unknown" : vdi_session_connected(s) ? "connected" :
		    s->disconnected_since ? "disconnected" : "none-yet");
	vdi_out_time(c->out, "viewer_since", !known ? 0 : vdi_session_connected(s) ? s->connected_since :
		     s->disconnected_since ? s->disconnected_since : s->started);
}

/* The session's state as people read it: "running, host down" when its host does not answer. */
static void
out_state(struct vdi_cli *c, const char *key, const struct vdi_session *s, const char *state)
{
	char buf[64];

	if (state && s->host_health && strcmp(s->host_health, "up") != 0 && strcmp(state, "ended") != 0) {
		snprintf(buf, sizeof(buf), "%s, host %s", state, s->host_health);
		vdi_out_str(c->out, key, buf);
	} else {
		vdi_out_str(c->out, key, state);
	}
}

/* What a table may leave out on a narrow terminal, first first (TSV and JSON keep all). */
static const char *const session_cols[] = { "session", "user", "host", "state", "reason", "mem", "vcpus",
					    "created", "since", "display", "address", "kind", "viewer",
					    "viewer_since", "start", "browser", NULL };
static const char *const session_drop[] = { "browser", "start", "created", "viewer_since", "display", "kind", "since",
					    "vcpus", "mem", "reason", NULL };
static const char *const uservm_cols[] = { "user", "master", "mem", "vcpus", "disk", "expires", "session",
					   "state", "host", "since", "display", "address", "vm", "viewer",
					   "viewer_since", "warm", "home", "home_used", "update", NULL };
static const char *const uservm_drop[] = { "home_used", "update", "home", "warm", "expires", "viewer_since",
					   "display", "since", "disk", "vcpus", "mem", "master", "session", NULL };

static int
list_sessions(struct vdi_cli *c, char **users, size_t n, const char *host, const char *state)
{
	struct vdi_err err = { 0 };
	struct vdi_session *ss;
	size_t ns;
	char disp[300];

	/* A user named must exist, as for the user VM listing. */
	for (size_t i = 0; i < n; i++) {
		struct vdi_uservm u;
		if (vdi_uservm_get(c->db, users[i], &u, &err) < 0)
			return vdi_cli_fail(c, &err);
		vdi_uservm_clear(&u);
	}
	if (vdi_session_list(c->db, host, state, &ss, &ns, &err) < 0)
		return vdi_cli_fail(c, &err);
	vdi_out_table_columns(c->out, session_cols, session_drop);
	vdi_out_list_begin(c->out);
	for (size_t i = 0; i < ns; i++) {
		const struct vdi_session *s = &ss[i];
		if (!wanted(users, n, s->user))
			continue;
		display(disp, sizeof(disp), s);
		vdi_out_obj_begin(c->out);
		vdi_out_int(c->out, "session", s->id);
		vdi_out_str(c->out, "user", s->user);
		vdi_out_str(c->out, "host", s->host);
		out_state(c, "state", s, s->state);
		vdi_out_str(c->out, "reason", s->reason);
		vdi_out_size(c->out, "mem", s->mem);
		vdi_out_int(c->out, "vcpus", s->vcpus);
		vdi_out_time(c->out, "created", s->created);
		vdi_out_time(c->out, "since", s->changed);
		vdi_out_str(c->out, "display", disp[0] ? disp : NULL);
		vdi_out_str(c->out, "address", s->address);
		vdi_out_str(c->out, "kind", s->kind);
		out_viewer(c, s);
		/* How a desktop came up: restored from its warm image, or booted. */
		vdi_out_str(c->out, "start", !vdi_session_is_desktop(s) || !s->started ? NULL :
			    s->warm ? "restored" : "booted");
		/* Of its viewers, how many are browser consoles (vm-console) now. */
		if (vdi_session_is_desktop(s) && s->state && strcmp(s->state, "running") == 0)
			vdi_out_int(c->out, "browser", s->consoles);
		else
			vdi_out_str(c->out, "browser", NULL);
		vdi_out_obj_end(c->out);
	}
	vdi_out_list_end(c->out);
	vdi_sessions_free(ss, ns);
	return 0;
}

/* A user VM's warm image: warm (sessions restore), building, or cold (sessions boot). */
static const char *
warm_state(const struct vdi_uservm *u)
{
	if (u->warm_building)
		return "building";
	return u->warm ? "warm" : "cold";
}

static int
list_uservms(struct vdi_cli *c, char **users, size_t n, const char *host, const char *state)
{
	struct vdi_err err = { 0 };
	struct vdi_uservm *us;
	size_t nu;

	if (vdi_uservm_list(c->db, n ? users : NULL, n, &us, &nu, &err) < 0)
		return vdi_cli_fail(c, &err);
	vdi_out_table_columns(c->out, uservm_cols, uservm_drop);
	vdi_out_list_begin(c->out);
	for (size_t i = 0; i < nu; i++) {
		const struct vdi_uservm *u = &us[i];
		struct vdi_session s = { 0 };
		char disp[300] = "";

		if (host && (!u->session_host || strcmp(host, u->session_host) != 0))
			continue;
		if (state && (!u->session_state || strcmp(state, u->session_state) != 0))
			continue;
		if (u->session_id && vdi_session_get(c->db, u->session_id, &s, &err) == 0)
			display(disp, sizeof(disp), &s);
		vdi_out_obj_begin(c->out);
		vdi_out_str(c->out, "user", u->user);
		vdi_out_str(c->out, "master", u->master);
		vdi_out_size(c->out, "mem", u->mem);
		vdi_out_int(c->out, "vcpus", u->vcpus);
		vdi_out_size(c->out, "disk", u->disk);
		vdi_out_time(c->out, "expires", u->expires);
		if (u->session_id)
			vdi_out_int(c->out, "session", u->session_id);
		else
			vdi_out_null(c->out, "session");
		out_state(c, "state", &s, u->session_state);
		vdi_out_str(c->out, "host", u->session_host);
		vdi_out_time(c->out, "since", s.changed);
		vdi_out_str(c->out, "display", disp[0] ? disp : NULL);
		vdi_out_str(c->out, "address", s.address);
		vdi_out_str(c->out, "vm", u->state);
		out_viewer(c, &s);
		vdi_out_str(c->out, "warm", warm_state(u));
		/* Its home disk: size, and allocation in the pool when last read (end of a session, copy, resize). */
		if (u->home) {
			vdi_out_size(c->out, "home", u->home_size);
			vdi_out_size(c->out, "home_used", u->home_used);
		} else {
			vdi_out_null(c->out, "home");
			vdi_out_null(c->out, "home_used");
		}
		/* Its master's version: the master it moves to (stale), or the one it leaves (under way). */
		if (u->updating_from)
			vdi_out_str(c->out, "update", "updating");
		else if (u->update_to)
			vdi_out_str(c->out, "update", u->update_to);
		else
			vdi_out_str(c->out, "update", NULL);
		vdi_out_obj_end(c->out);
		vdi_session_clear(&s);
	}
	vdi_out_list_end(c->out);
	vdi_uservms_free(us, nu);
	return 0;
}

int
main(int argc, char **argv)
{
	struct vdi_cli c;
	struct vdi_err err = { 0 };
	const char *host = NULL, *state = NULL;
	bool sessions = false;
	char **users = NULL;
	size_t n = 0;
	int o, rc;

	vdi_cli_init(&c, "vm-ls", usage);
	vdi_cli_set_help(&c, help, false);
	while ((o = getopt_long(argc, argv, VDI_CLI_SHORT, opts, NULL)) != -1) {
		if (vdi_cli_option(&c, o, optarg))
			continue;
		switch (o) {
		case OPT_SESSIONS:
			sessions = true;
			break;
		case OPT_HOST:
			if (vdi_name_check("host", optarg, &err) < 0)
				vdi_cli_usage_error(&c, "%s", err.msg);
			host = optarg;
			break;
		case OPT_STATE: {
			int i;
			for (i = 0; states[i] && strcmp(states[i], optarg) != 0; i++)
				;
			if (!states[i])
				vdi_cli_usage_error(&c, "--state: unknown state '%s' (assigned, starting, running, "
						    "migrating, stopping, ended)", optarg);
			state = optarg;
			break;
		}
		default:
			vdi_cli_usage_error(&c, "unknown option");
		}
	}
	/* Users only as arguments: with none, everyone (a listing does not read stdin). */
	for (int i = optind; i < argc; i++) {
		if (vdi_name_check("user", argv[i], &err) < 0)
			vdi_cli_usage_error(&c, "%s", err.msg);
		vdi_strv_push(&users, &n, argv[i]);
	}
	if ((rc = vdi_cli_open(&c)) == 0)
		rc = sessions ? list_sessions(&c, users, n, host, state) : list_uservms(&c, users, n, host, state);
	free(users);
	return vdi_cli_finish(&c, rc);
}
