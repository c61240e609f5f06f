/* start.c - vm-start's workflow: claim, adopt or make, run, undo, retry (see start.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>
#include <time.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "batch.h"
#include "config.h"
#include "parse.h"
#include "file.h"
#include "mem.h"
#include "meta.h"
#include "names.h"
#include "start.h"
#include "uservm.h"
#include "virt.h"
#include "xml.h"

#define MAX_EXCLUDE 64

int
vdi_start_password(char *buf, size_t len, struct vdi_err *err)
{
	static const char alpha[] = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
	unsigned char r[32];

	if (len > sizeof(r) + 1)
		len = sizeof(r) + 1;
	if (getrandom(r, len - 1, 0) != (ssize_t)(len - 1))
		return vdi_err_set(err, VDI_R_FAIL, "no random bytes for a password: %s", strerror(errno));
	for (size_t i = 0; i + 1 < len; i++)
		buf[i] = alpha[r[i] % (sizeof(alpha) - 1)];
	buf[len - 1] = '\0';
	return 0;
}

/* The domain XML of claimed session s, on disk (the overlay, or for a first boot the user VM's own disk). */
static char *
domain_xml(virConnectPtr conn, const struct vdi_session *s, const struct vdi_start_opts *o, const char *disk,
	   const char *seed, const char *home, struct vdi_err *err)
{
	struct vdi_profile reg = vdi_session_profile(s);
	char mac[32], log[4200];
	struct vdi_meta meta;
	struct vdi_domain_spec d = { .name = s->domain, .type = vdi_domain_type(conn, o->domain_type),
				     .mem = s->mem, .vcpus = s->vcpus, .disk_path = disk, .seed_path = seed,
				     .home_path = home,
				     .listen = s->display_address, .password = s->display_password,
				     .vnc_password = s->console_password,
				     .meta = &meta, .network = s->network, .bridge = s->network ? NULL : s->bridge,
				     .mac = mac };

	meta.session_id = s->id;
	meta.uservm_id = s->uservm_id;
	meta.user = s->user;
	vdi_profile_resolve(&reg, &d.prof);
	vdi_mac_make(o->mac_prefix ? o->mac_prefix : VDI_MAC_PREFIX_DEFAULT, s->uservm_id, mac, sizeof(mac));
	if (o->console_log_dir) {
		/* Named as the domain, beside libvirt's own DOMAIN.log (logrotate takes both). */
		snprintf(log, sizeof(log), "%s/%s.console.log", o->console_log_dir, s->domain);
		d.console_log = log;
	}
	return vdi_xml_domain(&d, err);
}

/*
 * Make the overlay and the domain of claimed session s; *port gets its
 * display ports.  A first boot (kind prepare) runs on the user VM's own disk:
 * no overlay, so what the guest applies stays.  With warm (a build's id),
 * the overlay stands on that build's layer and the domain is restored
 * from its image, with only the disk, the display, the network and the
 * session changed in the saved XML.
 */
static int
make_desktop(virConnectPtr conn, const struct vdi_session *s, const struct vdi_start_opts *o, int64_t warm,
	     struct vdi_ports *port, struct vdi_err *err)
{
	char *disk = NULL, *seed = NULL, *ovpath = NULL, *xml = NULL, *layer = NULL, *home = NULL;
	char lname[160], iname[160], image[4200];
	int64_t cap = 0, alloc = 0;
	int ret = -1;

