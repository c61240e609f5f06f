/*
 * vm-master - masters (golden images): import with libcurl into a libvirt
 * storage pool, list, show, retire, remove.  The paper's VMMS.
 *
 * A thin main: the import is vdi_import() (lib/flow/import.c), which streams
 * the image straight into a new volume, hashing and checking it on the
 * way; only a complete, verified image is registered.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "home.h"
#include "image.h"
#include "import.h"
#include "names.h"
#include "parse.h"
#include "strv.h"

static const char usage[] =
	"usage: vm-master [--db PATH] [-o table|tsv|json] [-q] [-v] COMMAND [ARGS]\n"
	"       vm-master add NAME --image PATH|URL [--os OS] [--app APP]... [--sha256 HEX]\n"
	"                 [--pool POOL] [--host HOST] [--mem SIZE] [--vcpus N] [--disk SIZE]\n"
	"                 [--profile linux|windows|windows11] [--firmware bios|efi]\n"
	"                 [--disk-bus virtio|sata|scsi] [--nic virtio|e1000e|rtl8139]\n"
	"                 [--video virtio|qxl|vga] [--prepare cloud-init|none] [--rdp]\n"
	"                 [--home SIZE] [--replaces OLD [--force] [--force-update]] [-n]\n"
	"       vm-master update [--force] [--force-update] [-n] OLD NEW\n"
	"       vm-master list\n"
	"       vm-master show NAME\n"
	"       vm-master retire [-n] NAME...\n"
	"       vm-master rm [--host HOST] [-n] NAME...\n"
	"       vm-master -h | --help | --version\n"
	"\n"
	"Images: qcow2 or raw, from a path or an http, https or file URL (TLS verified).\n"
	"Exit: 0 ok, 1 failure, 2 usage, 3 not found, 4 no host sees the pool, 5 conflict,\n"
	"75 temporary (host or server unreachable).  See vm-master(1).\n";

static const struct vdi_cli_help help[] = {
	{ "--image PATH|URL", "a file, or an http(s) URL to download" },
	{ "--os OS, --app APP", "what it has (--app again for more)" },
	{ "--sha256 HEX", "the image's checksum, checked on the way" },
	{ "--pool POOL, --host HOST", "where its volume goes, through which host" },
	{ "--mem SIZE, --vcpus N", "user VMs' defaults" },
	{ "--disk SIZE", "user VMs' default disk, at least the image's" },
	{ "--profile NAME", "linux, windows, windows11 (else from --os)" },
	{ "--firmware, --disk-bus", "override: bios|efi, virtio|sata|scsi" },
	{ "--nic, --video", "override: virtio|e1000e|rtl8139, virtio|qxl|vga" },
	{ "--prepare WAY", "cloud-init (a first boot per user VM) or none" },
	{ "--rdp", "the guest serves RDP (vm-start --rdp)" },
	{ "--home SIZE", "user VMs' default home disk (none if not given)" },
	{ "--replaces OLD", "it replaces OLD: OLD's user VMs update to it" },
	{ "--force", "replace across OS families or profiles" },
	{ "--force-update", "stale users wait for the update (else: old once more)" },
	{ NULL, NULL },
};

enum {
	OPT_IMAGE = VDI_OPT_FIRST_PRIVATE,
	OPT_OS,
	OPT_APP,
	OPT_SHA256,
	OPT_POOL,
	OPT_HOST,
	OPT_MEM,
	OPT_VCPUS,
	OPT_DISK,
	OPT_PROFILE,
	OPT_FIRMWARE,
	OPT_DISK_BUS,
	OPT_NIC,
	OPT_VIDEO,
	OPT_PREPARE,
	OPT_RDP,
	OPT_HOME,
	OPT_REPLACES,
	OPT_FORCE,
	OPT_FORCE_UPDATE,
};

static const struct option opts[] = {
	VDI_CLI_OPTS,
	VDI_CLI_DRYRUN,
	{ "image", required_argument, NULL, OPT_IMAGE },
	{ "os", required_argument, NULL, OPT_OS },
	{ "app", required_argument, NULL, OPT_APP },
	{ "sha256", required_argument, NULL, OPT_SHA256 },
	{ "pool", required_argument, NULL, OPT_POOL },
	{ "host", required_argument, NULL, OPT_HOST },
	{ "mem", required_argument, NULL, OPT_MEM },
	{ "vcpus", required_argument, NULL, OPT_VCPUS },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "profile", required_argument, NULL, OPT_PROFILE },
	{ "firmware", required_argument, NULL, OPT_FIRMWARE },
	{ "disk-bus", required_argument, NULL, OPT_DISK_BUS },
	{ "nic", required_argument, NULL, OPT_NIC },
	{ "video", required_argument, NULL, OPT_VIDEO },
	{ "prepare", required_argument, NULL, OPT_PREPARE },
	{ "rdp", no_argument, NULL, OPT_RDP },
	{ "home", required_argument, NULL, OPT_HOME },
	{ "replaces", required_argument, NULL, OPT_REPLACES },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "force-update", no_argument, NULL, OPT_FORCE_UPDATE },
	{ NULL, 0, NULL, 0 },
};

/* The commands' own options, borrowed from argv; main owns them (c->args). */
struct args {
	struct vdi_import_opts io;
	char **apps;
	size_t napps;
	char *sha256;
	const char *replaces;                /* --replaces OLD */
	struct vdi_master_replace_opts ro;   /* --force, --force-update */
};

