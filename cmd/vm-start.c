/*
 * vm-start - run each user's session: a disposable overlay on the user VM,
 * as a transient libvirt domain on the assigned host, and say how to
 * connect.  The paper's VMCU and the start half of VSCS.
 *
 * For each user or session: claim it (state starting, committed with the
 * names of what will be made), make the overlay, start the domain, record
 * it running.  When the host fails, everything made is undone, the session
 * ends "failed" (its capacity is freed) and the next-best host is tried,
 * up to start_retries more hosts.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "assign.h"
#include "cli.h"
#include "meta.h"
#include "names.h"
#include "session.h"
#include "virt.h"
#include "xml.h"

static const char usage[] =
	"usage: vm-start [--db PATH] [-o table|tsv|json] [-q] [-v] [--vv DIR] [--show-password]\n"
	"                [-p POLICY] [USER|SESSION...]\n"
	"       vm-start -h | --help | --version\n"
	"\n"
	"Users or session ids are read one per line from standard input (first field)\n"
	"when none are given, so `vm-assign u1 u2 | vm-start` works.\n"
	"Exit: 0 ok, 1 failure, 2 usage, 3 no such user VM or session, 4 no eligible host,\n"
	"5 the session is ending or being started, 75 temporary.  See vm-start(1).\n";

enum {
	OPT_VV = VDI_OPT_FIRST_PRIVATE,
	OPT_SHOW_PASSWORD,
};

static const struct option opts[] = {
	VDI_CLI_OPTS,
	{ "policy", required_argument, NULL, 'p' },
	{ "vv", required_argument, NULL, OPT_VV },
	{ "show-password", no_argument, NULL, OPT_SHOW_PASSWORD },
	{ NULL, 0, NULL, 0 },
};

static struct {
	const char *vv;
	bool show_password;
	const char *policy;
} a;

/* VDI_TEST_STOP_AT=STEP: die by SIGKILL at a named step (for the fault tests only). */
static void
test_stop(const char *step)
{
	const char *s = getenv("VDI_TEST_STOP_AT");

	if (s && strcmp(s, step) == 0)
		raise(SIGKILL);
}

static int
make_password(char *buf, size_t len, struct vdi_err *err)
{
	static const char alpha[] = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
	unsigned char r[32];

	if (len > sizeof(r) + 1)
		len = sizeof(r) + 1;
	if (getrandom(r, len - 1, 0) != (ssize_t)(len - 1))
		return vdi_err_set(err, VDI_EFAIL, "no random bytes for a password: %s", strerror(errno));
	for (size_t i = 0; i + 1 < len; i++)
		buf[i] = alpha[r[i] % (sizeof(alpha) - 1)];
	buf[len - 1] = '\0';
	return 0;
}

static int
write_vv(const struct vdi_session *s, struct vdi_err *err)
{
	char path[4096];
	FILE *fp;
	int fd;

	snprintf(path, sizeof(path), "%s/%s.vv", a.vv, s->user);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || fchmod(fd, 0600) < 0) {
		if (fd >= 0)
			close(fd);
		return vdi_err_set(err, VDI_EFAIL, "cannot write %s: %s", path, strerror(errno));
	}
	fp = fdopen(fd, "w");
	fprintf(fp, "[virt-viewer]\ntype=spice\nhost=%s\nport=%lld\npassword=%s\ntitle=%s (session %lld on %s)\n"
		"delete-this-file=1\n", s->display_address, (long long)s->display_port, s->display_password,
		s->user, (long long)s->id, s->host);
	if (fclose(fp) != 0)
		return vdi_err_set(err, VDI_EFAIL, "cannot write %s: %s", path, strerror(errno));
	return 0;
}

static void
put(struct vdi_cli *c, const struct vdi_session *s)
{
	char url[300];

	snprintf(url, sizeof(url), "spice://%s:%lld", s->display_address, (long long)s->display_port);
	vdi_out_obj_begin(c->out);
	vdi_out_str(c->out, "user", s->user);
	vdi_out_str(c->out, "host", s->host);
	vdi_out_int(c->out, "session", s->id);
	vdi_out_str(c->out, "url", url);
	if (a.show_password)
		vdi_out_str(c->out, "password", s->display_password);
	vdi_out_obj_end(c->out);
}