	disk = vdi_vol_path(conn, s->pool, s->disk, err);
	if (!disk && err->code == VDI_ENOTFOUND) {
		/* Made through another host: this one's view of the shared pool is stale. */
		vdi_err_clear(err);
		if (vdi_pool_refresh(conn, s->pool, err) == 0)
			disk = vdi_vol_path(conn, s->pool, s->disk, err);
	}
	if (!disk || vdi_vol_info(conn, s->pool, s->disk, &cap, &alloc, err) < 0)
		goto out;
	seed = vdi_vol_path(conn, s->pool, s->seed, err);
	if (!seed)
		goto out;
	/*
	 * The user's home disk, read-write and never behind an overlay: one
	 * live session per user VM, one user VM per user, so one writer.  A
	 * warm build goes without it (its image must not hold the home's
	 * file system in its memory), so users with one boot (warm.h).
	 */
	if (s->home && !vdi_session_is_warm_build(s) &&
	    !(home = vdi_vol_path(conn, s->pool, s->home, err))) {
		vdi_err_prefix(err, "the home disk");
		goto out;
	}
	if (warm) {
		vdi_session_warm_names(warm, s->user, NULL, 0, lname, sizeof(lname), iname, sizeof(iname));
		if (!(layer = vdi_vol_path(conn, s->pool, lname, err)) && err->code == VDI_ENOTFOUND) {
			/* Built through another host: refresh this one's view once. */
			vdi_err_clear(err);
			if (vdi_pool_refresh(conn, s->pool, err) == 0)
				layer = vdi_vol_path(conn, s->pool, lname, err);
		}
		if (!layer) {
			vdi_err_prefix(err, "the warm layer");
			goto out;
		}
		vdi_file_beside(layer, iname, image, sizeof(image)); /* a warm image lives beside its layer */
	}
	if (s->overlay) {
		/* Our claim is held: an overlay of this name is a leftover of a starter that died. */
		struct vdi_volume_spec v = { .name = s->overlay, .capacity = cap, .format = "qcow2",
					     .backing_path = layer ? layer : disk, .backing_format = "qcow2" };
		if (vdi_vol_delete(conn, s->pool, s->overlay, err) < 0 || vdi_vol_create(conn, s->pool, &v, err) < 0)
			goto out;
		vdi_file_test_stop("overlay");
		ovpath = vdi_vol_path(conn, s->pool, s->overlay, err);
		if (!ovpath)
			goto out;
	}
	if (warm) {
		struct vdi_xml_edit e = { .listen = s->display_address, .network = s->network,
					  .bridge = s->network ? NULL : s->bridge, .disk_from = layer,
					  .disk_to = ovpath, .password = s->display_password,
					  .vnc_password = s->console_password, .session_id = s->id };
		/* Twice: a host's passing trouble (a tap device name another libvirtd took) is not the image's. */
		if (vdi_domain_restore(conn, image, s->domain, &e, port, err) < 0) {
			vdi_domain_destroy(conn, s->domain, VDI_ERR_SCRATCH);
			vdi_err_clear(err);
			if (vdi_domain_restore(conn, image, s->domain, &e, port, err) < 0)
				goto out;
		}
	} else {
		xml = domain_xml(conn, s, o, ovpath ? ovpath : disk, seed, home, err);
		if (!xml || vdi_domain_start(conn, xml, port, err) < 0)
			goto out;
	}
	vdi_file_test_stop("domain");
	ret = 0;
out:
	free(disk);
	free(seed);
	free(ovpath);
	free(layer);
	free(home);
	free(xml);
	return ret;
}

/*
 * A restore from warm build's image failed: one event, the user VM cold
 * (the next warm build makes a new image), the caller told; then the
 * session boots.
 */
static int
fall_back(struct vdi_db *db, virConnectPtr conn, const struct vdi_session *s, const struct vdi_start_opts *o,
	  int64_t warm, struct vdi_ports *port, struct vdi_err *err)
{
	char detail[700];

	snprintf(detail, sizeof(detail), "session=%lld warm=w%lld booted instead: %.600s", (long long)s->id,
		 (long long)warm, err->msg);
	vdi_err_prefix(err, "restoring its warm image failed; it boots instead");
	if (o->warm_fallback)
		o->warm_fallback(o->ctx, err);
	vdi_uservm_warm_drop(db, s->uservm_id, warm, s->id, detail, VDI_ERR_SCRATCH);
	vdi_err_clear(err);
	/* A restore that failed half way leaves nothing of ours running; make sure of it. */
	if (vdi_domain_destroy(conn, s->domain, err) < 0)
		return -1;
	return make_desktop(conn, s, o, 0, port, err);
}

/*
 * The files of warm build that failed to restore, now that this session
 * booted instead: the user VM has one live session, so none other stands
 * on them (vm-reap --orphans deletes what this leaves).
 */
