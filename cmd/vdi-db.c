/*
 * vdi-db - the VMDB as a whole: copy it into a new database of either
 * engine (a site moving from its SQLite file to PostgreSQL), and check it
 * (rows per table, counters against sessions, engine and schema).
 *
 * A thin main: the work is vdi_vmdb_copy() and vdi_vmdb_check()
 * (lib/db/vmdb.c).  Never loads libvirt.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "vmdb.h"

static const char usage[] =
	"usage: vdi-db [--db PATH|URI] [-o table|tsv|json] [-q] [-v] COMMAND [ARGS]\n"
	"       vdi-db copy [-n] TARGET\n"
	"       vdi-db check\n"
	"       vdi-db -h | --help | --version\n"
	"\n"
	"copy: every row of the VMDB into TARGET, an empty database (a PostgreSQL URI\n"
	"or an SQLite path), checked before it is committed.  check: rows per table,\n"
	"hosts whose counters drifted (exit 1 if any).\n"
	"Exit: 0 ok, 1 failure, 2 usage, 3 no such VMDB, 5 the VMDB is in use or the\n"
	"target is not empty, 75 temporary (busy, server away).  See vdi-db(1).\n";

static const struct vdi_cli_help help[] = {
	{ "copy TARGET", "copy the VMDB into a new database" },
	{ "check", "recount the counters; exit 1 on drift" },
	{ NULL, NULL },
};

static const struct option opts[] = {
	VDI_CLI_OPTS,
	VDI_CLI_DRYRUN,
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

static void
parse_opt(struct vdi_cli *c, int o, const char *arg)
{
	(void)c;
	(void)o;
	(void)arg;
}

static const int no_opts[] = { 0 };

static const struct vdi_cli_cmd cmds[] = {
	{ "copy", cmd_copy, no_opts, true },
	{ "check", cmd_check, no_opts, false },
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
