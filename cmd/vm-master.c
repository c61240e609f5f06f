/*
 * vm-master - masters (golden images): import with libcurl into a libvirt
 * storage pool, list, show, retire, remove.  The paper's VMMS.
 *
 * An import streams the image from its source straight into a new volume
 * as a libvirt stream (no temporary copy), hashing it on the way; only a
 * complete, verified image is registered.  See master.h for the claim
 * that makes a killed import recoverable.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "host.h"
#include "image.h"
#include "master.h"
#include "names.h"
#include "parse.h"
#include "virt.h"
#include "strv.h"

static const char usage[] =
	"usage: vm-master [--db PATH] [-o table|tsv|json] [-q] [-v] COMMAND [ARGS]\n"
	"       vm-master add NAME --image PATH|URL [--os OS] [--app APP]... [--sha256 HEX]\n"
	"                 [--pool POOL] [--host HOST] [--mem SIZE] [--vcpus N] [--disk SIZE] [-n]\n"
	"       vm-master list\n"
	"       vm-master show NAME\n"
	"       vm-master retire [-n] NAME...\n"
	"       vm-master rm [--host HOST] [-n] NAME...\n"
	"       vm-master -h | --help | --version\n"
	"\n"
	"Images: qcow2 or raw, from a path or an http, https or file URL (TLS verified).\n"
	"Exit: 0 ok, 1 failure, 2 usage, 3 not found, 4 no host sees the pool, 5 conflict,\n"
	"75 temporary (host or server unreachable).  See vm-master(1).\n";

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
	{ NULL, 0, NULL, 0 },
};

static struct {
	const char *image, *os, *pool, *host;
	char *sha256;
	char **apps;
	size_t napps;
	int64_t mem, vcpus, disk;
} a = { .mem = -1, .vcpus = -1, .disk = -1 };

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

static int64_t
size_opt(struct vdi_cli *c, const char *opt, const char *arg, uint64_t min, uint64_t max)
{
	struct vdi_err err = { 0 };
	uint64_t v;

	if (vdi_size_parse(arg, &v, &err) < 0)
		vdi_cli_usage_error(c, "--%s: %s", opt, err.msg);
	if (v < min || v > max)
		vdi_cli_usage_error(c, "--%s: '%s' is out of range", opt, arg);
	return (int64_t)v;
}

static void
parse_opt(struct vdi_cli *c, int o, const char *arg)
{
	struct vdi_err err = { 0 };

	switch (o) {
	case OPT_IMAGE:
		a.image = arg;
		break;
	case OPT_OS:
		check_name(c, "os", arg);
		a.os = arg;
		break;
	case OPT_APP:
		check_name(c, "app", arg);
		vdi_strv_push(&a.apps, &a.napps, (char *)arg);
		break;
	case OPT_SHA256:
		free(a.sha256);
		a.sha256 = strdup(arg);
		if (!a.sha256 || vdi_sha256_check(a.sha256, &err) < 0)
			vdi_cli_usage_error(c, "--sha256: %s", err.msg);
		break;
	case OPT_POOL:
		check_name(c, "pool", arg);
		a.pool = arg;
		break;
	case OPT_HOST:
		check_name(c, "host", arg);
		a.host = arg;
		break;
	case OPT_MEM:
		a.mem = size_opt(c, "mem", arg, 16ULL << 20, 16ULL << 40);
		break;
	case OPT_VCPUS: {
		int64_t n;
		if (vdi_int_parse(arg, 1, 1024, &n, &err) < 0)
			vdi_cli_usage_error(c, "--vcpus: %s", err.msg);
		a.vcpus = n;
		break;
	}
	case OPT_DISK:
		a.disk = size_opt(c, "disk", arg, 1ULL << 20, 1ULL << 50);
		break;
	}
}

/* ---- import: the sink that streams fetched bytes into a new volume ---- */

struct sink {
	struct vdi_cli *c;
	virConnectPtr conn;
	const char *pool, *volume, *name;
	struct vdi_upload *up;
};

static int
sink_start(void *ctx, const struct vdi_image_info *info, int64_t total, struct vdi_err *err)
{
	struct sink *s = ctx;
	struct vdi_volume_spec spec = {
		.name = s->volume,
		.format = info->format,
		/* qcow2: its own virtual size; raw: the bytes to come (libvirt refreshes it after). */
		.capacity = strcmp(info->format, "qcow2") == 0 ? info->virtual_size : (total > 0 ? total : 0),
	};

	if (a.disk > 0 && info->virtual_size > a.disk)
		return vdi_err_set(err, VDI_EUSAGE, "--disk %lld is smaller than the image's virtual size %lld",
				   (long long)a.disk, (long long)info->virtual_size);
	s->up = vdi_upload_begin(s->conn, s->pool, &spec, err);
	return s->up ? 0 : -1;
}