static void
drop_files(virConnectPtr conn, const struct vdi_session *s, int64_t warm)
{
	char layer[160], image[160];

	vdi_session_warm_names(warm, s->user, NULL, 0, layer, sizeof(layer), image, sizeof(image));
	vdi_vol_delete_unlisted(conn, s->pool, image, VDI_ERR_SCRATCH);
	vdi_vol_delete(conn, s->pool, layer, VDI_ERR_SCRATCH);
}

/*
 * The libvirt part of a start, for claimed session s: adopt or make the
 * desktop, then record it running.  0 running; -1 the host failed (what
 * was made is undone); 1 the session was ended or taken over meanwhile
 * (what was made is undone; not the host's fault).  A warm build is left
 * starting, its domain booting: the build (warm.h) saves it.
 */
static int
run_on_host(struct vdi_db *db, const struct vdi_start_opts *o, struct vdi_session *s, struct vdi_err *err)
{
	virConnectPtr conn;
	struct vdi_ports port = { 0 };
	int64_t warm = s->warm;
	int ret = -1;

	conn = vdi_conns_get(o->conns, s->host, s->host_uri, err);
	if (!conn)
		return -1;
	/* A domain of ours by this name is a starter's that died after starting it: adopt it. */
	if (vdi_domain_port(conn, s->domain, s->id, &port, err) < 0) {
		if (err->code != VDI_ENOTFOUND)
			goto undo;
		vdi_err_clear(err);
		if (make_desktop(conn, s, o, warm, &port, err) < 0) {
			if (!warm || fall_back(db, conn, s, o, warm, &port, err) < 0)
				goto undo;
			warm = 0;
			drop_files(conn, s, s->warm);
		}
	}
	if (vdi_session_is_warm_build(s))
		return 0;
	if (vdi_session_set_running(db, s->id, &port, warm, err) == 0)
		return 0;
	/* Ended or taken over meanwhile (vm-reap): theirs to finish; ours to undo. */
	ret = 1;
undo:
	vdi_domain_destroy(conn, s->domain, VDI_ERR_SCRATCH);
	if (s->overlay)
		vdi_vol_delete(conn, s->pool, s->overlay, VDI_ERR_SCRATCH);
	return ret;
}

/*
 * Claim session s (id) for starting, waiting while its host has
 * o->per_host starts in flight across every process (a random 50-250 ms
 * between tries, so waiters do not march in step), up to o->start_wait_ms:
 * then 2, with err temporary.  Else what vdi_session_claim_start_gated says.
 */
static int
claim_slot(struct vdi_db *db, int64_t id, const struct vdi_session *s, const char *domain, const char *overlay,
	   int64_t warm, const char *addr, const char *pw, const char *cpw, const struct vdi_start_opts *o,
	   struct vdi_err *err)
{
	int64_t waited = 0, limit = o->start_wait_ms > 0 ? o->start_wait_ms : 120000;
	unsigned seed = (unsigned)id * 2654435761u;
	int rc;

	while ((rc = vdi_session_claim_start_gated(db, id, domain, overlay, warm, addr, pw, cpw, o->per_host,
							    err)) == 2) {
		int64_t nap = 50 + rand_r(&seed) % 200;
		if (waited >= limit) {
			vdi_err_set(err, VDI_R_TEMP, "host %s has %lld starts in flight (start_parallel_host) and "
				    "kept them past %lld s; try again", s->host, (long long)o->per_host,
				    (long long)(limit / 1000));
			return 2;
		}
		usleep((useconds_t)nap * 1000);
		waited += nap;
	}
	return rc;
}

/*
 * Try to run session id on its host.  On failure what was made is undone
 * and *s holds the session as claimed (s->host names the host that failed,
 * or is NULL when the failure was not the host's).
 */
static int
try_start(struct vdi_db *db, int64_t id, const struct vdi_start_opts *o, struct vdi_session *s,
	  struct vdi_err *err)
{
	char domain[160], overlay[160], addr[256], pw[25], cpw[VDI_CONSOLE_PASSWORD + 1];
	int64_t warm = 0;
	int rc;

