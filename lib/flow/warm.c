/* warm.c - warm builds: boot a user VM on its layer, save its memory, make it the user VM's image (see warm.h). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "conns.h"
#include "domlog.h"
#include "file.h"
#include "home.h"
#include "mem.h"
#include "reaper.h"
#include "session.h"
#include "strv.h"
#include "uservm.h"
#include "virt.h"
#include "warm.h"

static bool has_home(struct vdi_db *db, const char *user, struct vdi_err *err);

enum step { PENDING, BOOTING, DONE };

struct build {
	enum step step;
	int64_t session, started, up;  /* up: when the desktop was seen up (0: not yet) */
	int64_t started_ms;
	struct vdi_err err;
};

/* Is the desktop of build s up: its console said o->ready, else (or where the log is not here) it has an address? */
static bool
is_up(virConnectPtr conn, const struct vdi_session *s, const struct vdi_warm_opts *o)
{
	char addr[64];
	int rc = -1;

	if (o->ready && *o->ready)
		rc = vdi_domlog_console_has(&o->start.logs, s->host, s->host_uri, s->domain, o->ready);
	if (rc >= 0)
		return rc == 1;
	return vdi_domain_address(conn, s->domain, addr, sizeof(addr), VDI_ERR_SCRATCH) == 1;
}

/* The files of the build before this one, when no live session stands on them any more. */
static void
drop_previous(struct vdi_db *db, virConnectPtr conn, const struct vdi_session *s, int64_t previous)
{
	char layer[160], image[160];
	int64_t users = 0;

	if (!previous || previous == s->id ||
	    vdi_session_warm_users(db, previous, &users, VDI_ERR_SCRATCH) < 0 || users > 0)
		return; /* vm-reap --orphans deletes them once nothing stands on them */
	vdi_session_warm_names(previous, s->user, NULL, 0, layer, sizeof(layer), image, sizeof(image));
	vdi_vol_delete_unlisted(conn, s->pool, image, VDI_ERR_SCRATCH);
	vdi_vol_delete(conn, s->pool, layer, VDI_ERR_SCRATCH);
}

/* Save the running build s (its desktop is up); 0 and *size the image's bytes, or -1 (the build is ended). */
static int
save(struct vdi_db *db, const struct vdi_session *s, const struct vdi_warm_opts *o, int64_t *size,
     struct vdi_err *err)
{
	char layer[160], image[160], path[4200], detail[512];
	char *lpath = NULL, *found = NULL;
	int64_t cap = 0, previous = 0;
	struct vdi_uservm u = { 0 };
	struct vdi_session now = *s;
	virConnectPtr conn = NULL;
	int ret = -1, rc;

	vdi_session_warm_names(s->id, s->user, NULL, 0, layer, sizeof(layer), image, sizeof(image));
	if (!(conn = vdi_conns_get(o->start.conns, s->host, s->host_uri, err)) ||
	    !(lpath = vdi_vol_path(conn, s->pool, layer, err)) || vdi_uservm_get(db, s->user, &u, err) < 0)
		goto out;
	vdi_file_beside(lpath, image, path, sizeof(path));
	previous = u.warm;
	/* The name is this build's alone: a file there already was planted, and libvirt would write through it. */
	if (vdi_pool_refresh(conn, s->pool, err) < 0)
		goto out;
	if ((found = vdi_vol_path(conn, s->pool, image, err)) || err->code != VDI_ENOTFOUND) {
		if (found)
			vdi_err_set(err, VDI_R_EXISTS, "%s is in pool %s already, made by no warm build; left alone",
				    image, s->pool);
		goto out;
	}
	vdi_err_clear(err);
	/* Rule 2: stopping is committed before the domain goes into its image. */
	if ((rc = vdi_session_claim_stop(db, s->id, "starting", err)) != 0) {
		if (rc == 1)
			vdi_err_set(err, VDI_R_CLAIM_LOST, "the warm build (session %lld) was ended meanwhile",
				    (long long)s->id);
		now.state = NULL; /* not ours to end */
		goto out;
	}
	now.state = (char *)"stopping"; /* from here its image, half written perhaps, goes with its layer */
	vdi_file_test_stop("warm-save");
	if (vdi_domain_save(conn, s->domain, path, err) < 0)
		goto out;
	vdi_file_test_stop("warm-saved");
	if (vdi_pool_refresh(conn, s->pool, err) < 0 || vdi_vol_info(conn, s->pool, image, &cap, size, err) < 0)
		goto out;
	snprintf(detail, sizeof(detail), "layer=%s image=%s bytes=%lld", layer, image, (long long)*size);
	if ((rc = vdi_session_end(db, s->id, "stopping", "saved", detail, err)) != 0) {
		if (rc == 1)
			vdi_err_set(err, VDI_R_CLAIM_LOST, "the warm build (session %lld) was ended meanwhile",
				    (long long)s->id);
		now.state = NULL;
		goto out;
	}
	drop_previous(db, conn, s, previous);
	ret = 0;
out:
	/* A build that failed is ended here, its files deleted (a planted image is not its). */
	if (ret < 0 && now.state)
		vdi_reaper_end(db, o->start.conns, &now, now.state, "failed", err->msg, VDI_ERR_SCRATCH);
	vdi_uservm_clear(&u);
	free(lpath);
	free(found);
	return ret;
}

