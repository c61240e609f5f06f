/*
 * vm-copy - make user VMs from masters: a thin qcow2 overlay per user,
 * sized as the user asked, with the user's environment as a cloud-init
 * seed.  The paper's VMCM.  Also removes user VMs (--rm).
 *
 * Many users go through one libvirt connection; a failure for one user is
 * reported and the others go on; the exit status is the worst one seen.
 */
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "host.h"
#include "master.h"
#include "names.h"
#include "parse.h"
#include "seed.h"
#include "uservm.h"
#include "virt.h"
#include "strv.h"

static const char usage[] =
	"usage: vm-copy [--db PATH] [-o table|tsv|json] [-q] [-v] [-n]\n"
	"               [--master NAME | --os OS [--app APP]...] [--mem SIZE] [--vcpus N]\n"
	"               [--disk SIZE] [--tag TAG]... [--expires DATE | --ttl DURATION]\n"
	"               [--host HOST] [USER...]\n"
	"       vm-copy --csv [options as above] < REQUESTS.csv\n"
	"       vm-copy --rm [--force] [--host HOST] [-n] [USER...]\n"
	"       vm-copy -h | --help | --version\n"
	"\n"
	"Users are read one per line from standard input when none are given.  CSV lines\n"
	"are user,os,apps,mem,vcpus,disk (apps separated by ';'; empty: the defaults).\n"
	"Exit: 0 ok, 1 failure, 2 usage, 3 no such master or user, 4 no host sees the pool,\n"
	"5 the user has a user VM (or a session), 75 temporary.  See vm-copy(1).\n";

enum {
	OPT_MASTER = VDI_OPT_FIRST_PRIVATE,
	OPT_OS,
	OPT_APP,
	OPT_MEM,
	OPT_VCPUS,
	OPT_DISK,
	OPT_TAG,
	OPT_EXPIRES,
	OPT_TTL,
	OPT_HOST,
	OPT_CSV,
	OPT_RM,
	OPT_FORCE,
};

static const struct option opts[] = {
	VDI_CLI_OPTS,
	VDI_CLI_DRYRUN,
	{ "master", required_argument, NULL, OPT_MASTER },
	{ "os", required_argument, NULL, OPT_OS },
	{ "app", required_argument, NULL, OPT_APP },
	{ "mem", required_argument, NULL, OPT_MEM },
	{ "vcpus", required_argument, NULL, OPT_VCPUS },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "tag", required_argument, NULL, OPT_TAG },
	{ "expires", required_argument, NULL, OPT_EXPIRES },
	{ "ttl", required_argument, NULL, OPT_TTL },
	{ "host", required_argument, NULL, OPT_HOST },
	{ "csv", no_argument, NULL, OPT_CSV },
	{ "rm", no_argument, NULL, OPT_RM },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ NULL, 0, NULL, 0 },
};

/* One request: what the command line or a CSV line asks for one user. */
struct req {
	char *user;
	const char *master; /* by name, or chosen by os and apps */
	const char *os;
	char **apps;
	size_t napps;
	int64_t mem, vcpus, disk; /* -1: the master's */
};

static struct {
	const char *master, *os, *host;
	char **apps, **tags;
	size_t napps, ntags;
	int64_t mem, vcpus, disk, expires;
	bool csv, rm, force;
} a = { .mem = -1, .vcpus = -1, .disk = -1 };

static volatile sig_atomic_t interrupted;

static void
on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* Parsers shared by options and CSV fields: 0 or -1 with err. */
static int
parse_mem(const char *s, int64_t *v, struct vdi_err *err)
{
	uint64_t u;

	if (vdi_size_parse(s, &u, err) < 0)
		return vdi_err_prefix(err, "mem");
	if (u < (16ULL << 20) || u > (16ULL << 40))
		return vdi_err_set(err, VDI_EUSAGE, "mem: '%s' is out of range (16M to 16T)", s);
	*v = (int64_t)u;
	return 0;
}

