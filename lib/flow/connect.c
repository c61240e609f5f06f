/* connect.c - a user's own way to their desktop (see connect.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "connect.h"
#include "console.h"
#include "reaper.h"
#include "host.h"
#include "mem.h"
#include "request.h"
#include "uservm.h"
#include "virt.h"
#include "xml.h"

int
vdi_connect_status(struct vdi_db *db, const char *user, struct vdi_connect_status *st, struct vdi_err *err)
{
	struct vdi_uservm u;
	struct vdi_session s;
	struct vdi_request *r = NULL;
	size_t nr = 0;
	int ret = -1;

	memset(st, 0, sizeof(*st));
	if (vdi_uservm_get(db, user, &u, err) == 0) {
		st->desktop = vdi_xstrdup(u.state);
		st->master = vdi_xstrdup(u.master);
		st->mem = u.mem;
		st->vcpus = u.vcpus;
		st->disk = u.disk;
		st->home = u.home ? u.home_size : 0;
		st->update_to = u.update_to ? vdi_xstrdup(u.update_to) : NULL;
		st->updating = u.updating_from != NULL;
		{
			struct vdi_err e = { 0 };
			st->never_fits = vdi_host_fits_ever(db, u.pool, u.mem, u.vcpus, &e) < 0 &&
					 e.reason == VDI_R_NEVER_FITS;
		}
		vdi_uservm_clear(&u);
	} else if (err->code != VDI_ENOTFOUND) {
		goto out;
	} else {
		vdi_err_reset(err);
		if (vdi_request_list(db, "pending", user, &r, &nr, err) < 0)
			goto out;
		st->desktop = vdi_xstrdup(nr ? "requested" : "none");
		if (nr) {
			st->master = vdi_xstrdup(r[0].master);
			st->mem = r[0].mem;
			st->vcpus = r[0].vcpus;
			st->disk = r[0].disk;
			st->home = r[0].home;
			st->requested = r[0].created;
		}
		ret = 0;
		goto out;
	}
	if (vdi_session_of_user(db, user, &s, err) == 0) {
		if (vdi_session_is_desktop(&s)) {
			st->session = vdi_xstrdup(s.state);
			st->host = s.host ? vdi_xstrdup(s.host) : NULL;
			st->connected = vdi_session_connected(&s);
			st->console = s.console_port > 0;
			st->since = st->connected ? s.connected_since : s.disconnected_since;
		}
		vdi_session_clear(&s);
	} else if (err->code != VDI_ENOTFOUND) {
		goto out;
	} else if (vdi_session_last_of_user(db, user, &s, VDI_ERR_SCRATCH) == 0) {
		st->last_reason = s.reason ? vdi_xstrdup(s.reason) : NULL;
		st->last_ended = s.changed;
		vdi_session_clear(&s);
	}
	vdi_err_reset(err);
	ret = 0;
out:
	vdi_requests_free(r, nr);
	if (ret < 0)
		vdi_connect_status_clear(st);
	return ret;
}

void
vdi_connect_status_clear(struct vdi_connect_status *st)
{
	free(st->desktop);
	free(st->master);
	free(st->update_to);
	free(st->session);
	free(st->host);
	free(st->last_reason);
	memset(st, 0, sizeof(*st));
}

int
vdi_connect_end(struct vdi_db *db, const char *user, struct vdi_conns *cs, struct vdi_err *err)
{
	struct vdi_session s;
	int rc;

	if (vdi_session_of_user(db, user, &s, err) < 0)
		return -1;
	if (!vdi_session_is_desktop(&s)) {
		vdi_session_clear(&s);
		return vdi_err_set(err, VDI_R_PREPARING, "your desktop is being prepared");
	}
	rc = vdi_reaper_end(db, cs, &s, s.state, "logoff", "by its user, from the web page", err);
	vdi_session_clear(&s);
	if (rc == 1)
		return vdi_err_set(err, VDI_R_CONFLICT, "your desktop changed meanwhile");
	return rc;
}

/* The user's desktop, assigned and started if it is not running: *s (cleared on failure). */
static int
connect_start(struct vdi_db *db, const char *user, const struct vdi_start_opts *o, struct vdi_session *s,
	      struct vdi_err *err)
{
	struct vdi_uservm u;
	int ret;

	memset(s, 0, sizeof(*s));
	if (vdi_uservm_get(db, user, &u, err) < 0) {
		if (err->reason == VDI_R_NO_USER || err->reason == VDI_R_NOTFOUND)
			vdi_err_set(err, VDI_R_NO_USER, "you have no desktop yet");
		return -1;
	}
	if (strcmp(u.state, "creating") == 0 || strcmp(u.state, "preparing") == 0)
		ret = vdi_err_set(err, VDI_R_PREPARING, "your desktop is being prepared");
	else if (strcmp(u.state, "failed") == 0)
		ret = vdi_err_set(err, VDI_R_PREPARE_FAILED, "your desktop could not be prepared; "
				  "your administrator can make it again");
	else
		ret = vdi_host_fits_ever(db, u.pool, u.mem, u.vcpus, err);
	vdi_uservm_clear(&u);
	if (ret < 0)
		return -1;
	return vdi_start(db, user, 0, o, s, err);
}

int
vdi_connect(struct vdi_db *db, const char *user, const struct vdi_start_opts *o, int64_t ttl,
	    struct vdi_session *s, struct vdi_err *err)
{
	virConnectPtr conn;

	if (connect_start(db, user, o, s, err) < 0)
		return -1;
	if (!(conn = vdi_conns_get(o->conns, s->host, s->host_uri, err)) ||
	    vdi_start_ticket(db, conn, s, ttl, err) < 0) {
		vdi_session_clear(s);
		return -1;
	}
	return 0;
}

int
vdi_connect_console(struct vdi_db *db, const char *user, const struct vdi_start_opts *o, int64_t ttl,
		    struct vdi_session *s, char ticket[VDI_TOKEN_MAX], struct vdi_err *err)
{
	if (connect_start(db, user, o, s, err) < 0)
		return -1;
	if (s->console_port <= 0) {
		vdi_err_set(err, VDI_R_NOTFOUND, "your desktop has no browser console: it was started without one; "
			    "log off and open it again, or use the viewer");
		goto fail;
	}
	if (vdi_console_ticket(db, user, s->id, ttl, vdi_clock_now(), ticket, err) < 0)
		goto fail;
	return 0;
fail:
	vdi_session_clear(s);
	return -1;
}