/* Look at one booting build: 1 still booting, 0 ended (b->err says how). */
static int
check(struct vdi_db *db, struct build *b, const struct vdi_warm_opts *o, int64_t now, int64_t *size)
{
	struct vdi_session s = { 0 };
	virConnectPtr conn;
	const char *reason = NULL;
	char stuck[128], why[900] = "";
	int alive, ret = 1;

	if (vdi_session_get(db, b->session, &s, &b->err) < 0)
		return 0;
	if (strcmp(s.state, "starting") != 0) {
		vdi_err_set(&b->err, VDI_R_CLAIM_LOST, "the warm build (session %lld) was %s meanwhile%s%s",
			    (long long)s.id, s.state, s.reason ? ": " : "", s.reason ? s.reason : "");
		ret = 0;
		goto out;
	}
	conn = vdi_conns_get(o->start.conns, s.host, s.host_uri, &b->err);
	alive = conn ? vdi_domain_alive(conn, s.domain, &b->err) : -1;
	vdi_err_reset(&b->err);
	if (alive == 0) {
		reason = "poweroff";
		snprintf(why, sizeof(why), "the guest powered off before its desktop was up");
	} else if (alive > 0 && vdi_domain_stuck(conn, s.domain, stuck, sizeof(stuck), VDI_ERR_SCRATCH) == 1) {
		reason = "crashed";
		vdi_domlog_say(&o->start.logs, s.host, s.host_uri, s.domain, stuck, why, sizeof(why));
	} else if (alive > 0 && !b->up && is_up(conn, &s, o)) {
		b->up = now;
	}
	if (!reason && b->up && now - b->up >= o->settle) {
		ret = 0;
		save(db, &s, o, size, &b->err);
		goto out;
	}
	if (!reason && now - b->started > o->timeout) {
		reason = "expired";
		snprintf(why, sizeof(why), "its desktop was not up within warm_timeout (%lld s)%s", (long long)o->timeout,
			 o->ready && *o->ready ? ": no warm_ready line on its console" : ": no address");
	}
	if (reason) {
		ret = 0;
		vdi_err_set(&b->err, VDI_R_FAIL, "%s", why);
		vdi_reaper_end(db, o->start.conns, &s, "starting", reason, why, VDI_ERR_SCRATCH);
	}
out:
	vdi_session_clear(&s);
	return ret;
}

static void
finish(struct build *b, size_t i, const char *user, const struct vdi_warm_opts *o, int64_t size, size_t *failed)
{
	b->step = DONE;
	if (b->err.code) {
		vdi_err_object(&b->err, "%s", user);
		(*failed)++;
	}
	if (o->done)
		o->done(o->ctx, i, b->err.code ? &b->err : NULL, size, vdi_clock_mono_ms() - b->started_ms);
}

/* Interrupted: every build that boots is ended now (its files go), and told so. */
static void
end_all(struct vdi_db *db, struct build *bs, char *const *users, size_t n, const struct vdi_warm_opts *o,
	size_t *failed)
{
	for (size_t i = 0; i < n; i++) {
		struct vdi_session s;
		if (bs[i].step == DONE)
			continue;
		if (bs[i].step == BOOTING && vdi_session_get(db, bs[i].session, &s, VDI_ERR_SCRATCH) == 0) {
			vdi_reaper_end(db, o->start.conns, &s, "starting", "admin", "interrupted", VDI_ERR_SCRATCH);
			vdi_session_clear(&s);
		}
		vdi_err_set(&bs[i].err, VDI_R_FAIL, "interrupted: its warm build was ended");
		finish(&bs[i], i, users[i], o, 0, failed);
	}
}