static int
parse_disk(const char *s, int64_t *v, struct vdi_err *err)
{
	uint64_t u;

	if (vdi_size_parse(s, &u, err) < 0)
		return vdi_err_prefix(err, "disk");
	if (u < (1ULL << 20) || u > (1ULL << 50))
		return vdi_err_set(err, VDI_EUSAGE, "disk: '%s' is out of range (1M to 1P)", s);
	*v = (int64_t)u;
	return 0;
}

static int
parse_vcpus(const char *s, int64_t *v, struct vdi_err *err)
{
	if (vdi_int_parse(s, 1, 1024, v, err) < 0)
		return vdi_err_prefix(err, "vcpus");
	return 0;
}

/* --expires: YYYY-MM-DD (midnight UTC) or YYYY-MM-DDTHH:MM[:SS]Z, in the future. */
static int
parse_expires(const char *s, int64_t *t, struct vdi_err *err)
{
	static const char *const fmts[] = { "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%MZ", "%Y-%m-%d", NULL };
	struct tm tm;

	for (int i = 0; fmts[i]; i++) {
		const char *end;
		memset(&tm, 0, sizeof(tm));
		end = strptime(s, fmts[i], &tm);
		if (end && !*end) {
			*t = (int64_t)timegm(&tm);
			if (*t <= (int64_t)time(NULL))
				return vdi_err_set(err, VDI_EUSAGE, "--expires: '%s' is in the past", s);
			return 0;
		}
	}
	return vdi_err_set(err, VDI_EUSAGE, "--expires: '%s': expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ", s);
}

static void
parse_opt(struct vdi_cli *c, int o, const char *arg)
{
	struct vdi_err err = { 0 };
	int64_t ms;

	switch (o) {
	case OPT_MASTER:
	case OPT_OS:
	case OPT_APP:
	case OPT_TAG:
	case OPT_HOST: {
		static const char *const kinds[] = { "master", "os", "app", "tag", "host" };
		int k = o == OPT_MASTER ? 0 : o == OPT_OS ? 1 : o == OPT_APP ? 2 : o == OPT_TAG ? 3 : 4;
		if (vdi_name_check(kinds[k], arg, &err) < 0)
			vdi_cli_usage_error(c, "%s", err.msg);
		if (o == OPT_MASTER)
			a.master = arg;
		else if (o == OPT_OS)
			a.os = arg;
		else if (o == OPT_APP)
			vdi_strv_push(&a.apps, &a.napps, (char *)arg);
		else if (o == OPT_TAG)
			vdi_strv_push(&a.tags, &a.ntags, (char *)arg);
		else
			a.host = arg;
		break;
	}
	case OPT_MEM:
		if (parse_mem(arg, &a.mem, &err) < 0)
			vdi_cli_usage_error(c, "--%s", err.msg);
		break;
	case OPT_VCPUS:
		if (parse_vcpus(arg, &a.vcpus, &err) < 0)
			vdi_cli_usage_error(c, "--%s", err.msg);
		break;
	case OPT_DISK:
		if (parse_disk(arg, &a.disk, &err) < 0)
			vdi_cli_usage_error(c, "--%s", err.msg);
		break;
	case OPT_EXPIRES:
		if (parse_expires(arg, &a.expires, &err) < 0)
			vdi_cli_usage_error(c, "%s", err.msg);
		break;
	case OPT_TTL:
		if (vdi_duration_parse(arg, &ms, &err) < 0 || ms < 1000)
			vdi_cli_usage_error(c, "--ttl: %s", err.msg[0] ? err.msg : "at least 1s");
		a.expires = (int64_t)time(NULL) + ms / 1000;
		break;
	case OPT_CSV:
		a.csv = true;
		break;
	case OPT_RM:
		a.rm = true;
		break;
	case OPT_FORCE:
		a.force = true;
		break;
	}
}

/* ---- making one user VM ---- */

struct run {
	struct vdi_cli *c;
	virConnectPtr conn;
	char *host, *pool;
	bool refreshed;
	int done, total;
};