/* Try to run session id on its host; on failure undo what was made. */
static int
try_start(struct vdi_cli *c, int64_t id, struct vdi_session *s, struct vdi_err *err)
{
	char domain[160], overlay[160], addr[256], pw[25];
	char *disk = NULL, *seed = NULL, *ovpath = NULL, *xml = NULL;
	virConnectPtr conn = NULL;
	int64_t cap = 0, alloc = 0, port = 0;
	struct vdi_meta meta;
	int rc, ret = -1;

	if (vdi_session_get(c->db, id, s, err) < 0)
		return -1;
	vdi_session_names(s->id, s->user, domain, sizeof(domain), overlay, sizeof(overlay));
	if (s->host_display)
		snprintf(addr, sizeof(addr), "%s", s->host_display);
	else
		vdi_uri_host(s->host_uri, addr, sizeof(addr));
	if (!addr[0])
		snprintf(addr, sizeof(addr), "127.0.0.1");
	if (make_password(pw, sizeof(pw), err) < 0)
		return -1;
	rc = vdi_session_claim_start(c->db, id, domain, overlay, addr, pw, err);
	if (rc < 0)
		return -1;
	vdi_session_clear(s);
	if (vdi_session_get(c->db, id, s, err) < 0)
		return -1;
	if (rc == 1)
		return 0; /* running already: print it again, change nothing */
	conn = vdi_virt_connect(s->host_uri, c->cfg.poll_timeout, err);
	if (!conn)
		goto fail;
	/* A domain of ours by this name is a starter's that died after starting it: adopt it. */
	if (vdi_domain_port(conn, domain, s->id, &port, err) == 0)
		goto running;
	if (err->code != VDI_ENOTFOUND)
		goto fail;
	vdi_err_clear(err);
	disk = vdi_vol_path(conn, s->pool, s->disk, err);
	if (!disk && err->code == VDI_ENOTFOUND) {
		vdi_err_clear(err);
		if (vdi_pool_refresh(conn, s->pool, err) == 0)
			disk = vdi_vol_path(conn, s->pool, s->disk, err);
	}
	if (!disk || vdi_vol_info(conn, s->pool, s->disk, &cap, &alloc, err) < 0)
		goto undo;
	seed = vdi_vol_path(conn, s->pool, s->seed, err);
	if (!seed)
		goto undo;
	if (vdi_vol_delete(conn, s->pool, overlay, err) < 0)
		goto undo;
	{
		struct vdi_volume_spec v = { .name = overlay, .capacity = cap, .format = "qcow2",
					     .backing_path = disk, .backing_format = "qcow2" };
		if (vdi_vol_create(conn, s->pool, &v, err) < 0)
			goto undo;
	}
	test_stop("overlay");
	ovpath = vdi_vol_path(conn, s->pool, overlay, err);
	if (!ovpath)
		goto undo;
	meta.session_id = s->id;
	meta.uservm_id = s->uservm_id;
	meta.user = s->user;
	{
		struct vdi_domain_spec d = { .name = domain, .type = vdi_domain_type(conn), .mem = s->mem,
					     .vcpus = s->vcpus, .disk_path = ovpath, .seed_path = seed,
					     .listen = s->display_address, .password = s->display_password,
					     .meta = &meta };
		xml = vdi_xml_domain(&d, err);
	}
	if (!xml || vdi_domain_start(conn, xml, &port, err) < 0)
		goto undo;
	test_stop("domain");
running:
	if (vdi_session_set_running(c->db, id, port, err) < 0)
		goto undo;
	vdi_session_clear(s);
	ret = vdi_session_get(c->db, id, s, err);
	goto out;
undo:
	if (conn) {
		vdi_domain_destroy(conn, domain, NULL);
		vdi_vol_delete(conn, s->pool, overlay, NULL);
	}
fail:
	ret = -1;
out:
	if (conn)
		virConnectClose(conn);
	free(disk);
	free(seed);
	free(ovpath);
	free(xml);
	return ret;
}

