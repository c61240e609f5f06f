/*
 * vm-reap - end sessions and clean up after them (cron: every 2 minutes).
 * The paper's VSCS stop half, and the audit that keeps the VMDB, the
 * domains and the pool in agreement.
 *
 * Asks every host with sessions, in parallel and bounded, for its domains
 * (agentless: our <metadata>), plans with lib/reap.c, then carries out the
 * plan: a session to end is moved to stopping (committed), its domain
 * destroyed, its overlay deleted, and it is ended with its reason, which
 * frees its host's capacity.  Only one vm-reap acts at a time (a lock file
 * beside the VMDB); a second one skips.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "host.h"
#include "master.h"
#include "names.h"
#include "parse.h"
#include "reap.h"
#include "session.h"
#include "uservm.h"
#include "virt.h"
#include "strv.h"

static const char usage[] =
	"usage: vm-reap [--db PATH] [-o table|tsv|json] [-q] [-v] [-n] [--user USER]...\n"
	"               [--session ID]... [--host HOST]... [--max-age DURATION] [--expired]\n"
	"               [--orphans]\n"
	"       vm-reap -h | --help | --version\n"
	"\n"
	"Default: end sessions whose domain is gone (poweroff), and finish or undo\n"
	"sessions stuck assigned, starting or stopping past their TTL.\n"
	"Exit: 0 ok, 1 failure, 2 usage, 3 no such user, session or host, 75 a host did\n"
	"not answer (its sessions were left alone).  See vm-reap(1).\n";

enum {
	OPT_USER = VDI_OPT_FIRST_PRIVATE,
	OPT_SESSION,
	OPT_HOST,
	OPT_MAX_AGE,
	OPT_EXPIRED,
	OPT_ORPHANS,
};

static const struct option opts[] = {
	VDI_CLI_OPTS,
	VDI_CLI_DRYRUN,
	{ "user", required_argument, NULL, OPT_USER },
	{ "session", required_argument, NULL, OPT_SESSION },
	{ "host", required_argument, NULL, OPT_HOST },
	{ "max-age", required_argument, NULL, OPT_MAX_AGE },
	{ "expired", no_argument, NULL, OPT_EXPIRED },
	{ "orphans", no_argument, NULL, OPT_ORPHANS },
	{ NULL, 0, NULL, 0 },
};

/* VDI_TEST_STOP_AT=stopping: die by SIGKILL right after committing stopping (fault tests only). */
static void
test_stop(const char *step)
{
	const char *s = getenv("VDI_TEST_STOP_AT");

	if (s && strcmp(s, step) == 0)
		raise(SIGKILL);
}

struct conns {
	virConnectPtr *c;
	struct vdi_host *hs;
	size_t n;
	int64_t timeout;
};

static virConnectPtr
conn_for(struct conns *cs, size_t i, struct vdi_err *err)
{
	if (!cs->c[i]) {
		cs->c[i] = vdi_virt_connect(cs->hs[i].uri, cs->timeout, err);
		if (!cs->c[i])
			vdi_err_prefix(err, "host %s", cs->hs[i].name);
	}
	return cs->c[i];
}

static const struct vdi_session *
find_session(const struct vdi_session *ss, size_t n, int64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (ss[i].id == id)
			return &ss[i];
	return NULL;
}

/* Carry out one planned item. */
static int
act(struct vdi_cli *c, struct conns *cs, const struct vdi_reap_item *it, const struct vdi_session *s,
    struct vdi_err *err)
{
	virConnectPtr conn;
	char domain[160], overlay[160];
	int64_t port;