static volatile sig_atomic_t interrupted;

static void
on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void
check_name(struct vdi_cli *c, const char *kind, const char *name)
{
	struct vdi_err err = { 0 };

	if (vdi_name_check(kind, name, &err) < 0)
		vdi_cli_usage_error(c, "%s", err.msg);
}

static void
parse_opt(struct vdi_cli *c, int o, const char *arg)
{
	struct args *a = c->args;
	struct vdi_err err = { 0 };

	switch (o) {
	case OPT_IMAGE:
		a->io.spec.source = arg;
		break;
	case OPT_OS:
		check_name(c, "os", arg);
		a->io.spec.os = arg;
		break;
	case OPT_APP:
		check_name(c, "app", arg);
		vdi_strv_push(&a->apps, &a->napps, (char *)arg);
		break;
	case OPT_SHA256:
		free(a->sha256);
		a->sha256 = vdi_xstrdup(arg);
		if (vdi_sha256_check(a->sha256, &err) < 0)
			vdi_cli_usage_error(c, "--sha256: %s", err.msg);
		break;
	case OPT_POOL:
		check_name(c, "pool", arg);
		a->io.spec.pool = arg;
		break;
	case OPT_HOST:
		check_name(c, "host", arg);
		a->io.host = arg;
		break;
	case OPT_MEM:
		if (vdi_mem_parse(arg, &a->io.spec.mem, &err) < 0)
			vdi_cli_usage_error(c, "--%s", err.msg);
		break;
	case OPT_VCPUS:
		if (vdi_vcpus_parse(arg, &a->io.spec.vcpus, &err) < 0)
			vdi_cli_usage_error(c, "--%s", err.msg);
		break;
	case OPT_DISK:
		if (vdi_disk_parse(arg, &a->io.spec.disk, &err) < 0)
			vdi_cli_usage_error(c, "--%s", err.msg);
		break;
	case OPT_PROFILE:
	case OPT_FIRMWARE:
	case OPT_DISK_BUS:
	case OPT_NIC:
	case OPT_VIDEO: {
		struct vdi_profile p = { 0 };
		const char **slot = o == OPT_PROFILE ? &p.name : o == OPT_FIRMWARE ? &p.firmware :
				    o == OPT_DISK_BUS ? &p.disk_bus : o == OPT_NIC ? &p.nic : &p.video;
		*slot = arg;
		if (vdi_profile_check(&p, &err) < 0)
			vdi_cli_usage_error(c, "--%s", err.msg);
		*(o == OPT_PROFILE ? &a->io.spec.prof.name : o == OPT_FIRMWARE ? &a->io.spec.prof.firmware :
		  o == OPT_DISK_BUS ? &a->io.spec.prof.disk_bus : o == OPT_NIC ? &a->io.spec.prof.nic :
		  &a->io.spec.prof.video) = arg;
		break;
	}
	case OPT_PREPARE:
		if (strcmp(arg, "cloud-init") != 0 && strcmp(arg, "none") != 0)
			vdi_cli_usage_error(c, "--prepare: '%s' is not cloud-init or none", arg);
		a->io.spec.prepare = arg;
		break;
	case OPT_RDP:
		a->io.spec.rdp = true;
		break;
	case OPT_HOME:
		if (vdi_home_parse(arg, &a->io.spec.home, &err) < 0)
			vdi_cli_usage_error(c, "--%s", err.msg);
		if (a->io.spec.home < VDI_HOME_MIN)
			vdi_cli_usage_error(c, "--home: %s is below the smallest home disk (%lld MiB)", arg,
					    VDI_HOME_MIN >> 20);
		break;
	case OPT_REPLACES:
		check_name(c, "master", arg);
		a->replaces = arg;
		break;
	case OPT_FORCE:
		a->ro.force = true;
		break;
	case OPT_FORCE_UPDATE:
		a->ro.force_update = true;
		break;
	}
}

