/* prepare.c - first boots that make user VMs ready (see prepare.h). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "conns.h"
#include "domlog.h"
#include "mem.h"
#include "prepare.h"
#include "reaper.h"
#include "session.h"
#include "uservm.h"
#include "virt.h"

enum step { PENDING, RUNNING, DONE };

struct boot {
	enum step step;
	int64_t session, started;
	struct vdi_err err;
};

/* The user VM's state after its first boot ended: ready is success. */
static int
outcome(struct vdi_db *db, const char *user, const char *why, struct vdi_err *err)
{
	struct vdi_uservm u = { 0 };
	int ret = -1;

	if (vdi_uservm_get(db, user, &u, err) < 0)
		return -1;
	if (strcmp(u.state, "ready") == 0)
		ret = 0;
	else
		vdi_err_set(err, VDI_R_FAIL, "its first boot %s; the user VM is %s (vm-copy %s again retries)",
			    why, u.state, user);
	vdi_uservm_clear(&u);
	return ret;
}

/* Look at one running first boot: 1 still running, 0 ended (b->err says how). */
static int
check(struct vdi_db *db, const char *user, struct boot *b, const struct vdi_prepare_opts *o, int64_t now)
{
	struct vdi_session s = { 0 };
	virConnectPtr conn;
	const char *reason = NULL, *why = NULL;
	char stuck[128], said[900];
	int alive;

	if (vdi_session_get(db, b->session, &s, &b->err) < 0)
		return 0;
	if (strcmp(s.state, "ended") == 0) {
		/* Ended by someone else meanwhile (vm-reap, an admin). */
		char w[64];
		snprintf(w, sizeof(w), "ended (%s)", s.reason ? s.reason : "?");
		vdi_err_reset(&b->err);
		outcome(db, user, w, &b->err);
		vdi_session_clear(&s);
		return 0;
	}
	conn = vdi_conns_get(o->start.conns, s.host, s.host_uri, &b->err);
	alive = conn ? vdi_domain_alive(conn, s.domain, &b->err) : -1;
	if (alive < 0) {
		/* The host did not answer this time: keep waiting, within the timeout. */
		vdi_err_reset(&b->err);
		alive = 1;
	}
	if (!alive) {
		reason = "poweroff";
		why = "powered off";
	} else if (conn && vdi_domain_stuck(conn, s.domain, stuck, sizeof(stuck), VDI_ERR_SCRATCH) == 1) {
		/* It will never power off: say what libvirt says, and what the host logged, now. */
		reason = "crashed";
		why = said;
		vdi_domlog_say(&o->start.logs, s.host, s.host_uri, s.domain, stuck, said, sizeof(said));
	} else if (now - b->started > o->timeout) {
		reason = "expired";
		why = "did not power off within prepare_timeout";
	}
	if (reason) {
		vdi_err_reset(&b->err);
		if (vdi_reaper_end(db, o->start.conns, &s, NULL, reason, why == said ? said : NULL, &b->err) < 0) {
			vdi_err_prefix(&b->err, "ending its first boot");
		} else {
			vdi_err_reset(&b->err);
			outcome(db, user, why, &b->err);
		}
	}
	vdi_session_clear(&s);
	return reason ? 0 : 1;
}

static void
finish(struct boot *b, size_t i, const char *user, const struct vdi_prepare_opts *o, size_t *failed)
{
	b->step = DONE;
	if (b->err.code) {
		vdi_err_object(&b->err, "%s", user);
		(*failed)++;
	}
	if (o->done)
		o->done(o->ctx, i, b->err.code ? &b->err : NULL);
}

/* Who runs and for how long (the first three, then how many more), for o->waiting. */
static void
tell_waiting(const struct boot *bs, char *const *users, size_t n, size_t left, const struct vdi_prepare_opts *o,
	     int64_t now)
{
	char who[256] = "";
	size_t o_ = 0, shown = 0, running = 0;

	if (!o->waiting)
		return;
	for (size_t i = 0; i < n; i++) {
		if (bs[i].step != RUNNING)
			continue;
		running++;
		if (shown < 3 && o_ + 40 < sizeof(who)) {
			o_ += (size_t)snprintf(who + o_, sizeof(who) - o_, "%s%.24s %llds", shown ? ", " : "", users[i],
					       (long long)(now - bs[i].started));
			shown++;
		}
	}
	if (running > shown)
		snprintf(who + o_, sizeof(who) - o_, ", and %zu more", running - shown);
	o->waiting(o->ctx, n - left, n, who);
}

size_t
vdi_prepare_run(struct vdi_db *db, char *const *users, size_t n, const struct vdi_prepare_opts *o)
{
	struct vdi_start_opts so = o->start;
	struct boot *bs = vdi_xcalloc(n + 1, sizeof(*bs));
	size_t failed = 0, left = n;

	so.assign.prepare = true;
	so.retries = 0; /* a failed first boot is made again from the master: vm-copy's retry */
	while (left > 0) {
		size_t running = 0;
		int64_t now = vdi_clock_now();

		/* Start what the hosts take; a user that finds no host waits for a running first boot. */
		for (size_t i = 0; i < n; i++)
			running += bs[i].step == RUNNING;
		for (size_t i = 0; i < n; i++) {
			struct vdi_session s;
			if (bs[i].step != PENDING)
				continue;
			vdi_err_reset(&bs[i].err);
			if (vdi_start(db, users[i], 0, &so, &s, &bs[i].err) == 0) {
				bs[i].step = RUNNING;
				bs[i].session = s.id;
				bs[i].started = now;
				running++;
				vdi_session_clear(&s);
			} else if (bs[i].err.code != VDI_ENOHOST || running == 0) {
				struct vdi_uservm u = { 0 };
				struct vdi_err e = { 0 };
				if (vdi_uservm_get(db, users[i], &u, &e) == 0)
					vdi_uservm_fail(db, u.id, bs[i].err.msg, VDI_ERR_SCRATCH);
				vdi_uservm_clear(&u);
				finish(&bs[i], i, users[i], o, &failed);
				left--;
			}
		}
		if (!left)
			break;
		if (o->interrupted && *o->interrupted) {
			for (size_t i = 0; i < n; i++) {
				if (bs[i].step == DONE)
					continue;
				vdi_err_set(&bs[i].err, VDI_R_FAIL, "interrupted while its first boot runs "
					    "(vm-reap finishes it)");
				finish(&bs[i], i, users[i], o, &failed);
			}
			break;
		}
		tell_waiting(bs, users, n, left, o, now);
		vdi_clock_sleep_ms(o->poll_ms > 0 ? o->poll_ms : 500);
		now = vdi_clock_now();
		for (size_t i = 0; i < n; i++) {
			if (bs[i].step != RUNNING || check(db, users[i], &bs[i], o, now))
				continue;
			finish(&bs[i], i, users[i], o, &failed);
			left--;
		}
	}
	free(bs);
	return failed;
}