void
vdi_warm_opts_config(struct vdi_warm_opts *o, const struct vdi_config *cfg)
{
	vdi_start_opts_config(&o->start, cfg);
	o->ready = cfg->warm_ready;
	o->settle = cfg->warm_settle / 1000;
	o->timeout = cfg->warm_timeout / 1000;
}

size_t
vdi_warm_run(struct vdi_db *db, char *const *users, size_t n, const struct vdi_warm_opts *o)
{
	struct vdi_start_opts so = o->start;
	struct build *bs = vdi_xcalloc(n + 1, sizeof(*bs));
	size_t failed = 0, left = n;

	so.assign.warm = true;
	so.retries = 0; /* a build that fails is tried again by the next run, not on another host now */
	while (left > 0) {
		size_t running = 0;
		int64_t now = vdi_clock_now();

		/* Start what the hosts take; a user that finds no host waits for a running build. */
		for (size_t i = 0; i < n; i++)
			running += bs[i].step == BOOTING;
		for (size_t i = 0; i < n; i++) {
			struct vdi_session s;
			if (bs[i].step != PENDING)
				continue;
			vdi_err_reset(&bs[i].err);
			bs[i].started_ms = vdi_clock_mono_ms();
			if (has_home(db, users[i], &bs[i].err)) {
				finish(&bs[i], i, users[i], o, 0, &failed);
				left--;
				continue;
			}
			if (vdi_start(db, users[i], 0, &so, &s, &bs[i].err) == 0) {
				bool build = vdi_session_is_warm_build(&s);
				bs[i].session = s.id;
				vdi_session_clear(&s);
				if (!build) {
					/* The user has a desktop now: nothing to build while it runs. */
					vdi_err_set(&bs[i].err, VDI_R_CONFLICT, "it has a session (%lld); a warm build "
						    "waits until it ends", (long long)bs[i].session);
					finish(&bs[i], i, users[i], o, 0, &failed);
					left--;
					continue;
				}
				bs[i].step = BOOTING;
				bs[i].started = now;
				running++;
			} else if (bs[i].err.code != VDI_ENOHOST || running == 0) {
				finish(&bs[i], i, users[i], o, 0, &failed);
				left--;
			}
		}
		if (!left)
			break;
		if (o->interrupted && *o->interrupted) {
			end_all(db, bs, users, n, o, &failed);
			break;
		}
		vdi_clock_sleep_ms(o->poll_ms > 0 ? o->poll_ms : 250);
		now = vdi_clock_now();
		for (size_t i = 0; i < n; i++) {
			int64_t size = 0;
			if (bs[i].step != BOOTING || check(db, &bs[i], o, now, &size))
				continue;
			finish(&bs[i], i, users[i], o, size, &failed);
			left--;
		}
	}
	free(bs);
	return failed;
}

/*
 * A user with a home disk has no warm image: the saved memory would hold
 * the home disk's file system as it was at the build, and a restore over
 * the disk as it is now would corrupt it.  Their sessions boot.
 */
static bool
has_home(struct vdi_db *db, const char *user, struct vdi_err *err)
{
	struct vdi_home h;
	int rc = vdi_home_get(db, user, &h, err);

	if (rc == 1)
		vdi_err_set(err, VDI_R_CONFLICT, "it has a home disk: its sessions boot (a warm image cannot hold "
			    "a home disk's file system)");
	vdi_home_clear(&h);
	return rc != 0;
}

int
vdi_warm_due(struct vdi_db *db, int64_t retry, char ***users, size_t *n, struct vdi_err *err)
{
	struct vdi_uservm *us = NULL;
	size_t nus = 0;
	int64_t now = vdi_clock_now();

	*users = NULL;
	*n = 0;
	if (vdi_uservm_list(db, NULL, 0, &us, &nus, err) < 0)
		return -1;
	for (size_t i = 0; i < nus; i++)
		if (strcmp(us[i].state, "ready") == 0 && !us[i].warm && !us[i].session_id && !us[i].home &&
		    (!us[i].warm_failed || now - us[i].warm_failed >= retry))
			vdi_strv_push_copy(users, n, us[i].user);
	vdi_uservms_free(us, nus);
	return 0;
}