static void
progress(void *ctx, int64_t done, int64_t total)
{
	struct args *a = ((struct vdi_cli *)ctx)->args;
	vdi_cli_progress(ctx, a->io.spec.name, done, total, true);
}

/* Settings into the import's options (after vdi_cli_open). */
static void
fill_opts(struct vdi_cli *c)
{
	struct args *a = c->args;
	a->io.spec.apps = a->apps;
	a->io.spec.napps = a->napps;
	{
		struct vdi_err err = { 0 };
		if (vdi_profile_check(&a->io.spec.prof, &err) < 0)
			vdi_cli_usage_error(c, "%s", err.msg);
	}
	if (!a->io.spec.pool)
		a->io.spec.pool = c->cfg.pool;
	if (a->io.spec.mem <= 0)
		a->io.spec.mem = 1LL << 30;
	if (a->io.spec.vcpus <= 0)
		a->io.spec.vcpus = 1;
	a->io.sha256 = a->sha256;
	a->io.max_size = c->cfg.image_max_size;
	a->io.conns = vdi_conns_new(c->cfg.poll_timeout);
	a->io.interrupted = &interrupted;
	a->io.progress = progress;
	a->io.ctx = c;
}

static void
put_master(struct vdi_out *o, const struct vdi_master *m, bool full)
{
	vdi_out_obj_begin(o);
	vdi_out_str(o, "name", m->name);
	vdi_out_str(o, "state", m->state);
	vdi_out_str(o, "os", m->os);
	vdi_out_strv(o, "apps", m->apps, m->napps);
	vdi_out_str(o, "format", m->format);
	vdi_out_size(o, "virtual_size", m->virtual_size);
	vdi_out_size(o, "disk", m->disk);
	vdi_out_size(o, "mem", m->mem);
	vdi_out_int(o, "vcpus", m->vcpus);
	vdi_out_int(o, "uservms", m->uservms);
	vdi_out_str(o, "profile", m->profile);
	vdi_out_str(o, "prepare", m->prepare);
	if (m->home)
		vdi_out_size(o, "home", m->home);
	else
		vdi_out_null(o, "home");
	vdi_out_str(o, "replaced_by", m->replaced_by);
	if (full || vdi_out_fmt(o) != VDI_FMT_TABLE) {
		vdi_out_bool(o, "update_forced", m->update_forced);
		vdi_out_int(o, "updating", m->updating);
		struct vdi_profile reg = vdi_master_profile(m), eff;
		vdi_profile_resolve(&reg, &eff);
		vdi_out_str(o, "firmware", eff.firmware);
		vdi_out_str(o, "disk_bus", eff.disk_bus);
		vdi_out_str(o, "nic", eff.nic);
		vdi_out_str(o, "video", eff.video);
		vdi_out_bool(o, "rdp", m->rdp);
		vdi_out_str(o, "pool", m->pool);
		vdi_out_str(o, "volume", m->volume);
		vdi_out_str(o, "sha256", m->sha256);
		vdi_out_str(o, "source", m->source);
		vdi_out_time(o, "created", m->created);
	}
	vdi_out_obj_end(o);
}

static int replace(struct vdi_cli *c, const char *old, const char *new, int64_t *stale);