/* The batch's one connection, made on first need. */
static int
connect_for(struct run *r, const char *pool, struct vdi_err *err)
{
	char *uri = NULL;

	if (r->conn) {
		if (strcmp(r->pool, pool) == 0)
			return 0;
		return vdi_err_set(err, VDI_EUSAGE, "masters in different pools (%s, %s) in one batch", r->pool, pool);
	}
	free(r->host);
	r->host = NULL;
	if (vdi_host_for_pool(r->c->db, pool, a.host, &r->host, &uri, err) < 0)
		return -1;
	r->conn = vdi_virt_connect(uri, r->c->cfg.poll_timeout, err);
	free(uri);
	if (!r->conn)
		return vdi_err_prefix(err, "host %s", r->host);
	r->pool = strdup(pool);
	return 0;
}

static int
upload_file(virConnectPtr conn, const char *pool, const char *name, const char *path, struct vdi_err *err)
{
	struct vdi_volume_spec spec = { .name = name, .format = "raw" };
	struct vdi_upload *up;
	struct stat sb;
	char buf[65536];
	size_t n;
	FILE *fp;

	fp = fopen(path, "re");
	if (!fp || fstat(fileno(fp), &sb) < 0) {
		if (fp)
			fclose(fp);
		return vdi_err_set(err, VDI_EFAIL, "cannot read %s", path);
	}
	spec.capacity = sb.st_size;
	up = vdi_upload_begin(conn, pool, &spec, err);
	if (!up) {
		fclose(fp);
		return -1;
	}
	while ((n = fread(buf, 1, sizeof(buf), fp)) > 0) {
		if (vdi_upload_send(up, buf, n, err) < 0) {
			vdi_upload_abort(up);
			fclose(fp);
			return -1;
		}
	}
	fclose(fp);
	return vdi_upload_finish(up, err);
}

