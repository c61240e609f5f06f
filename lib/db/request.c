/* request.c - desktop requests in the VMDB (see request.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "event.h"
#include "group.h"
#include "host.h"
#include "master.h"
#include "mem.h"
#include "request.h"

int
vdi_request_add(struct vdi_db *db, const struct vdi_request *r, int64_t *id, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	struct vdi_master m = { 0 };
	char detail[256];
	struct vdi_group_verdict gv;
	int64_t now = vdi_clock_now();
	int rc, ret = -1;

	/* Only a master a group of the user's has (vm-group); asked before any lock is taken. */
	if (vdi_group_user_may(db, r->user, r->master, &gv, err) < 0)
		return -1;
	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	if (vdi_master_get(db, r->master, &m, err) < 0)
		goto out;
	if (strcmp(m.state, "active") != 0) {
		vdi_err_set(err, VDI_R_NOTFOUND, "master '%s' is %s", r->master, m.state);
		goto out;
	}
	if (vdi_db_prepare(db, &st, "SELECT 1 FROM uservms WHERE username = ?", err) < 0)
		goto out;
	vdi_stmt_bind_text(st, 1, r->user);
	rc = vdi_stmt_step(st);
	vdi_stmt_finalize(st);
	st = NULL;
	if (rc == VDI_DB_ROW) {
		vdi_err_set(err, VDI_R_CONFLICT, "'%s' has a desktop already", r->user);
		goto out;
	}
	/* What no host could ever run would wait for room for ever: refused now, in words. */
	if (vdi_host_fits_ever(db, m.pool, r->mem > 0 ? r->mem : m.mem, r->vcpus > 0 ? r->vcpus : m.vcpus, err) < 0)
		goto out;
	if (vdi_db_prepare(db, &st, "DELETE FROM requests WHERE username = ? AND state = 'pending'", err) < 0)
		goto out;
	vdi_stmt_bind_text(st, 1, r->user);
	if (vdi_db_step(db, st, "replacing the request", err) < 0)
		goto out;
	vdi_stmt_finalize(st);
	if (vdi_db_prepare(db, &st, "INSERT INTO requests (username, master, mem, vcpus, disk, created, changed, home) "
			   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, nullif(?7, 0)) RETURNING id", err) < 0)
		goto out;
	vdi_stmt_bind_text(st, 1, r->user);
	vdi_stmt_bind_text(st, 2, m.name);
	vdi_stmt_bind_int64(st, 3, r->mem > 0 ? r->mem : m.mem);
	vdi_stmt_bind_int64(st, 4, r->vcpus > 0 ? r->vcpus : m.vcpus);
	vdi_stmt_bind_int64(st, 5, r->disk > 0 ? r->disk : m.disk);
	vdi_stmt_bind_int64(st, 6, now);
	vdi_stmt_bind_int64(st, 7, r->home > 0 ? r->home : m.home > 0 ? m.home : 0);
	if (vdi_db_step(db, st, "recording the request", err) < 0)
		goto out;
	*id = vdi_stmt_int64(st, 0);
	vdi_stmt_reset(st);
	snprintf(detail, sizeof(detail), "request=%lld master=%s", (long long)*id, m.name);
	if (vdi_event_add(db, r->user, "desktop-requested", detail, err) < 0)
		goto out;
	ret = 0;
out:
	vdi_stmt_finalize(st);
	vdi_master_clear(&m);
	return vdi_db_finish(db, ret, err);
}

int
vdi_request_list(struct vdi_db *db, const char *state, const char *user, struct vdi_request **out, size_t *n,
		 struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	struct vdi_request *v = NULL;
	size_t k = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (vdi_db_prepare(db, &st, "SELECT id, username, master, state, detail, mem, vcpus, disk, created, changed, "
			   "coalesce(home, 0) FROM requests WHERE (state = ?1 OR ?1 IS NULL) AND (username = ?2 OR ?2 IS NULL) ORDER BY id",
			   err) < 0)
		return -1;
	vdi_stmt_bind_text(st, 1, state);
	vdi_stmt_bind_text(st, 2, user);
	while ((rc = vdi_stmt_step(st)) == VDI_DB_ROW) {
		v = vdi_grow(v, k, sizeof(*v));
		v[k].id = vdi_stmt_int64(st, 0);
		v[k].user = vdi_stmt_strdup(st, 1);
		v[k].master = vdi_stmt_strdup(st, 2);
		v[k].state = vdi_stmt_strdup(st, 3);
		v[k].detail = vdi_stmt_strdup(st, 4);
		v[k].mem = vdi_stmt_int64(st, 5);
		v[k].vcpus = vdi_stmt_int64(st, 6);
		v[k].disk = vdi_stmt_int64(st, 7);
		v[k].created = vdi_stmt_int64(st, 8);
		v[k].changed = vdi_stmt_int64(st, 9);
		v[k].home = vdi_stmt_int64(st, 10);
		k++;
	}
	vdi_stmt_finalize(st);
	if (rc != VDI_DB_DONE) {
		vdi_requests_free(v, k);
		return vdi_db_fail(db, "reading requests", err);
	}
	*out = v;
	*n = k;
	return 0;
}

int
vdi_request_finish(struct vdi_db *db, int64_t id, const char *state, const char *detail, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	char user[128] = "", action[64], ev[320];
	int rc, ret = -1;

	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	if (vdi_db_prepare(db, &st, "UPDATE requests SET state = ?2, detail = ?3, changed = ?4 "
			   "WHERE id = ?1 AND state = 'pending' RETURNING username", err) < 0)
		goto out;
	vdi_stmt_bind_int64(st, 1, id);
	vdi_stmt_bind_text(st, 2, state);
	vdi_stmt_bind_text(st, 3, detail);
	vdi_stmt_bind_int64(st, 4, vdi_clock_now());
	rc = vdi_stmt_step(st);
	if (rc == VDI_DB_ROW)
		snprintf(user, sizeof(user), "%s", vdi_stmt_text(st, 0));
	vdi_stmt_finalize(st);
	st = NULL;
	if (rc == VDI_DB_DONE) {
		vdi_err_set(err, VDI_R_NOTFOUND, "request %lld is not pending", (long long)id);
		goto out;
	}
	if (rc != VDI_DB_ROW) {
		vdi_db_fail(db, "finishing the request", err);
		goto out;
	}
	snprintf(action, sizeof(action), "request-%s", state);
	snprintf(ev, sizeof(ev), "request=%lld%s%s", (long long)id, detail ? " " : "", detail ? detail : "");
	if (vdi_event_add(db, user, action, ev, err) < 0)
		goto out;
	ret = 0;
out:
	vdi_stmt_finalize(st);
	return vdi_db_finish(db, ret, err);
}

void
vdi_requests_free(struct vdi_request *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(r[i].user);
		free(r[i].master);
		free(r[i].state);
		free(r[i].detail);
	}
	free(r);
}