static int
cmd_add(struct vdi_cli *c, int argc, char **argv)
{
	struct args *a = c->args;
	struct vdi_err err = { 0 };
	struct vdi_master m;
	bool takeover;
	int rc;

	if (argc - optind != 1)
		vdi_cli_usage_error(c, "add: expected one master name");
	check_name(c, "master", argv[optind]);
	if (!a->io.spec.source)
		vdi_cli_usage_error(c, "add: --image PATH|URL is required");
	if ((a->ro.force || a->ro.force_update) && !a->replaces)
		vdi_cli_usage_error(c, "add: --force and --force-update go with --replaces");
	if (a->replaces && strcmp(a->replaces, argv[optind]) == 0)
		vdi_cli_usage_error(c, "add: a master cannot replace itself");
	if ((rc = vdi_cli_open(c)) != 0)
		return rc;
	a->io.spec.name = argv[optind];
	fill_opts(c);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	rc = vdi_import(c->db, &a->io, &m, &takeover, &err);
	vdi_cli_progress(c, NULL, -1, 0, false);
	if (rc < 0)
		return vdi_cli_fail(c, &err);
	if (takeover)
		vdi_cli_info(c, "took over the import of %s left by a process that died", a->io.spec.name);
	if (c->dry_run) {
		vdi_cli_info(c, "would import %s into pool %s", a->io.spec.source, a->io.spec.pool);
		if (a->replaces)
			vdi_cli_info(c, "would replace master %s with %s", a->replaces, a->io.spec.name);
		vdi_master_clear(&m);
		return 0;
	}
	/* Imported and verified first: a replace that is refused leaves the new master, active, to use or rm. */
	if (a->replaces) {
		int64_t stale;
		rc = replace(c, a->replaces, a->io.spec.name, &stale);
		vdi_master_clear(&m);
		if (rc != 0 || vdi_master_get(c->db, a->io.spec.name, &m, &err) < 0)
			return rc != 0 ? rc : vdi_cli_fail(c, &err);
	}
	if (!c->quiet) {
		vdi_out_list_begin(c->out);
		put_master(c->out, &m, false);
		vdi_out_list_end(c->out);
	}
	vdi_master_clear(&m);
	return 0;
}

/* NEW replaces OLD (vdi_master_replace), said in one line. */
static int
replace(struct vdi_cli *c, const char *old, const char *new, int64_t *stale)
{
	struct args *a = c->args;
	struct vdi_err err = { 0 };

	if (vdi_master_replace(c->db, old, new, &a->ro, stale, &err) < 0)
		return vdi_cli_fail(c, &err);
	vdi_cli_info(c, "%s master %s with %s: %lld user VM%s to update (vm-copy --update --all)%s",
		     c->dry_run ? "would replace" : "replaced", old, new, (long long)*stale, *stale == 1 ? "" : "s",
		     a->ro.force_update ? "; their users wait for it" : "");
	return 0;
}

static int
cmd_update(struct vdi_cli *c, int argc, char **argv)
{
	int64_t stale;
	int rc;

	if (argc - optind != 2)
		vdi_cli_usage_error(c, "update: expected OLD NEW (the master replaced, the one replacing it)");
	check_name(c, "master", argv[optind]);
	check_name(c, "master", argv[optind + 1]);
	if (strcmp(argv[optind], argv[optind + 1]) == 0)
		vdi_cli_usage_error(c, "update: a master cannot replace itself");
	if ((rc = vdi_cli_open(c)) != 0)
		return rc;
	return replace(c, argv[optind], argv[optind + 1], &stale);
}

/* list's table: its columns (an empty list keeps its header), and those a narrow terminal drops first. */
static const char *const table_cols[] = { "name", "state", "os", "apps", "format", "virtual_size", "disk", "mem",
					  "vcpus", "uservms", "profile", "prepare", "home", "replaced_by", NULL };
static const char *const table_drop[] = { "format", "virtual_size", "prepare", "profile", "home", "disk",
					  "uservms", "replaced_by", NULL };

