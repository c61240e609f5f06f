/*
 * vm-console - the browser console's websocket end: the web server proxies
 * a console's path to it, and it relays noVNC to the session's VNC display
 * (a systemd service, one per web server).
 *
 * A thin main: the work is vdi_relay_serve() (lib/flow/relay.c).  Each
 * console opened, closed or refused is one line on stderr, which systemd
 * puts in the journal.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli.h"
#include "relay.h"

static const char usage[] =
	"usage: vm-console [--db PATH] [-q] [--socket PATH] [--group GROUP]\n"
	"       vm-console -h | --help | --version\n"
	"\n"
	"Listens on a Unix socket for the web server's websocket upgrades of\n"
	"console_path, each with a one-time console ticket from vm-connect(1), and\n"
	"relays each to its session's VNC display.  Runs until SIGTERM or SIGINT,\n"
	"logging one line per console on stderr.\n"
	"Exit: 0 stopped by a signal, 1 failure, 2 usage, 5 another vm-console\n"
	"listens on the socket, or a file that is not a socket is in its place.\n"
	"See vm-console(1).\n";

static const struct vdi_cli_help help[] = {
	{ "--socket PATH", "listen here (console_socket: /run/vdi-tools/console.sock)" },
	{ "--group GROUP", "the socket's group: the web server's (mode 0660)" },
	{ NULL, NULL },
};

enum {
	OPT_SOCKET = VDI_OPT_FIRST_PRIVATE,
	OPT_GROUP,
};

static const struct option opts[] = {
	VDI_CLI_OPTS,
	{ "socket", required_argument, NULL, OPT_SOCKET },
	{ "group", required_argument, NULL, OPT_GROUP },
	{ NULL, 0, NULL, 0 },
};

int
main(int argc, char **argv)
{
	struct vdi_cli c;
	struct vdi_err err = { 0 };
	struct vdi_relay_opts ro = { 0 };
	struct rlimit rl;
	const char *sock = NULL, *group = NULL;
	int o, rc, code = 0;

	vdi_cli_init(&c, "vm-console", usage);
	vdi_cli_set_help(&c, help, false);
	while ((o = getopt_long(argc, argv, VDI_CLI_SHORT, opts, NULL)) != -1) {
		if (vdi_cli_option(&c, o, optarg))
			continue;
		switch (o) {
		case OPT_SOCKET:
			sock = optarg;
			break;
		case OPT_GROUP:
			group = optarg;
			break;
		default:
			vdi_cli_usage_error(&c, "unknown option");
		}
	}
	if (optind < argc)
		vdi_cli_usage_error(&c, "unexpected argument '%s'", argv[optind]);
	if (sock && (!*sock || sock[0] != '/'))
		vdi_cli_usage_error(&c, "--socket: an absolute path");
	if ((rc = vdi_cli_open(&c)) != 0) {
		code = rc;
		goto out;
	}
	/* Many consoles, two sockets each: all the descriptors the hard limit allows. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	ro.stop = vdi_cli_stop_on_signals();
	ro.db = c.db;
	ro.socket_path = sock ? sock : c.cfg.console_socket;
	ro.socket_group = group;
	ro.path = c.cfg.console_path;
	ro.origin = c.cfg.console_origin;
	ro.user_header = c.cfg.console_user_header;
	ro.handshake_timeout_ms = c.cfg.console_handshake_timeout;
	ro.idle_timeout_ms = c.cfg.console_idle_timeout;
	ro.max_frame = c.cfg.console_max_frame;
	ro.per_user = c.cfg.console_per_user;
	ro.log = vdi_cli_log;
	ro.ctx = &c;
	if (vdi_relay_serve(&ro, &err) < 0)
		code = vdi_cli_fail(&c, &err);
out:
	return vdi_cli_finish(&c, code);
}