static int
start_one(struct vdi_cli *c, const char *arg, struct vdi_err *err)
{
	struct vdi_assign_opts ao = { 0 };
	struct vdi_session s = { 0 };
	int64_t exclude[16], id = 0;
	size_t nexclude = 0;
	uint64_t rng = (uint64_t)getpid();
	char user[VDI_NAME_MAX + 1];
	int ret = -1;

	if (vdi_policy_parse(a.policy ? a.policy : c->cfg.policy, &ao.policy) < 0)
		ao.policy = VDI_POLICY_LEAST_SESSIONS;
	ao.fallback = VDI_POLICY_LEAST_SESSIONS;
	ao.max_age = c->cfg.poll_max_age / 1000;
	ao.rng = &rng;
	if (arg[0] >= '0' && arg[0] <= '9' && strspn(arg, "0123456789") == strlen(arg)) {
		id = strtoll(arg, NULL, 10);
	} else {
		if (vdi_name_check("user", arg, err) < 0)
			return -1;
		if (vdi_session_of_user(c->db, arg, &s, err) == 0) {
			id = s.id;
			vdi_session_clear(&s);
		} else if (err->code != VDI_ENOTFOUND) {
			return -1;
		}
	}
	for (int64_t attempt = 0; attempt <= c->cfg.start_retries; attempt++) {
		if (!id) {
			struct vdi_assign_result res;
			vdi_err_clear(err);
			ao.exclude = exclude;
			ao.nexclude = nexclude;
			if (vdi_assign(c->db, arg, &ao, &res, err) < 0)
				return -1;
			id = res.session_id;
			vdi_assign_result_clear(&res);
		}
		vdi_err_clear(err);
		if (try_start(c, id, &s, err) == 0) {
			put(c, &s);
			if (a.vv && write_vv(&s, err) < 0)
				goto out;
			ret = 0;
			goto out;
		}
		if (err->code == VDI_ECONFLICT || err->code == VDI_ENOTFOUND || !s.host) {
			goto out; /* not the host's fault: another starter, an ended session */
		}
		/* The host failed it: free the capacity, and try the next-best host. */
		vdi_cli_warn(c, "session %lld of %s on %s failed: %s", (long long)id, s.user, s.host, err->msg);
		{
			struct vdi_err e2 = { 0 };
			if (vdi_session_end(c->db, id, "failed", err->msg, &e2) < 0)
				vdi_cli_warn(c, "%s", e2.msg);
		}
		if (nexclude < sizeof(exclude) / sizeof(exclude[0]))
			exclude[nexclude++] = s.host_id;
		if (arg[0] >= '0' && arg[0] <= '9') {
			/* A session given by id: its user is who gets another host. */
			snprintf(user, sizeof(user), "%s", s.user);
			arg = user;
		}
		vdi_session_clear(&s);
		id = 0;
	}
out:
	vdi_session_clear(&s);
	return ret;
}

int
main(int argc, char **argv)
{
	struct vdi_cli c;
	struct vdi_err err = { 0 };
	char **args = NULL;
	size_t n = 0;
	int o, rc, code = 0;
	enum vdi_policy pol;

	vdi_cli_init(&c, "vm-start", usage);
	while ((o = getopt_long(argc, argv, VDI_CLI_SHORT "p:", opts, NULL)) != -1) {
		if (vdi_cli_option(&c, o, optarg))
			continue;
		switch (o) {
		case 'p':
			if (vdi_policy_parse(optarg, &pol) < 0)
				vdi_cli_usage_error(&c, "-p: unknown policy '%s'", optarg);
			a.policy = optarg;
			break;
		case OPT_VV: {
			struct stat sb;
			if (stat(optarg, &sb) < 0 || !S_ISDIR(sb.st_mode))
				vdi_cli_usage_error(&c, "--vv: '%s' is not a folder", optarg);
			a.vv = optarg;
			break;
		}
		case OPT_SHOW_PASSWORD:
			a.show_password = true;
			break;
		default:
			vdi_cli_usage_error(&c, "unknown option");
		}
	}
	vdi_cli_args(&c, argc, argv, &args, &n);
	if (n == 0)
		vdi_cli_usage_error(&c, "no users or sessions given (as arguments or on standard input)");
	if ((rc = vdi_cli_open(&c)) != 0) {
		vdi_cli_args_free(args, n);
		return vdi_cli_finish(&c, rc);
	}
	vdi_out_list_begin(c.out);
	for (size_t i = 0; i < n; i++) {
		vdi_err_clear(&err);
		if (start_one(&c, args[i], &err) < 0) {
			if (!strstr(err.msg, args[i]))
				vdi_err_prefix(&err, "%s", args[i]);
			code = vdi_code_worst(code, vdi_cli_fail(&c, &err));
		}
	}
	vdi_out_list_end(c.out);
	vdi_cli_args_free(args, n);
	return vdi_cli_finish(&c, code);
}