	if (vdi_session_get(db, id, s, err) < 0)
		return -1;
	vdi_session_names(s->id, s->user, domain, sizeof(domain), overlay, sizeof(overlay));
	if (vdi_session_is_warm_build(s)) {
		/* A warm build boots on its layer, under the name its image will be restored under. */
		vdi_session_warm_names(s->id, s->user, domain, sizeof(domain), overlay, sizeof(overlay), NULL, 0);
	} else if (vdi_session_is_desktop(s) && (s->warm || (o->warm && s->uservm_warm && !s->home))) {
		/* From the image that was current at its first claim: a dead starter's choice stays. */
		warm = s->warm ? s->warm : s->uservm_warm;
		vdi_session_warm_names(warm, s->user, domain, sizeof(domain), NULL, 0, NULL, 0);
	}
	vdi_start_listen(s->host_display, s->host_uri, addr, sizeof(addr));
	/*
	 * The browser console's VNC password: 8 characters, all VNC takes (vm-console alone uses it).
	 * A warm build gets the display too, so the desktops restored from its image have one.
	 */
	if (vdi_start_password(pw, sizeof(pw), err) < 0 || vdi_start_password(cpw, sizeof(cpw), err) < 0)
		goto not_host;
	/* A first boot runs on the user VM's own disk: no overlay. */
	if ((rc = claim_slot(db, id, s, domain, vdi_session_is_prepare(s) ? NULL : overlay, warm, addr, pw,
			     o->console && !vdi_session_is_prepare(s) ? cpw : NULL, o, err)) == 2)
		goto not_host; /* err says the host stayed full of starts */
	vdi_session_clear(s);
	if (rc < 0 || vdi_session_get(db, id, s, err) < 0)
		goto not_host;
	if (rc == 1) {
		/* Running already: nothing to start; a fresh ticket if the caller hands one out. */
		virConnectPtr conn;
		if (o->ticket_ttl <= 0)
			return 0;
		if (!(conn = vdi_conns_get(o->conns, s->host, s->host_uri, err)) ||
		    vdi_start_ticket(db, conn, s, o->ticket_ttl, err) < 0) {
			vdi_session_clear(s);
			return -1; /* not the host's fault to retry elsewhere: the desktop runs there */
		}
		return 0;
	}
	/* Storm control: at most so many starts in flight on one host. */
	if (o->host_gate)
		vdi_gate_enter(o->host_gate, s->host_id);
	rc = run_on_host(db, o, s, err);
	if (o->host_gate)
		vdi_gate_leave(o->host_gate, s->host_id);
	if (rc == 0) {
		vdi_session_clear(s);
		return vdi_session_get(db, id, s, err);
	}
	if (rc == 1)
		goto not_host;
	return -1;
not_host:
	free(s->host);
	s->host = NULL;
	return -1;
}

int
vdi_start(struct vdi_db *db, const char *user, int64_t id, const struct vdi_start_opts *o,
	  struct vdi_session *s, struct vdi_err *err)
{
	struct vdi_assign_opts ao = o->assign;
	struct vdi_err last = { 0 };
	int64_t exclude[MAX_EXCLUDE];
	char who[VDI_NAME_MAX + 1] = "";
	size_t nexclude = 0;
	int ret = -1;