static int
copy_one(struct run *r, const struct req *q, struct vdi_err *err)
{
	struct vdi_cli *c = r->c;
	struct vdi_master m = { 0 };
	struct vdi_uservm u = { 0 };
	struct vdi_seed seed = { 0 };
	char *mname = NULL, *mpath = NULL, *iso = NULL, *tmpdir = NULL;
	char disk[128], seedvol[128], host[64], detail[256];
	char **extra = NULL;
	size_t nextra = 0;
	int64_t id = 0;
	bool takeover, claimed = false;
	int ret = -1;

	if (vdi_name_check("user", q->user, err) < 0)
		return -1;
	if (q->master) {
		mname = strdup(q->master);
	} else if (q->os) {
		if (vdi_master_choose(c->db, q->os, q->apps, q->napps, &mname, err) < 0)
			return -1;
	} else {
		return vdi_err_set(err, VDI_EUSAGE, "no master: give --master, or --os (and --app)");
	}
	if (vdi_master_get(c->db, mname, &m, err) < 0)
		goto out;
	if (strcmp(m.state, "active") != 0) {
		vdi_err_set(err, VDI_ECONFLICT, "master '%s' is %s: no new copies", m.name, m.state);
		goto out;
	}
	/* The requested apps this master lacks go in the seed, for cloud-init to install. */
	for (size_t i = 0; i < q->napps; i++) {
		bool has = false;
		for (size_t k = 0; k < m.napps; k++)
			has |= strcmp(q->apps[i], m.apps[k]) == 0;
		if (!has)
			vdi_strv_push(&extra, &nextra, q->apps[i]);
	}
	u.user = q->user;
	u.master_id = m.id;
	u.pool = m.pool;
	u.mem = q->mem > 0 ? q->mem : m.mem;
	u.vcpus = q->vcpus > 0 ? q->vcpus : m.vcpus;
	u.disk = q->disk > 0 ? q->disk : m.disk;
	if (u.disk < m.virtual_size) {
		vdi_err_set(err, VDI_EUSAGE, "disk %lld is smaller than master '%s' (%lld)", (long long)u.disk,
			    m.name, (long long)m.virtual_size);
		goto out;
	}
	u.expires = a.expires;
	u.tags = a.tags;
	u.ntags = a.ntags;
	u.apps = extra;
	u.napps = nextra;
	vdi_seed_hostname(q->user, host, sizeof(host));
	u.hostname = host;
	vdi_uservm_volumes(q->user, disk, sizeof(disk), seedvol, sizeof(seedvol));
	if (c->dry_run) {
		struct vdi_uservm old;
		struct vdi_err e = { 0 };
		if (vdi_uservm_get(c->db, q->user, &old, &e) == 0) {
			vdi_uservm_clear(&old);
			vdi_err_set(err, VDI_ECONFLICT, "user '%s' has a user VM already", q->user);
			goto out;
		}
		vdi_cli_info(c, "would copy master %s for %s as %s (%lld bytes, %lld vCPUs)", m.name, q->user,
			     disk, (long long)u.disk, (long long)u.vcpus);
		ret = 0;
		goto out;
	}
	/* Rule 2: the claim is committed before any volume is made. */
	if (vdi_uservm_claim(c->db, &u, &id, &takeover, err) < 0)
		goto out;
	claimed = true;
	if (connect_for(r, m.pool, err) < 0)
		goto out;
	/* Our claim is held: volumes of these names are leftovers of a copy that died. */
	if (vdi_vol_delete(r->conn, m.pool, disk, err) < 0 || vdi_vol_delete(r->conn, m.pool, seedvol, err) < 0)
		goto out;
	mpath = vdi_vol_path(r->conn, m.pool, m.volume, err);
	if (!mpath && err->code == VDI_ENOTFOUND && !r->refreshed) {
		/* Uploaded through another host: this one's view of the pool is stale. */
		r->refreshed = true;
		vdi_err_clear(err);
		if (vdi_pool_refresh(r->conn, m.pool, err) == 0)
			mpath = vdi_vol_path(r->conn, m.pool, m.volume, err);
	}
	if (!mpath) {
		vdi_err_prefix(err, "master '%s'", m.name);
		goto out;
	}
	{
		struct vdi_volume_spec spec = { .name = disk, .capacity = u.disk, .format = "qcow2",
						.backing_path = mpath, .backing_format = m.format };
		if (vdi_vol_create(r->conn, m.pool, &spec, err) < 0)
			goto out;
	}
	seed.uservm_id = id;
	seed.user = q->user;
	seed.hostname = host;
	seed.packages = extra;
	seed.npackages = nextra;
	if (vdi_seed_build(&seed, &iso, &tmpdir, err) < 0 || upload_file(r->conn, m.pool, seedvol, iso, err) < 0)
		goto out_vols;
	if (interrupted) {
		vdi_err_set(err, VDI_EFAIL, "interrupted");
		goto out_vols;
	}
	snprintf(detail, sizeof(detail), "master=%s disk=%lld mem=%lld vcpus=%lld", m.name, (long long)u.disk,
		 (long long)u.mem, (long long)u.vcpus);
	if (vdi_uservm_ready(c->db, id, detail, err) < 0)
		goto out_vols;
	claimed = false;
	if (!c->quiet) {
		vdi_out_obj_begin(c->out);
		vdi_out_str(c->out, "user", q->user);
		vdi_out_str(c->out, "master", m.name);
		vdi_out_size(c->out, "disk", u.disk);
		vdi_out_size(c->out, "mem", u.mem);
		vdi_out_int(c->out, "vcpus", u.vcpus);
		vdi_out_str(c->out, "volume", disk);
		vdi_out_strv(c->out, "apps_added", extra, nextra);
		vdi_out_obj_end(c->out);
	}
	ret = 0;
	goto out;
out_vols:
	vdi_vol_delete(r->conn, m.pool, disk, NULL);
	vdi_vol_delete(r->conn, m.pool, seedvol, NULL);
out:
	if (claimed) {
		struct vdi_err e2 = { 0 };
		if (vdi_uservm_unclaim(c->db, id, &e2) < 0)
			vdi_cli_warn(c, "%s", e2.msg);
	}
	vdi_seed_cleanup(iso, tmpdir);
	free(mpath);
	free(extra);
	free(mname);
	vdi_master_clear(&m);
	return ret;
}

