/*
 * vm-watch - follow libvirt's events on every host, so sessions end when
 * their desktop powers off and the VMDB knows who is connected (a
 * systemd service; one per VMDB).
 *
 * A thin main: the work is vdi_watch_run() (lib/flow/watch.c).  Each state
 * change is one line on stderr, which systemd puts in the journal.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "host.h"
#include "parse.h"
#include "watch.h"

static const char usage[] =
	"usage: vm-watch [--db PATH] [-q] [-v] [--rescan DURATION] [--standby]\n"
	"       vm-watch -h | --help | --version\n"
	"\n"
	"Runs until SIGTERM or SIGINT, logging one line per state change on stderr.\n"
	"--standby: while another vm-watch watches this VMDB, wait and take over\n"
	"when it stops.\n"
	"Exit: 0 stopped by a signal, 1 failure, 2 usage, 5 another vm-watch watches\n"
	"this VMDB (without --standby).  See vm-watch(1).\n";

static const struct vdi_cli_help help[] = {
	{ "--rescan DURATION", "reread the hosts this often (5s)" },
	{ "--standby", "wait while another vm-watch runs, then take over" },
	{ NULL, NULL },
};

enum {
	OPT_RESCAN = VDI_OPT_FIRST_PRIVATE,
	OPT_STANDBY,
};

static const struct option opts[] = {
	VDI_CLI_OPTS,
	{ "rescan", required_argument, NULL, OPT_RESCAN },
	{ "standby", no_argument, NULL, OPT_STANDBY },
	{ NULL, 0, NULL, 0 },
};

int
main(int argc, char **argv)
{
	struct vdi_cli c;
	struct vdi_err err = { 0 };
	struct vdi_watch_opts wo = { .rescan_ms = 5000, .backoff_max_ms = 60000 };
	const volatile sig_atomic_t *stop;
	int o, rc, code = 0, lockfd = -1;
	bool standby = false;

	vdi_cli_init(&c, "vm-watch", usage);
	vdi_cli_set_help(&c, help, false);
	while ((o = getopt_long(argc, argv, VDI_CLI_SHORT, opts, NULL)) != -1) {
		if (vdi_cli_option(&c, o, optarg))
			continue;
		switch (o) {
		case OPT_RESCAN:
			if (vdi_duration_parse(optarg, &wo.rescan_ms, &err) < 0 || wo.rescan_ms < 100 ||
			    wo.rescan_ms > VDI_WATCH_STALE * 1000 / 3)
				vdi_cli_usage_error(&c, "--rescan: %s", err.msg[0] ? err.msg :
						    "between 100ms and a third of 30s");
			break;
		case OPT_STANDBY:
			standby = true;
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
	stop = vdi_cli_stop_on_signals();
	rc = vdi_watch_lock(c.db, &lockfd, &err);
	if (rc == 0 && standby) {
		vdi_cli_log(&c, "standby: another vm-watch watches; taking over when it stops");
		rc = vdi_watch_lock_wait(c.db, stop, &lockfd, &err);
		if (rc == 0) /* stopped while waiting */
			goto out;
		if (rc > 0)
			vdi_cli_log(&c, "taking over");
	}
	if (rc <= 0) {
		if (rc == 0)
			vdi_err_set(&err, VDI_R_CONFLICT, "another vm-watch watches %s", vdi_db_path(c.db));
		code = vdi_cli_fail(&c, &err);
		goto out;
	}
	wo.connect_timeout_ms = c.cfg.poll_timeout;
	wo.logs.console_log_dir = c.cfg.console_log_dir;
	wo.logs.host_log_dir = c.cfg.host_log_dir;
	wo.stop = stop;
	wo.log = vdi_cli_log;
	wo.ctx = &c;
	vdi_cli_log(&c, "started");
	if (vdi_watch_run(c.db, &wo, &err) < 0)
		code = vdi_cli_fail(&c, &err);
	else
		vdi_cli_log(&c, "stopped");
out:
	if (lockfd >= 0)
		close(lockfd);
	return vdi_cli_finish(&c, code);
}