	memset(s, 0, sizeof(*s));
	if (user) {
		if (vdi_name_check("user", user, err) < 0)
			return -1;
		snprintf(who, sizeof(who), "%s", user);
		if (vdi_session_of_user(db, user, s, err) == 0) {
			if (vdi_session_is_prepare(s) && !o->assign.prepare) {
				vdi_err_set(err, VDI_R_CONFLICT, "the user VM of '%s' is being prepared (its first boot, "
					    "session %lld)", user, (long long)s->id);
				goto out;
			}
			if (vdi_session_is_warm_build(s) && !o->assign.warm) {
				vdi_err_set(err, VDI_R_PREPARING, "the desktop of '%s' is being made warm (session %lld); "
					    "try again in a minute", user, (long long)s->id);
				goto out;
			}
			if (o->assign.warm && !vdi_session_is_warm_build(s)) {
				vdi_err_set(err, VDI_R_CONFLICT, "'%s' has a session (%lld); a warm build waits until "
					    "it ends", user, (long long)s->id);
				goto out;
			}
			id = s->id;
		}
		else if (err->code != VDI_ENOTFOUND)
			goto out;
		vdi_session_clear(s);
	}
	for (int64_t attempt = 0;; attempt++) {
		if (!id) {
			struct vdi_assign_result res;
			vdi_err_clear(err);
			ao.exclude = exclude;
			ao.nexclude = nexclude;
			if (vdi_assign(db, who, &ao, &res, err) < 0) {
				/* A host failed and no other fits: the host's failure is the answer. */
				if (err->code == VDI_ENOHOST && last.code) {
					vdi_err_copy(err, &last);
					vdi_err_prefix(err, "no other host fits; last");
				}
				goto out;
			}
			id = res.session_id;
			vdi_assign_result_clear(&res);
			if (last.code && o->host_failed)
				o->host_failed(o->ctx, &last);
		}
		vdi_err_clear(err);
		if (who[0])
			vdi_err_object(err, "%s", who);
		if (try_start(db, id, o, s, err) == 0) {
			ret = 0;
			goto out;
		}
		if (!s->host)
			goto out; /* not the host's fault: another starter, an ended session */
		/* The host failed it: free the capacity, and try the next-best host. */
		vdi_err_prefix(err, "session %lld on %s", (long long)id, s->host);
		vdi_session_end(db, id, NULL, "failed", err->msg, VDI_ERR_SCRATCH);
		if (attempt >= o->retries)
			goto out;
		vdi_err_copy(&last, err);
		if (nexclude < MAX_EXCLUDE)
			exclude[nexclude++] = s->host_id;
		/* A session given by id: its user is who gets another host. */
		snprintf(who, sizeof(who), "%s", s->user);
		vdi_session_clear(s);
		id = 0;
	}
out:
	if (ret < 0) {
		if (!err->object[0] && (who[0] || s->user))
			vdi_err_object(err, "%s", who[0] ? who : s->user);
		vdi_session_clear(s);
	}
	return ret;
}

char *
vdi_start_vv(const struct vdi_session *s)
{
	char *vv;

	if (asprintf(&vv, "[virt-viewer]\ntype=spice\nhost=%s\nport=%lld\npassword=%s\n"
		     "title=%s (session %lld on %s)\ndelete-this-file=1\n", s->display_address,
		     (long long)s->display_port, s->display_password, s->user, (long long)s->id, s->host) < 0)
		vdi_oom();
	return vv;
}

int
vdi_start_write_vv(const struct vdi_session *s, const char *dir, struct vdi_err *err)
{
	char name[VDI_NAME_MAX + 8], *vv = vdi_start_vv(s);
	int ret;

	snprintf(name, sizeof(name), "%s.vv", s->user);
	ret = vdi_file_write_private(dir, name, vv, strlen(vv), err);
	/* The password is a secret: leave no copy in freed memory. */
	explicit_bzero(vv, strlen(vv));
	free(vv);
	if (ret < 0)
		vdi_err_object(err, "%s", s->user);
	return ret;
}

/* ---- batches: several starts in flight, output in input order ---- */

struct many {
	const struct vdi_start_opts *o;
	const struct vdi_start_batch *b;
	char *const *users;
	const int64_t *ids;
	size_t n;
	size_t *task_of;           /* input i -> the task (the first input with the same key) */
	struct vdi_session *res;   /* per task */
	struct vdi_err *errs;      /* per task */
	struct vdi_order order;    /* input order, over task_of */
	struct vdi_gate gate;
	/* per worker: its own VMDB handle, connections and random state */
	struct vdi_workers w;
	uint64_t *rngs;
};

/* Input i's turn has come (vdi_order): tell the caller its task's result. */
static void
many_say(void *ctx, size_t i, size_t k)
{
	struct many *m = ctx;

	m->b->done(m->b->ctx, i, m->errs[k].code ? NULL : &m->res[k], m->errs[k].code ? &m->errs[k] : NULL);
}