static int
sink_data(void *ctx, const void *buf, size_t len, struct vdi_err *err)
{
	struct sink *s = ctx;

	if (interrupted)
		return vdi_err_set(err, VDI_EFAIL, "interrupted");
	return vdi_upload_send(s->up, buf, len, err);
}

static void
sink_progress(void *ctx, int64_t done, int64_t total)
{
	struct sink *s = ctx;

	vdi_cli_progress(s->c, s->name, done, total, true);
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
	if (full || vdi_out_fmt(o) != VDI_FMT_TABLE) {
		vdi_out_str(o, "pool", m->pool);
		vdi_out_str(o, "volume", m->volume);
		vdi_out_str(o, "sha256", m->sha256);
		vdi_out_str(o, "source", m->source);
		vdi_out_time(o, "created", m->created);
	}
	vdi_out_obj_end(o);
}

static int
cmd_add(struct vdi_cli *c, int argc, char **argv)
{
	struct vdi_err err = { 0 };
	struct vdi_master m = { 0 };
	struct vdi_fetch_result res;
	struct sink s = { .c = c };
	char vol[128], *hname = NULL, *huri = NULL;
	int64_t id = 0;
	int64_t cap = 0, alloc = 0;
	bool takeover = false, claimed = false;
	int rc, code = 0;

	if (argc - optind != 1)
		vdi_cli_usage_error(c, "add: expected one master name");
	check_name(c, "master", argv[optind]);
	if (!a.image)
		vdi_cli_usage_error(c, "add: --image PATH|URL is required");
	if ((rc = vdi_cli_open(c)) != 0)
		return rc;
	m.name = argv[optind];
	m.os = (char *)a.os;
	m.pool = (char *)(a.pool ? a.pool : c->cfg.pool);
	m.source = (char *)a.image;
	m.mem = a.mem > 0 ? a.mem : 1LL << 30;
	m.vcpus = a.vcpus > 0 ? a.vcpus : 1;
	m.disk = a.disk;
	m.apps = a.apps;
	m.napps = a.napps;
	vdi_master_volume(m.name, vol, sizeof(vol));
	if (vdi_host_for_pool(c->db, m.pool, a.host, &hname, &huri, &err) < 0)
		goto fail;
	if (c->dry_run) {
		struct vdi_master old;
		if (vdi_master_get(c->db, m.name, &old, &err) == 0) {
			vdi_master_clear(&old);
			vdi_err_set(&err, VDI_ECONFLICT, "master '%s' exists already", m.name);
			goto fail;
		}
		vdi_cli_info(c, "would import %s into pool %s as %s through host %s", a.image, m.pool, vol, hname);
		goto out;
	}
	/* Rule 2: the claim is committed before any byte moves. */
	if (vdi_master_claim(c->db, &m, &id, &takeover, &err) < 0)
		goto fail;
	claimed = true;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	s.conn = vdi_virt_connect(huri, c->cfg.poll_timeout, &err);
	if (!s.conn) {
		vdi_err_prefix(&err, "host %s", hname);
		goto fail;
	}
	/* A volume of this name with our claim held is a leftover of an import that died. */
	if (vdi_pool_refresh(s.conn, m.pool, &err) < 0 || vdi_vol_delete(s.conn, m.pool, vol, &err) < 0)
		goto fail;
	if (takeover)
		vdi_cli_info(c, "took over the import of %s left by a process that died", m.name);
	s.pool = m.pool;
	s.volume = vol;
	s.name = m.name;
	{
		struct vdi_fetch f = { sink_start, sink_data, sink_progress, &s, c->cfg.image_max_size };
		rc = vdi_image_fetch(a.image, &f, &res, &err);
	}
	vdi_cli_progress(c, NULL, -1, 0, false);
	if (rc < 0) {
		if (interrupted)
			vdi_err_set(&err, VDI_EFAIL, "interrupted; the partial volume was deleted");
		vdi_upload_abort(s.up);
		s.up = NULL;
		goto fail;
	}
	if (vdi_upload_finish(s.up, &err) < 0) {
		s.up = NULL;
		goto fail;
	}
	s.up = NULL;
	if (a.sha256 && strcmp(a.sha256, res.sha256) != 0) {
		vdi_err_set(&err, VDI_EFAIL, "checksum mismatch: expected %s, got %s", a.sha256, res.sha256);
		vdi_vol_delete(s.conn, m.pool, vol, NULL);
		goto fail;
	}
	/* What libvirt sees must be what the header said: the upload really landed. */
	if (vdi_vol_info(s.conn, m.pool, vol, &cap, &alloc, &err) < 0)
		goto fail_vol;
	if (cap != res.info.virtual_size) {
		vdi_err_set(&err, VDI_EFAIL, "the uploaded volume has capacity %lld, the image says %lld",
			    (long long)cap, (long long)res.info.virtual_size);
		goto fail_vol;
	}
	if (vdi_master_activate(c->db, id, res.info.format, res.info.virtual_size, res.sha256,
				a.disk > 0 ? a.disk : res.info.virtual_size, &err) < 0)
		goto fail_vol;
	claimed = false;
	{
		struct vdi_master got;
		if (vdi_master_get(c->db, m.name, &got, &err) < 0)
			goto fail;
		if (!c->quiet) {
			vdi_out_list_begin(c->out);
			put_master(c->out, &got, false);
			vdi_out_list_end(c->out);
		}
		vdi_master_clear(&got);
	}
	goto out;
fail_vol:
	vdi_vol_delete(s.conn, m.pool, vol, NULL);
fail:
	code = vdi_cli_fail(c, &err);
	if (claimed) {
		struct vdi_err e2 = { 0 };
		if (vdi_master_unclaim(c->db, id, &e2) < 0)
			vdi_cli_warn(c, "%s", e2.msg);
	}
out:
	if (s.conn)
		virConnectClose(s.conn);
	free(hname);
	free(huri);
	return code;
}

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
each_name(struct vdi_cli *c, int argc, char **argv, const char *cmd,
	  int (*fn)(struct vdi_cli *c, const char *name, struct vdi_err *err))
{
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
	for (size_t i = 0; i < n; i++) {
		vdi_err_clear(&err);
		if (fn(c, names[i], &err) < 0)
			code = vdi_code_worst(code, vdi_cli_fail(c, &err));
	}
	vdi_cli_args_free(names, n);
	return code;
}

