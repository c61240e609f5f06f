/*
 * vdi-db - the VMDB as a whole: copy it into a new database of either
 * engine (a site moving from its SQLite file to PostgreSQL), check it
 * (rows per table, counters against sessions, engine and schema), back it
 * up while it is in use and restore it, and print its figures for
 * Prometheus.
 *
 * A thin main: the work is vdi_vmdb_*() (lib/db/vmdb.c) and
 * vdi_metrics_render() (lib/db/metrics.c).  Never loads libvirt.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "clock.h"
#include "file.h"
#include "mem.h"
#include "metrics.h"
#include "vmdb.h"

static const char usage[] =
	"usage: vdi-db [--db PATH|URI] [-o table|tsv|json] [-q] [-v] COMMAND [ARGS]\n"
	"       vdi-db copy [-n] TARGET\n"
	"       vdi-db check\n"
	"       vdi-db backup FILE\n"
	"       vdi-db restore [-n] FILE\n"
	"       vdi-db metrics [--write FILE]\n"
	"       vdi-db -h | --help | --version\n"
	"\n"
	"copy: every row of the VMDB into TARGET, an empty database (a PostgreSQL URI\n"
	"or an SQLite path), checked before it is committed.  check: rows per table,\n"
	"hosts whose counters drifted (exit 1 if any).  backup: a consistent copy of an\n"
	"SQLite VMDB while it is in use, into a new FILE.  restore: the VMDB made again\n"
	"from FILE, which must be a VMDB; then run vm-hosts poll and vm-reap --orphans.\n"
	"metrics: Prometheus text exposition on stdout, or written atomically to FILE.\n"
	"Exit: 0 ok, 1 failure, 2 usage, 3 no such VMDB, 5 the VMDB is in use or the\n"
	"target is not empty, 75 temporary (busy, server away).  See vdi-db(1).\n";

static const struct vdi_cli_help help[] = {
	{ "copy TARGET", "copy the VMDB into a new database" },
	{ "check", "recount the counters; exit 1 on drift" },
	{ "backup FILE", "copy the VMDB while it is in use into FILE, a new file" },
	{ "restore FILE", "make the VMDB again from a backup" },
	{ "metrics", "the VMDB's figures for Prometheus" },
	{ "--write FILE", "metrics: into FILE (atomically, mode 0644), for a textfile collector" },
	{ NULL, NULL },
};

enum {
	OPT_WRITE = VDI_OPT_FIRST_PRIVATE,
};

static const struct option opts[] = {
	VDI_CLI_OPTS,
	VDI_CLI_DRYRUN,
	{ "write", required_argument, NULL, OPT_WRITE },
	{ NULL, 0, NULL, 0 },
};

static void
put_report(struct vdi_cli *c, const struct vdi_vmdb_report *r, bool copied)
{
	vdi_out_list_begin(c->out);
	for (size_t i = 0; i < r->ntables; i++) {
		vdi_out_obj_begin(c->out);
		vdi_out_str(c->out, "table", r->tables[i].name);
		vdi_out_int(c->out, "rows", r->tables[i].rows);
		if (copied)
			vdi_out_int(c->out, "copied", r->tables[i].copied);
		vdi_out_obj_end(c->out);
	}
	vdi_out_list_end(c->out);
}

/* An SQLite VMDB to copy from must exist: opening a missing path would make an empty one. */
static int
source_exists(struct vdi_cli *c)
{
	struct vdi_err err = { 0 };
	int rc;

	if ((rc = vdi_cli_settings(c)) != 0)
		return rc;
	if (!vdi_db_name_is_pg(c->cfg.db) && access(c->cfg.db, F_OK) < 0) {
		vdi_err_set(&err, VDI_R_NOTFOUND, "no VMDB at %s to copy", c->cfg.db);
		return vdi_cli_fail(c, &err);
	}
	return 0;
}

static int
cmd_copy(struct vdi_cli *c, int argc, char **argv)
{
	struct vdi_err err = { 0 };
	struct vdi_vmdb_report r = { 0 };
	struct vdi_db *dst = NULL;
	int rc;

	if (argc - optind != 1)
		vdi_cli_usage_error(c, "copy: give one TARGET");
	if ((rc = source_exists(c)) != 0 || (rc = vdi_cli_open(c)) != 0)
		return rc;
	if (strcmp(argv[optind], c->cfg.db) == 0)
		vdi_cli_usage_error(c, "copy: TARGET is the VMDB itself");
	if (vdi_db_open(&dst, argv[optind], c->cfg.busy_timeout, c->prog, &err) < 0)
		return vdi_cli_fail(c, &err);
	vdi_db_set_dry_run(dst, c->dry_run);
	if (vdi_vmdb_copy(c->db, dst, &r, &err) < 0) {
		rc = vdi_cli_fail(c, &err);
		goto out;
	}
	put_report(c, &r, true);
	vdi_cli_info(c, "%s %s into %s (%s)", c->dry_run ? "would copy" : "copied", vdi_db_path(c->db),
		     vdi_db_path(dst), vdi_db_engine_name(dst));
out:
	vdi_vmdb_report_clear(&r);
	vdi_db_close(dst);
	return rc;
}