static int
rm_one(struct run *r, const char *user, struct vdi_err *err)
{
	struct vdi_uservm u;
	int ret = -1;

	if (vdi_name_check("user", user, err) < 0)
		return -1;
	if (r->c->dry_run) {
		if (vdi_uservm_get(r->c->db, user, &u, err) < 0)
			return -1;
		if (u.session_id && !a.force)
			vdi_err_set(err, VDI_ECONFLICT, "user '%s' has session %lld (%s)", user,
				    (long long)u.session_id, u.session_state);
		else
			vdi_cli_info(r->c, "would remove the user VM of %s (%s, %s)", user, u.volume, u.seed);
		ret = u.session_id && !a.force ? -1 : 0;
		vdi_uservm_clear(&u);
		return ret;
	}
	if (vdi_uservm_rm_begin(r->c->db, user, a.force, &u, err) < 0)
		return -1;
	/* Volumes first: a crash after them leaves a row that rm simply removes next time. */
	if (connect_for(r, u.pool, err) < 0 || vdi_vol_delete(r->conn, u.pool, u.volume, err) < 0 ||
	    vdi_vol_delete(r->conn, u.pool, u.seed, err) < 0)
		goto out;
	ret = vdi_uservm_rm_row(r->c->db, u.id, user, err);
	if (ret == 0)
		vdi_cli_info(r->c, "removed the user VM of %s", user);
out:
	vdi_uservm_clear(&u);
	return ret;
}

/* ---- CSV: user,os,apps,mem,vcpus,disk ---- */

/* Split one CSV line into at most max fields, RFC 4180 quotes allowed; -1 if malformed. */
static int
csv_split(char *line, char **f, int max)
{
	int n = 0;
	char *p = line, *w;

	line[strcspn(line, "\r\n")] = '\0';
	for (;;) {
		if (n == max)
			return -1;
		f[n++] = w = p;
		if (*p == '"') {
			p++;
			for (;;) {
				if (!*p)
					return -1;
				if (*p == '"' && p[1] == '"') {
					*w++ = '"';
					p += 2;
				} else if (*p == '"') {
					p++;
					break;
				} else {
					*w++ = *p++;
				}
			}
			if (*p && *p != ',')
				return -1;
		} else {
			while (*p && *p != ',')
				*w++ = *p++;
		}
		if (!*p) {
			*w = '\0';
			return n;
		}
		*w = '\0';
		p++;
	}
}

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Fill q from a CSV line; -1 with err (exit 2) when the line is bad. */
static int
csv_req(char *line, struct req *q, struct vdi_err *err)
{
	char *f[6] = { 0 };
	int n = csv_split(line, f, 6);

	if (n < 1)
		return vdi_err_set(err, VDI_EUSAGE, "malformed CSV (quotes, or more than 6 fields)");
	for (int i = 0; i < n; i++)
		f[i] = trim(f[i]);
	q->user = f[0];
	if (vdi_name_check("user", q->user, err) < 0)
		return -1;
	if (n > 1 && *f[1]) {
		if (vdi_name_check("os", f[1], err) < 0)
			return -1;
		q->os = f[1];
		q->master = NULL;
	}
	if (n > 2 && *f[2]) {
		for (char *tok, *save = NULL, *s = f[2]; (tok = strtok_r(s, ";", &save)); s = NULL) {
			tok = trim(tok);
			if (!*tok)
				continue;
			if (vdi_name_check("app", tok, err) < 0)
				return -1;
			vdi_strv_push(&q->apps, &q->napps, tok);
		}
	}
	if (n > 3 && *f[3] && parse_mem(f[3], &q->mem, err) < 0)
		return -1;
	if (n > 4 && *f[4] && parse_vcpus(f[4], &q->vcpus, err) < 0)
		return -1;
	if (n > 5 && *f[5] && parse_disk(f[5], &q->disk, err) < 0)
		return -1;
	if (!q->os && !q->master)
		return vdi_err_set(err, VDI_EUSAGE, "no os given and no --master");
	return 0;
}

static struct req
base_req(void)
{
	struct req q = { 0 };

	q.master = a.master;
	q.os = a.os;
	q.mem = a.mem;
	q.vcpus = a.vcpus;
	q.disk = a.disk;
	return q;
}