static int
cmd_list(struct vdi_cli *c, int argc, char **argv)
{
	struct vdi_err err = { 0 };
	struct vdi_master *ms;
	size_t n;
	int rc;

	(void)argv;
	if (argc - optind != 0)
		vdi_cli_usage_error(c, "list: too many arguments");
	if ((rc = vdi_cli_open(c)) != 0)
		return rc;
	if (vdi_master_list(c->db, &ms, &n, &err) < 0)
		return vdi_cli_fail(c, &err);
	vdi_out_table_columns(c->out, table_cols, table_drop);
	vdi_out_list_begin(c->out);
	for (size_t i = 0; i < n; i++)
		put_master(c->out, &ms[i], false);
	vdi_out_list_end(c->out);
	vdi_masters_free(ms, n);
	return 0;
}

static int
cmd_show(struct vdi_cli *c, int argc, char **argv)
{
	struct vdi_err err = { 0 };
	struct vdi_master m;
	int rc;

	if (argc - optind != 1)
		vdi_cli_usage_error(c, "show: expected one master name");
	check_name(c, "master", argv[optind]);
	if ((rc = vdi_cli_open(c)) != 0)
		return rc;
	if (vdi_master_get(c->db, argv[optind], &m, &err) < 0)
		return vdi_cli_fail(c, &err);
	put_master(c->out, &m, true);
	vdi_master_clear(&m);
	return 0;
}

static int
each_name(struct vdi_cli *c, int argc, char **argv, const char *cmd, bool rm)
{
	struct args *a = c->args;
	struct vdi_err err;
	char **names;
	size_t n;
	int rc, code = 0;

	vdi_cli_args(c, argc, argv, &names, &n);
	if (n == 0)
		vdi_cli_usage_error(c, "%s: missing master name", cmd);
	for (size_t i = 0; i < n; i++)
		check_name(c, "master", names[i]);
	if ((rc = vdi_cli_open(c)) != 0) {
		vdi_cli_args_free(names, n);
		return rc;
	}
	fill_opts(c);
	for (size_t i = 0; i < n; i++) {
		vdi_err_reset(&err);
		rc = rm ? vdi_import_rm(c->db, names[i], &a->io, &err) : vdi_master_retire(c->db, names[i], &err);
		if (rc < 0)
			code = vdi_code_worst(code, vdi_cli_fail(c, &err));
		else
			vdi_cli_info(c, "%s master %s", c->dry_run ? (rm ? "would remove" : "would retire") :
				     (rm ? "removed" : "retired"), names[i]);
	}
	vdi_cli_args_free(names, n);
	return code;
}

static int
cmd_retire(struct vdi_cli *c, int argc, char **argv)
{
	return each_name(c, argc, argv, "retire", false);
}

static int
cmd_rm(struct vdi_cli *c, int argc, char **argv)
{
	return each_name(c, argc, argv, "rm", true);
}

static const int add_opts[] = { OPT_IMAGE, OPT_OS, OPT_APP, OPT_SHA256, OPT_POOL, OPT_HOST, OPT_MEM,
				OPT_VCPUS, OPT_DISK, OPT_PROFILE, OPT_FIRMWARE, OPT_DISK_BUS, OPT_NIC,
				OPT_VIDEO, OPT_PREPARE, OPT_RDP, OPT_HOME, OPT_REPLACES, OPT_FORCE,
				OPT_FORCE_UPDATE, 0 };
static const int update_opts[] = { OPT_FORCE, OPT_FORCE_UPDATE, 0 };
static const int rm_opts[] = { OPT_HOST, 0 };
static const int no_opts[] = { 0 };

static const struct vdi_cli_cmd cmds[] = {
	{ "add", cmd_add, add_opts, true },
	{ "update", cmd_update, update_opts, true },
	{ "list", cmd_list, no_opts, false },
	{ "show", cmd_show, no_opts, false },
	{ "retire", cmd_retire, no_opts, true },
	{ "rm", cmd_rm, rm_opts, true },
	{ NULL, NULL, NULL, false },
};

int
main(int argc, char **argv)
{
	struct vdi_cli c;
	struct args a = { .io = { .spec = { .mem = -1, .vcpus = -1, .disk = -1 } } };
	int rc;

	vdi_cli_init(&c, "vm-master", usage);
	vdi_cli_set_help(&c, help, true);
	c.args = &a;
	rc = vdi_cli_dispatch(&c, argc, argv, opts, cmds, parse_opt);
	vdi_conns_free(a.io.conns);
	free(a.apps);
	free(a.sha256);
	return vdi_cli_finish(&c, rc);
}