static int
cmd_check(struct vdi_cli *c, int argc, char **argv)
{
	struct vdi_err err = { 0 };
	struct vdi_vmdb_report r = { 0 };
	int rc;

	(void)argv;
	if (argc - optind != 0)
		vdi_cli_usage_error(c, "check: too many arguments");
	if ((rc = vdi_cli_open(c)) != 0)
		return rc;
	if (vdi_vmdb_check(c->db, &r, &err) < 0) {
		rc = vdi_cli_fail(c, &err);
		goto out;
	}
	put_report(c, &r, false);
	if (r.drifted) {
		vdi_err_set(&err, VDI_R_FAIL, "%lld hosts' capacity counters disagree with their sessions "
			    "(the view host_usage_check says which)", (long long)r.drifted);
		rc = vdi_cli_fail(c, &err);
	} else {
		vdi_cli_info(c, "%s VMDB %s: counters agree with the sessions", vdi_db_engine_name(c->db),
			     vdi_db_path(c->db));
	}
out:
	vdi_vmdb_report_clear(&r);
	return rc;
}

static int
cmd_backup(struct vdi_cli *c, int argc, char **argv)
{
	struct vdi_err err = { 0 };
	int rc;

	if (argc - optind != 1)
		vdi_cli_usage_error(c, "backup: give one FILE");
	if ((rc = source_exists(c)) != 0 || (rc = vdi_cli_open(c)) != 0)
		return rc;
	if (vdi_vmdb_backup(c->db, argv[optind], &err) < 0)
		return vdi_cli_fail(c, &err);
	vdi_cli_info(c, "backed up %s into %s", vdi_db_path(c->db), argv[optind]);
	return 0;
}

static int
cmd_restore(struct vdi_cli *c, int argc, char **argv)
{
	struct vdi_err err = { 0 };
	struct vdi_vmdb_report r = { 0 };
	int rc;

	if (argc - optind != 1)
		vdi_cli_usage_error(c, "restore: give one FILE");
	if ((rc = vdi_cli_open(c)) != 0)
		return rc;
	if (vdi_vmdb_restore(c->db, argv[optind], &err) < 0)
		return vdi_cli_fail(c, &err);
	if (c->dry_run) {
		vdi_cli_info(c, "%s is a VMDB that checks: it would restore %s", argv[optind], vdi_db_path(c->db));
		return 0;
	}
	/* Open it again: a backup of an older schema is upgraded now, and the check reads what is there. */
	vdi_db_close(c->db);
	c->db = NULL;
	if (vdi_db_open(&c->db, c->cfg.db, c->cfg.busy_timeout, c->prog, &err) < 0 ||
	    vdi_vmdb_check(c->db, &r, &err) < 0) {
		rc = vdi_cli_fail(c, &err);
		goto out;
	}
	put_report(c, &r, false);
	if (r.drifted) {
		vdi_err_set(&err, VDI_R_FAIL, "restored, but %lld hosts' counters disagree with their sessions",
			    (long long)r.drifted);
		rc = vdi_cli_fail(c, &err);
		goto out;
	}
	vdi_cli_info(c, "restored %s from %s; now reconcile it with the hosts: vm-hosts poll && vm-reap --orphans",
		     vdi_db_path(c->db), argv[optind]);
out:
	vdi_vmdb_report_clear(&r);
	return rc;
}

static int
cmd_metrics(struct vdi_cli *c, int argc, char **argv)
{
	struct vdi_err err = { 0 };
	const char *file = c->args;
	char *buf = NULL, *dir = NULL;
	const char *slash;
	size_t len = 0;
	FILE *fp;
	int rc;

	(void)argv;
	if (argc - optind != 0)
		vdi_cli_usage_error(c, "metrics: too many arguments (--write FILE names the file)");
	if ((rc = vdi_cli_open(c)) != 0)
		return rc;
	if (!(fp = open_memstream(&buf, &len))) {
		vdi_err_set(&err, VDI_R_FAIL, "no memory");
		return vdi_cli_fail(c, &err);
	}
	rc = vdi_metrics_render(c->db, fp, vdi_clock_now(), &err);
	fclose(fp);
	if (rc < 0) {
		rc = vdi_cli_fail(c, &err);
		goto out;
	}
	if (!file) {
		fwrite(buf, 1, len, stdout);
		goto out;
	}
	/* Whole or not at all: a collector never reads half a file. */
	slash = strrchr(file, '/');
	dir = slash == file ? vdi_xstrdup("/") : slash ? vdi_xstrndup(file, (size_t)(slash - file)) : vdi_xstrdup(".");
	if (vdi_file_write_atomic(dir, slash ? slash + 1 : file, buf, len, 0644, &err) < 0)
		rc = vdi_cli_fail(c, &err);
out:
	free(dir);
	free(buf);
	return rc;
}

static void
parse_opt(struct vdi_cli *c, int o, const char *arg)
{
	if (o == OPT_WRITE) {
		if (!*arg || arg[strlen(arg) - 1] == '/')
			vdi_cli_usage_error(c, "--write: give a file name, not '%s'", arg);
		c->args = (void *)arg;
	}
}

static const int no_opts[] = { 0 };
static const int metrics_opts[] = { OPT_WRITE, 0 };

static const struct vdi_cli_cmd cmds[] = {
	{ "copy", cmd_copy, no_opts, true },
	{ "check", cmd_check, no_opts, false },
	{ "backup", cmd_backup, no_opts, false },
	{ "restore", cmd_restore, no_opts, true },
	{ "metrics", cmd_metrics, metrics_opts, false },
	{ NULL, NULL, NULL, false },
};

int
main(int argc, char **argv)
{
	struct vdi_cli c;

	vdi_cli_init(&c, "vdi-db", usage);
	vdi_cli_set_help(&c, help, true);
	return vdi_cli_finish(&c, vdi_cli_dispatch(&c, argc, argv, opts, cmds, parse_opt));
}