static int
retire_one(struct vdi_cli *c, const char *name, struct vdi_err *err)
{
	struct vdi_master m;

	if (c->dry_run) {
		if (vdi_master_get(c->db, name, &m, err) < 0)
			return -1;
		vdi_cli_info(c, "would retire master %s", name);
		vdi_master_clear(&m);
		return 0;
	}
	return vdi_master_retire(c->db, name, err);
}

static int
rm_one(struct vdi_cli *c, const char *name, struct vdi_err *err)
{
	struct vdi_master m;
	virConnectPtr conn = NULL;
	char *hname = NULL, *huri = NULL;
	int ret = -1;

	if (vdi_master_rm_check(c->db, name, &m, err) < 0)
		return -1;
	if (c->dry_run) {
		vdi_cli_info(c, "would remove master %s and delete volume %s from pool %s", name, m.volume, m.pool);
		ret = 0;
		goto out;
	}
	/* The volume first: a crash after it leaves a row whose rm is simply run again. */
	if (vdi_host_for_pool(c->db, m.pool, a.host, &hname, &huri, err) < 0)
		goto out;
	conn = vdi_virt_connect(huri, c->cfg.poll_timeout, err);
	if (!conn) {
		vdi_err_prefix(err, "host %s", hname);
		goto out;
	}
	if (vdi_pool_refresh(conn, m.pool, err) < 0 || vdi_vol_delete(conn, m.pool, m.volume, err) < 0)
		goto out;
	ret = vdi_master_rm_row(c->db, m.id, name, err);
	if (ret == 0)
		vdi_cli_info(c, "removed master %s", name);
out:
	if (conn)
		virConnectClose(conn);
	free(hname);
	free(huri);
	vdi_master_clear(&m);
	return ret;
}

static int
cmd_retire(struct vdi_cli *c, int argc, char **argv)
{
	return each_name(c, argc, argv, "retire", retire_one);
}

static int
cmd_rm(struct vdi_cli *c, int argc, char **argv)
{
	return each_name(c, argc, argv, "rm", rm_one);
}

static const int add_opts[] = { OPT_IMAGE, OPT_OS, OPT_APP, OPT_SHA256, OPT_POOL, OPT_HOST, OPT_MEM,
				OPT_VCPUS, OPT_DISK, 0 };
static const int rm_opts[] = { OPT_HOST, 0 };
static const int no_opts[] = { 0 };

static const struct vdi_cli_cmd cmds[] = {
	{ "add", cmd_add, add_opts, true },
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
	int rc;

	vdi_cli_init(&c, "vm-master", usage);
	rc = vdi_cli_dispatch(&c, argc, argv, opts, cmds, parse_opt);
	free(a.apps);
	free(a.sha256);
	return vdi_cli_finish(&c, rc);
}