static void
many_job(void *ctx, int worker, size_t t)
{
	struct many *m = ctx;
	struct vdi_start_opts o = *m->o;
	struct vdi_err *e = &m->errs[t];
	struct vdi_db *db;

	if (m->task_of[t] == t && !e->code) {
		if (vdi_workers_get(&m->w, worker, &db, &o.conns, e) < 0) {
			vdi_err_object(e, "%s", m->users ? m->users[t] : "session");
		} else {
			m->rngs[worker] = (m->o->assign.rng ? *m->o->assign.rng : 1) + (uint64_t)worker * 0x9e3779b97f4a7c15ULL;
			o.assign.rng = &m->rngs[worker];
			o.host_gate = &m->gate;
			vdi_start(db, m->users ? m->users[t] : NULL, m->ids ? m->ids[t] : 0, &o, &m->res[t], e);
		}
	}
	vdi_order_done(&m->order, t);
}

void
vdi_start_many(char *const *users, const int64_t *ids, size_t n, const struct vdi_start_opts *o,
	       const struct vdi_start_batch *b)
{
	struct many m = { .o = o, .b = b, .users = users, .ids = ids, .n = n,
			  .w = { .db = b->db, .timeout_ms = b->timeout_ms } };
	int parallel = b->parallel < 1 ? 1 : b->parallel;

	m.task_of = vdi_xcalloc(n + 1, sizeof(*m.task_of));
	m.res = vdi_xcalloc(n + 1, sizeof(*m.res));
	m.errs = vdi_xcalloc(n + 1, sizeof(*m.errs));
	vdi_workers_init(&m.w, parallel);
	m.rngs = vdi_xcalloc((size_t)parallel, sizeof(*m.rngs));
	/* The same user (or session) twice is started once: two starts of one session would race. */
	for (size_t i = 0; i < n; i++) {
		m.task_of[i] = i;
		for (size_t k = 0; k < i && m.task_of[i] == i; k++)
			if (users ? strcmp(users[k], users[i]) == 0 : ids[k] == ids[i])
				m.task_of[i] = k;
	}
	/*
	 * Users without a session are assigned here first, one after another in
	 * input order, as `vm-assign | vm-start` would: placement and session
	 * numbers do not depend on which thread runs first.
	 */
	for (size_t t = 0; users && b->db && t < n; t++) {
		struct vdi_assign_result res;
		struct vdi_session cur;
		if (m.task_of[t] != t || vdi_name_check("user", users[t], &m.errs[t]) < 0)
			continue;
		if (vdi_session_of_user(b->db, users[t], &cur, &m.errs[t]) == 0) {
			vdi_session_clear(&cur);
			continue;
		}
		if (m.errs[t].code == VDI_ENOTFOUND) {
			vdi_err_reset(&m.errs[t]);
			if (vdi_assign(b->db, users[t], &o->assign, &res, &m.errs[t]) == 0)
				vdi_assign_result_clear(&res);
		}
		if (m.errs[t].code)
			vdi_err_object(&m.errs[t], "%s", users[t]);
	}
	vdi_order_init(&m.order, n, m.task_of, many_say, &m);
	vdi_gate_init(&m.gate, b->per_host);
	vdi_batch_run(n, parallel, many_job, &m);
	vdi_gate_destroy(&m.gate);
	vdi_order_destroy(&m.order);
	vdi_workers_free(&m.w);
	for (size_t t = 0; t < n; t++)
		vdi_session_clear(&m.res[t]);
	free(m.task_of);
	free(m.res);
	free(m.errs);
	free(m.rngs);
}

void
vdi_start_opts_config(struct vdi_start_opts *o, const struct vdi_config *cfg)
{
	if (vdi_policy_parse(cfg->policy, &o->assign.policy) < 0)
		o->assign.policy = VDI_POLICY_LEAST_SESSIONS;
	o->assign.fallback = VDI_POLICY_LEAST_SESSIONS;
	o->assign.max_age = cfg->poll_max_age / 1000;
	o->retries = cfg->start_retries;
	o->per_host = cfg->start_parallel_host;
	o->domain_type = cfg->domain_type;
	o->mac_prefix = cfg->mac_prefix;
	o->console_log_dir = cfg->console_log_dir;
	o->logs.console_log_dir = cfg->console_log_dir;
	o->logs.host_log_dir = cfg->host_log_dir;
	o->warm = cfg->warm != 0;
	o->console = cfg->console != 0;
}