static int
do_one(struct run *r, struct req *q)
{
	struct vdi_err err = { 0 };
	int rc;

	if (interrupted)
		return vdi_err_set(&err, VDI_EFAIL, "interrupted"), vdi_cli_fail(r->c, &err);
	rc = a.rm ? rm_one(r, q->user, &err) : copy_one(r, q, &err);
	r->done++;
	vdi_cli_progress(r->c, a.rm ? "removing" : "copying", r->done, r->total, false);
	if (rc == 0)
		return 0;
	vdi_cli_progress(r->c, NULL, -1, 0, false);
	if (strncmp(err.msg, "user", 4) != 0 && !strstr(err.msg, q->user))
		vdi_err_prefix(&err, "%s", q->user);
	return vdi_cli_fail(r->c, &err);
}

static int
run_csv(struct run *r)
{
	char *line = NULL;
	size_t cap = 0;
	int lineno = 0, code = 0;

	while (getline(&line, &cap, stdin) > 0) {
		struct vdi_err err = { 0 };
		struct req q = base_req();
		char *copy;

		lineno++;
		copy = strdup(line);
		if (!copy)
			abort();
		if (!*trim(copy) || *trim(copy) == '#' || (lineno == 1 && strncmp(trim(copy), "user,", 5) == 0)) {
			free(copy);
			continue;
		}
		q.apps = NULL;
		q.napps = 0;
		for (size_t i = 0; i < a.napps; i++)
			vdi_strv_push(&q.apps, &q.napps, a.apps[i]);
		if (csv_req(copy, &q, &err) < 0) {
			vdi_err_prefix(&err, "line %d", lineno);
			code = vdi_code_worst(code, vdi_cli_fail(r->c, &err));
		} else {
			code = vdi_code_worst(code, do_one(r, &q));
		}
		free(q.apps);
		free(copy);
	}
	free(line);
	return code;
}

int
main(int argc, char **argv)
{
	struct vdi_cli c;
	struct run r = { 0 };
	char **users = NULL;
	size_t n = 0;
	int o, rc, code = 0;

	vdi_cli_init(&c, "vm-copy", usage);
	while ((o = getopt_long(argc, argv, VDI_CLI_SHORT "n", opts, NULL)) != -1)
		if (!vdi_cli_option(&c, o, optarg))
			parse_opt(&c, o, optarg);
	if (a.master && a.os)
		vdi_cli_usage_error(&c, "--master and --os exclude each other");
	if (a.napps && !a.os && !a.master && !a.csv)
		vdi_cli_usage_error(&c, "--app needs --os (or --master)");
	if (a.rm && (a.csv || a.master || a.os || a.napps || a.mem > 0 || a.vcpus > 0 || a.disk > 0 || a.ntags))
		vdi_cli_usage_error(&c, "--rm takes only users (and --force, --host, -n)");
	if (a.force && !a.rm)
		vdi_cli_usage_error(&c, "--force goes with --rm");
	if (!a.rm && !a.csv && !a.master && !a.os)
		vdi_cli_usage_error(&c, "give --master NAME, or --os OS (and --app), or --csv");
	if (a.csv && optind < argc)
		vdi_cli_usage_error(&c, "--csv reads requests from standard input, not arguments");
	if (!a.csv) {
		vdi_cli_args(&c, argc, argv, &users, &n);
		if (n == 0)
			vdi_cli_usage_error(&c, "no users given (as arguments or on standard input)");
	}
	if ((rc = vdi_cli_open(&c)) != 0) {
		vdi_cli_args_free(users, n);
		return vdi_cli_finish(&c, rc);
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	r.c = &c;
	r.total = (int)n;
	if (!a.rm)
		vdi_out_list_begin(c.out);
	if (a.csv) {
		code = run_csv(&r);
	} else {
		for (size_t i = 0; i < n; i++) {
			struct req q = base_req();
			q.user = users[i];
			q.apps = a.apps;
			q.napps = a.napps;
			code = vdi_code_worst(code, do_one(&r, &q));
		}
	}
	vdi_cli_progress(&c, NULL, -1, 0, false);
	if (!a.rm)
		vdi_out_list_end(c.out);
	if (r.conn)
		virConnectClose(r.conn);
	free(r.host);
	free(r.pool);
	vdi_cli_args_free(users, n);
	free(a.apps);
	free(a.tags);
	return vdi_cli_finish(&c, code);
}