	switch (it->action) {
	case VDI_REAP_WAIT:
		return 0;
	case VDI_REAP_END_DB:
		return vdi_session_end(c->db, it->session, it->reason, NULL, err);
	case VDI_REAP_END:
		/* Rule 2: stopping is committed before the domain goes. */
		if (vdi_db_begin(c->db, true, err) < 0 || vdi_session_claim_stop(c->db, s->id, err) < 0 ||
		    vdi_db_commit(c->db, err) < 0) {
			vdi_db_rollback(c->db);
			return -1;
		}
		test_stop("stopping");
		if (!(conn = conn_for(cs, it->host, err)))
			return -1;
		vdi_session_names(s->id, s->user, domain, sizeof(domain), overlay, sizeof(overlay));
		if (vdi_domain_destroy(conn, s->domain ? s->domain : domain, err) < 0 ||
		    vdi_vol_delete(conn, s->pool, s->overlay ? s->overlay : overlay, err) < 0)
			return -1;
		return vdi_session_end(c->db, s->id, it->reason, NULL, err);
	case VDI_REAP_FINISH_START:
		if (!(conn = conn_for(cs, it->host, err)) ||
		    vdi_domain_port(conn, s->domain, s->id, &port, err) < 0)
			return -1;
		return vdi_session_set_running(c->db, s->id, port, err);
	case VDI_REAP_DESTROY_DOMAIN:
		if (!(conn = conn_for(cs, it->host, err)))
			return -1;
		return vdi_domain_destroy(conn, it->object, err) < 0 ? -1 : 0;
	case VDI_REAP_DELETE_OVERLAY:
		if (!(conn = conn_for(cs, it->host, err)))
			return -1;
		return vdi_vol_delete(conn, cs->hs[it->host].pool, it->object, err) < 0 ? -1 : 0;
	}
	return 0;
}

static void
put(struct vdi_cli *c, const char *action, const char *object, const char *reason)
{
	if (c->quiet && !c->dry_run)
		return;
	vdi_out_obj_begin(c->out);
	vdi_out_str(c->out, "action", action);
	vdi_out_str(c->out, "object", object);
	vdi_out_str(c->out, "reason", reason);
	vdi_out_obj_end(c->out);
}

/* --expired: user VMs past their expiry with no session: volumes, then the row. */
static int
reap_expired(struct vdi_cli *c, struct conns *cs, struct vdi_err *err)
{
	struct vdi_uservm *us;
	size_t n;
	int code = 0;
	int64_t now = (int64_t)time(NULL);

	if (vdi_uservm_list(c->db, NULL, 0, &us, &n, err) < 0)
		return vdi_cli_fail(c, err);
	for (size_t i = 0; i < n; i++) {
		struct vdi_uservm *u = &us[i];
		char obj[160];
		virConnectPtr conn = NULL;

		if (!u->expires || u->expires > now || u->session_id || strcmp(u->state, "ready") != 0)
			continue;
		snprintf(obj, sizeof(obj), "user VM of %s", u->user);
		put(c, "delete", obj, "expired");
		if (c->dry_run)
			continue;
		vdi_err_clear(err);
		for (size_t k = 0; k < cs->n && !conn; k++)
			if (strcmp(cs->hs[k].pool, u->pool) == 0 && strcmp(cs->hs[k].health, "down") != 0)
				conn = conn_for(cs, k, err);
		if (!conn) {
			if (!err->code)
				vdi_err_set(err, VDI_ETEMP, "no host that answers sees pool %s", u->pool);
		} else if (vdi_vol_delete(conn, u->pool, u->volume, err) >= 0 &&
			   vdi_vol_delete(conn, u->pool, u->seed, err) >= 0 &&
			   vdi_uservm_rm_row(c->db, u->id, u->user, err) == 0) {
			continue;
		}
		code = vdi_code_worst(code, vdi_cli_fail(c, err));
	}
	vdi_uservms_free(us, n);
	return code;
}