int
vdi_start_address(struct vdi_db *db, struct vdi_conns *cs, struct vdi_session *s, int64_t timeout_ms,
		  struct vdi_err *err)
{
	struct timespec t0, now, nap = { 0, 250 * 1000000L };
	virConnectPtr conn;
	char addr[64];
	int r;

	if (!s->network && !s->bridge)
		return vdi_err_set(err, VDI_R_FAIL, "host %s gives sessions no network (vm-hosts set --network "
				   "or --bridge)", s->host);
	if (!(conn = vdi_conns_get(cs, s->host, s->host_uri, err)))
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		r = vdi_domain_address(conn, s->domain, addr, sizeof(addr), err);
		if (r < 0)
			return -1;
		if (r == 1)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 >= timeout_ms)
			return vdi_err_set(err, VDI_R_TEMP, "the guest has no address after %lld s (address_timeout): "
					   "no DHCP lease or ARP entry yet", (long long)timeout_ms / 1000);
		nanosleep(&nap, NULL);
	}
	if (vdi_session_set_address(db, s->id, addr, err) < 0)
		return -1;
	free(s->address);
	s->address = vdi_xstrdup(addr);
	return 0;
}

char *
vdi_start_rdp(const struct vdi_session *s)
{
	char *rdp;

	/* The values are a checked address and a checked name: nothing to escape. */
	if (asprintf(&rdp, "full address:s:%s\r\nusername:s:%s\r\nprompt for credentials:i:1\r\n"
		     "screen mode id:i:2\r\nauthentication level:i:2\r\n", s->address, s->user) < 0)
		vdi_oom();
	return rdp;
}

int
vdi_start_write_rdp(const struct vdi_session *s, const char *dir, struct vdi_err *err)
{
	char name[VDI_NAME_MAX + 8], *rdp;
	int ret;

	if (!s->address)
		return vdi_err_set(err, VDI_R_FAIL, "session %lld has no address yet", (long long)s->id);
	rdp = vdi_start_rdp(s);
	snprintf(name, sizeof(name), "%s.rdp", s->user);
	ret = vdi_file_write_private(dir, name, rdp, strlen(rdp), err);
	free(rdp);
	return ret;
}

void
vdi_start_listen(const char *display, const char *uri, char *addr, size_t len)
{
	if (display)
		snprintf(addr, len, "%s", display);
	else
		vdi_uri_host(uri, addr, len);
	if (!addr[0])
		snprintf(addr, len, "127.0.0.1");
}

/* The live <graphics type='spice'> of dom with the new ticket, as XML for virDomainUpdateDeviceFlags. */
static char *
ticket_xml(virDomainPtr dom, const char *password, int64_t expires, struct vdi_err *err)
{
	char *live = virDomainGetXMLDesc(dom, 0), *out = NULL, until[32];
	xmlDocPtr doc = NULL;
	xmlNodePtr n = NULL, dev;
	xmlBufferPtr buf = NULL;
	struct tm tm;
	time_t t = (time_t)expires;

	if (!live) {
		vdi_virt_fail(VDI_R_FAIL, "reading the domain", err);
		goto out;
	}
	vdi_xml_init();
	doc = xmlReadMemory(live, (int)strlen(live), "domain.xml", NULL, XML_PARSE_NONET | XML_PARSE_NOBLANKS);
	for (dev = doc ? xmlDocGetRootElement(doc)->children : NULL; dev; dev = dev->next)
		if (dev->type == XML_ELEMENT_NODE && xmlStrEqual(dev->name, BAD_CAST "devices"))
			break;
	for (n = dev ? dev->children : NULL; n; n = n->next) {
		xmlChar *type;
		bool spice;
		if (n->type != XML_ELEMENT_NODE || !xmlStrEqual(n->name, BAD_CAST "graphics"))
			continue;
		type = xmlGetProp(n, BAD_CAST "type");
		spice = type && xmlStrEqual(type, BAD_CAST "spice");
		xmlFree(type);
		if (spice)
			break;
	}
	if (!n) {
		vdi_err_set(err, VDI_R_FAIL, "the domain has no SPICE display");
		goto out;
	}
	gmtime_r(&t, &tm);
	strftime(until, sizeof(until), "%Y-%m-%dT%H:%M:%S", &tm);
	xmlSetProp(n, BAD_CAST "passwd", BAD_CAST password);
	xmlSetProp(n, BAD_CAST "passwdValidTo", BAD_CAST until);
	xmlSetProp(n, BAD_CAST "connected", BAD_CAST "keep");
	buf = xmlBufferCreate();
	if (!buf || xmlNodeDump(buf, doc, n, 0, 0) < 0)
		vdi_oom();
	out = vdi_xstrdup((const char *)xmlBufferContent(buf));
out:
	if (buf)
		xmlBufferFree(buf);
	xmlFreeDoc(doc);
	free(live);
	return out;
}