int
main(int argc, char **argv)
{
	struct vdi_cli c;
	struct vdi_err err = { 0 };
	struct vdi_reap_opts ro = { 0 };
	char **users = NULL, **hostnames = NULL;
	int64_t *ids = NULL, *hostids = NULL, ms;
	size_t nusers = 0, nids = 0, nhostnames = 0, nss = 0, nhs = 0, nitems = 0;
	bool expired = false;
	struct vdi_session *ss = NULL;
	struct vdi_host *hs = NULL;
	struct vdi_probe_req *reqs = NULL;
	struct vdi_node_report *reps = NULL;
	struct vdi_reap_host *rh = NULL;
	struct vdi_reap_item *items = NULL;
	struct conns cs = { 0 };
	char **vols = NULL, lockpath[4096];
	int o, rc, code = 0, lockfd = -1;

	vdi_cli_init(&c, "vm-reap", usage);
	while ((o = getopt_long(argc, argv, VDI_CLI_SHORT "n", opts, NULL)) != -1) {
		if (vdi_cli_option(&c, o, optarg))
			continue;
		switch (o) {
		case OPT_USER:
		case OPT_HOST: {
			char ***v = o == OPT_USER ? &users : &hostnames;
			size_t *nv = o == OPT_USER ? &nusers : &nhostnames;
			if (vdi_name_check(o == OPT_USER ? "user" : "host", optarg, &err) < 0)
				vdi_cli_usage_error(&c, "%s", err.msg);
			vdi_strv_push(v, nv, optarg);
			break;
		}
		case OPT_SESSION: {
			int64_t id, *t;
			if (vdi_int_parse(optarg, 1, INT64_MAX, &id, &err) < 0)
				vdi_cli_usage_error(&c, "--session: %s", err.msg);
			t = realloc(ids, (nids + 1) * sizeof(*t));
			if (!t)
				abort();
			ids = t;
			ids[nids++] = id;
			break;
		}
		case OPT_MAX_AGE:
			if (vdi_duration_parse(optarg, &ms, &err) < 0 || ms < 1000)
				vdi_cli_usage_error(&c, "--max-age: %s", err.msg[0] ? err.msg : "at least 1s");
			ro.max_age = ms / 1000;
			break;
		case OPT_EXPIRED:
			expired = true;
			break;
		case OPT_ORPHANS:
			ro.orphans = true;
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
	/* One vm-reap at a time: a second one (cron overlapping a slow run) skips. */
	snprintf(lockpath, sizeof(lockpath), "%s.reap.lock", c.cfg.db);
	lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
		if (lockfd >= 0 && errno == EWOULDBLOCK) {
			vdi_cli_info(&c, "another vm-reap is running; skipping this run");
			goto out;
		}
		vdi_err_set(&err, VDI_EFAIL, "cannot lock %s: %s", lockpath, strerror(errno));
		code = vdi_cli_fail(&c, &err);
		goto out;
	}
	if (vdi_session_list_live(c.db, &ss, &nss, &err) < 0 || vdi_host_list(c.db, NULL, 0, &hs, &nhs, &err) < 0) {
		code = vdi_cli_fail(&c, &err);
		goto out;
	}
	/* Names given must exist. */
	for (size_t i = 0; i < nhostnames; i++) {
		int64_t *t = realloc(hostids, (i + 1) * sizeof(*t));
		size_t k;
		if (!t)
			abort();
		hostids = t;
		for (k = 0; k < nhs && strcmp(hs[k].name, hostnames[i]) != 0; k++)
			;
		if (k == nhs) {
			vdi_err_set(&err, VDI_ENOTFOUND, "no host '%s'", hostnames[i]);
			code = vdi_cli_fail(&c, &err);
			goto out;
		}
		hostids[i] = hs[k].id;
	}
	for (size_t i = 0; i < nusers; i++) {
		struct vdi_uservm u;
		if (vdi_uservm_get(c.db, users[i], &u, &err) < 0) {
			code = vdi_cli_fail(&c, &err);
			goto out;
		}
		vdi_uservm_clear(&u);
	}
	/* Ask the hosts that have sessions (all of them for --orphans), all at once. */
	reqs = calloc(nhs + 1, sizeof(*reqs));
	reps = calloc(nhs + 1, sizeof(*reps));
	rh = calloc(nhs + 1, sizeof(*rh));
	cs.c = calloc(nhs + 1, sizeof(*cs.c));
	if (!reqs || !reps || !rh || !cs.c)
		abort();
	cs.hs = hs;
	cs.n = nhs;
	cs.timeout = c.cfg.poll_timeout;
	{
		size_t *map = calloc(nhs + 1, sizeof(*map)), nq = 0;
		if (!map)
			abort();
		for (size_t k = 0; k < nhs; k++) {
			bool want = ro.orphans;
			for (size_t i = 0; i < nss && !want; i++)
				want = ss[i].host_id == hs[k].id && strcmp(ss[i].state, "assigned") != 0;
			rh[k].id = hs[k].id;
			rh[k].name = hs[k].name;
			rh[k].down_since = hs[k].down_since;
			if (!want)
				continue;
			reqs[nq].uri = hs[k].uri;
			reqs[nq].domains = true;
			map[nq++] = k;
		}
		struct vdi_node_report *tmp = calloc(nq + 1, sizeof(*tmp));
		if (!tmp)
			abort();
		vdi_virt_probe_many(reqs, nq, c.cfg.poll_timeout, (int)c.cfg.poll_parallel, tmp);
		for (size_t q = 0; q < nq; q++) {
			reps[map[q]] = tmp[q];
			rh[map[q]].rep = &reps[map[q]];
		}
		free(tmp);
		free(map);
	}
	if (ro.orphans) {
		for (size_t k = 0; k < nhs && !vols; k++) {
			if (!rh[k].rep || rh[k].rep->err.code || !conn_for(&cs, k, &err))
				continue;
			vols = vdi_pool_volumes(cs.c[k], hs[k].pool, &err);
			for (size_t j = 0; j < nhs; j++)
				if (strcmp(hs[j].pool, hs[k].pool) == 0)
					rh[j].volumes = vols;
		}
	}
	ro.now = (int64_t)time(NULL);
	ro.assign_ttl = c.cfg.assign_ttl / 1000;
	ro.start_ttl = c.cfg.start_ttl / 1000;
	ro.stop_ttl = c.cfg.stop_ttl / 1000;
	ro.host_lost_after = c.cfg.host_lost_after / 1000;
	ro.users = users;
	ro.nusers = nusers;
	ro.ids = ids;
	ro.nids = nids;
	ro.hosts = hostids;
	ro.nhosts = nhostnames;
	ro.pid_alive = vdi_pid_alive;
	vdi_reap_plan(ss, nss, rh, nhs, &ro, &items, &nitems);
	for (size_t i = 0; i < nids; i++)
		if (!find_session(ss, nss, ids[i])) {
			vdi_err_set(&err, VDI_ENOTFOUND, "no session %lld that is not ended", (long long)ids[i]);
			code = vdi_code_worst(code, vdi_cli_fail(&c, &err));
		}
	vdi_out_list_begin(c.out);
	for (size_t i = 0; i < nitems; i++) {
		const struct vdi_reap_item *it = &items[i];
		const struct vdi_session *s = find_session(ss, nss, it->session);

		if (it->action == VDI_REAP_WAIT) {
			code = vdi_code_worst(code, VDI_ETEMP);
			if (!c.quiet)
				vdi_cli_warn(&c, "%s: host %s does not answer (%s); left alone", it->object,
					     hs[it->host].name, reps[it->host].err.msg);
			continue;
		}
		put(&c, vdi_reap_action_name(it->action), it->object, it->reason);
		if (c.dry_run)
			continue;
		vdi_err_clear(&err);
		if (act(&c, &cs, it, s, &err) < 0)
			code = vdi_code_worst(code, vdi_cli_fail(&c, &err));
	}
	if (expired)
		code = vdi_code_worst(code, reap_expired(&c, &cs, &err));
	vdi_out_list_end(c.out);
out:
	if (vols) {
		for (size_t i = 0; vols[i]; i++)
			free(vols[i]);
		free(vols);
	}
	for (size_t k = 0; reps && k < nhs; k++) {
		vdi_node_report_clear(&reps[k]);
		if (cs.c && cs.c[k])
			virConnectClose(cs.c[k]);
	}
	free(cs.c);
	free(items);
	free(rh);
	free(reps);
	free(reqs);
	vdi_hosts_free(hs, nhs);
	vdi_sessions_free(ss, nss);
	free(users);
	free(hostnames);
	free(ids);
	free(hostids);
	if (lockfd >= 0)
		close(lockfd);
	return vdi_cli_finish(&c, code);
}