/*
 * A fresh display password for session s's domain, valid until expires
 * (the hypervisor's clock), recorded in the VMDB; pw gets it.
 */
static int
ticket_set(struct vdi_db *db, virConnectPtr conn, const struct vdi_session *s, int64_t expires, char *pw,
	   size_t len, struct vdi_err *err)
{
	virDomainPtr dom = NULL;
	char *xml = NULL;
	int ret = -1;

	if (vdi_start_password(pw, len, err) < 0)
		goto out;
	if (!(dom = virDomainLookupByName(conn, s->domain))) {
		vdi_virt_fail(VDI_R_FAIL, "finding the desktop's domain", err);
		goto out;
	}
	if (!(xml = ticket_xml(dom, pw, expires, err)))
		goto out;
	if (virDomainUpdateDeviceFlags(dom, xml, VIR_DOMAIN_AFFECT_LIVE) < 0) {
		vdi_virt_fail(VDI_R_FAIL, "setting the display password", err);
		goto out;
	}
	ret = vdi_session_set_ticket(db, s->id, pw, expires, err);
out:
	if (xml) {
		explicit_bzero(xml, strlen(xml));
		free(xml);
	}
	if (dom)
		virDomainFree(dom);
	return ret;
}

int
vdi_start_ticket(struct vdi_db *db, virConnectPtr conn, struct vdi_session *s, int64_t ttl,
		   struct vdi_err *err)
{
	char pw[25]; /* as long as a start's own password */
	int64_t expires = (int64_t)time(NULL) + ttl;
	int ret = -1;

	if (ticket_set(db, conn, s, expires, pw, sizeof(pw), err) < 0)
		goto out;
	if (s->display_password)
		explicit_bzero(s->display_password, strlen(s->display_password));
	free(s->display_password);
	s->display_password = vdi_xstrdup(pw);
	s->ticket_expires = expires;
	ret = 0;
out:
	explicit_bzero(pw, sizeof(pw));
	return ret;
}

int
vdi_start_ticket_spend(struct vdi_db *db, virConnectPtr conn, const struct vdi_session *s, struct vdi_err *err)
{
	char pw[25]; /* as long as a start's own password */
	/* Expired already, by the hypervisor's clock (not the tests'). */
	int ret = ticket_set(db, conn, s, (int64_t)time(NULL) - 1, pw, sizeof(pw), err);

	explicit_bzero(pw, sizeof(pw));
	return ret;
}

int
vdi_start_rdp_wait(struct vdi_db *db, struct vdi_conns *cs, const char *user, const char *dir,
		   int64_t timeout_ms, struct vdi_err *err)
{
	struct vdi_session s;
	int ret = -1;

	vdi_err_object(err, "%s", user);
	if (vdi_session_of_user(db, user, &s, err) < 0)
		return -1;
	if (!s.rdp) {
		vdi_err_set(err, VDI_R_NONE, "master %s does not serve RDP (vm-master add --rdp): no .rdp written",
			    s.master);
		ret = 1;
	} else if (vdi_start_address(db, cs, &s, timeout_ms, err) == 0 && vdi_start_write_rdp(&s, dir, err) == 0) {
		ret = 0;
	}
	vdi_session_clear(&s);
	return ret;
}
