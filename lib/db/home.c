/* home.c - the users' home disks in the VMDB (see home.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "event.h"
#include "home.h"
#include "mem.h"

#define HOME_SELECT \
	"SELECT hm.id, hm.username, hm.state, hm.pool, hm.volume, hm.size, coalesce(hm.used, 0), " \
	"coalesce(hm.used_seen, 0), hm.created, coalesce(hm.resized, 0), " \
	"coalesce((SELECT s.id FROM sessions s JOIN uservms u ON u.id = s.uservm_id " \
	"          WHERE u.username = hm.username AND s.state <> 'ended'), 0), " \
	"EXISTS (SELECT 1 FROM uservms u WHERE u.username = hm.username) FROM homes hm "

void
vdi_home_volume(const char *user, char *buf, size_t len)
{
	snprintf(buf, len, "home-%s.qcow2", user);
}

static void
read_home(struct vdi_stmt *st, struct vdi_home *h)
{
	memset(h, 0, sizeof(*h));
	h->id = vdi_stmt_int64(st, 0);
	h->user = vdi_stmt_strdup(st, 1);
	h->state = vdi_stmt_strdup(st, 2);
	h->pool = vdi_stmt_strdup(st, 3);
	h->volume = vdi_stmt_strdup(st, 4);
	h->size = vdi_stmt_int64(st, 5);
	h->used = vdi_stmt_int64(st, 6);
	h->used_seen = vdi_stmt_int64(st, 7);
	h->created = vdi_stmt_int64(st, 8);
	h->resized = vdi_stmt_int64(st, 9);
	h->session_id = vdi_stmt_int64(st, 10);
	h->uservm = vdi_stmt_int(st, 11) != 0;
}

void
vdi_home_clear(struct vdi_home *h)
{
	free(h->user);
	free(h->state);
	free(h->pool);
	free(h->volume);
	memset(h, 0, sizeof(*h));
}

void
vdi_homes_free(struct vdi_home *hs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		vdi_home_clear(&hs[i]);
	free(hs);
}

int
vdi_home_get(struct vdi_db *db, const char *user, struct vdi_home *h, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int rc, ret = -1;

	memset(h, 0, sizeof(*h));
	if (vdi_db_prepare(db, &st, HOME_SELECT "WHERE hm.username = ?", err) < 0)
		return -1;
	vdi_stmt_bind_text(st, 1, user);
	rc = vdi_stmt_step(st);
	if (rc == VDI_DB_ROW) {
		read_home(st, h);
		ret = 1;
	} else if (rc == VDI_DB_DONE) {
		ret = 0;
	} else {
		vdi_db_fail(db, "reading the home disk", err);
	}
	vdi_stmt_finalize(st);
	return ret;
}

int
vdi_home_list(struct vdi_db *db, bool orphans, struct vdi_home **out, size_t *n, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int rc;

	*out = NULL;
	*n = 0;
	if (vdi_db_prepare(db, &st, orphans ? HOME_SELECT "WHERE NOT EXISTS (SELECT 1 FROM uservms u WHERE "
			   "u.username = hm.username) ORDER BY hm.username" : HOME_SELECT "ORDER BY hm.username", err) < 0)
		return -1;
	while ((rc = vdi_stmt_step(st)) == VDI_DB_ROW) {
		*out = vdi_grow(*out, *n, sizeof(**out));
		read_home(st, &(*out)[(*n)++]);
	}
	vdi_stmt_finalize(st);
	if (rc != VDI_DB_DONE) {
		vdi_homes_free(*out, *n);
		*out = NULL;
		*n = 0;
		return vdi_db_fail(db, "listing home disks", err);
	}
	return 0;
}

int
vdi_home_claim(struct vdi_db *db, const char *user, const char *pool, int64_t *size, enum vdi_home_how *how,
	       struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	struct vdi_home h;
	char vol[160];
	int rc, ret = -1;

	*how = VDI_HOME_NONE;
	if ((rc = vdi_home_get(db, user, &h, err)) < 0)
		return -1;
	if (rc == 1) {
		if (strcmp(h.pool, pool) != 0) {
			vdi_err_set(err, VDI_R_CONFLICT, "its home disk is in pool %s, the master's pool is %s; "
				    "a user VM's sessions reach its home disk only in its own pool", h.pool, pool);
			goto out;
		}
		if (strcmp(h.state, "ready") == 0) {
			*size = h.size;
			*how = VDI_HOME_KEPT;
			ret = 0;
			goto out;
		}
		/* A dead copy's: its volume never served a session; made again, at the size asked now. */
		if (*size <= 0)
			*size = h.size;
		if (vdi_db_prepare(db, &st, "UPDATE homes SET size = ? WHERE id = ?", err) < 0)
			goto out;
		vdi_stmt_bind_int64(st, 1, *size);
		vdi_stmt_bind_int64(st, 2, h.id);
		if (vdi_db_step(db, st, "claiming the home disk", err) < 0)
			goto out;
		*how = VDI_HOME_REMAKE;
		ret = 0;
		goto out;
	}
	if (*size <= 0) {
		ret = 0;
		goto out;
	}
	vdi_home_volume(user, vol, sizeof(vol));
	if (vdi_db_prepare(db, &st, "INSERT INTO homes (username, state, pool, volume, size, created) "
			   "VALUES (?, 'creating', ?, ?, ?, ?)", err) < 0)
		goto out;
	vdi_stmt_bind_text(st, 1, user);
	vdi_stmt_bind_text(st, 2, pool);
	vdi_stmt_bind_text(st, 3, vol);
	vdi_stmt_bind_int64(st, 4, *size);
	vdi_stmt_bind_int64(st, 5, vdi_clock_now());
	if (vdi_db_step(db, st, "claiming the home disk", err) < 0)
		goto out;
	*how = VDI_HOME_NEW;
	ret = 0;
out:
	vdi_stmt_finalize(st);
	vdi_home_clear(&h);
	return ret;
}

int
vdi_home_resize_check(struct vdi_db *db, const char *user, int64_t size, struct vdi_home *h, struct vdi_err *err)
{
	int rc = vdi_home_get(db, user, h, err);

	if (rc < 0)
		return -1;
	if (rc == 0 || strcmp(h->state, "ready") != 0) {
		vdi_err_set(err, VDI_R_NOTFOUND, "user '%s' has no home disk", user);
		goto fail;
	}
	if (h->session_id) {
		vdi_err_set(err, VDI_R_CONFLICT, "user '%s' has session %lld: a home disk grows only between "
			    "sessions", user, (long long)h->session_id);
		goto fail;
	}
	if (size < h->size) {
		vdi_err_set(err, VDI_R_USAGE, "its home disk is %lld MiB: a home disk only grows, never shrinks "
			    "(asked for %lld MiB)", (long long)(h->size >> 20), (long long)(size >> 20));
		goto fail;
	}
	return size == h->size ? 1 : 0;
fail:
	vdi_home_clear(h);
	return -1;
}

int
vdi_home_resized(struct vdi_db *db, const struct vdi_home *h, int64_t size, int64_t used, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	char detail[128];

	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	if (vdi_db_prepare(db, &st, "UPDATE homes SET size = ?2, used = ?3, used_seen = ?4, resized = ?4 "
			   "WHERE id = ?1", err) < 0)
		goto fail;
	vdi_stmt_bind_int64(st, 1, h->id);
	vdi_stmt_bind_int64(st, 2, size);
	vdi_stmt_bind_int64(st, 3, used);
	vdi_stmt_bind_int64(st, 4, vdi_clock_now());
	if (vdi_db_step(db, st, "recording the home disk", err) < 0)
		goto fail;
	vdi_stmt_finalize(st);
	st = NULL;
	snprintf(detail, sizeof(detail), "from %lld to %lld bytes", (long long)h->size, (long long)size);
	if (vdi_event_add(db, h->user, "home-resized", detail, err) < 0)
		goto fail;
	return vdi_db_commit(db, err);
fail:
	vdi_stmt_finalize(st);
	vdi_db_rollback(db);
	return -1;
}

int
vdi_home_set_used(struct vdi_db *db, const char *user, int64_t used, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int ret;

	if (vdi_db_prepare(db, &st, "UPDATE homes SET used = ?, used_seen = ? WHERE username = ?", err) < 0)
		return -1;
	vdi_stmt_bind_int64(st, 1, used);
	vdi_stmt_bind_int64(st, 2, vdi_clock_now());
	vdi_stmt_bind_text(st, 3, user);
	ret = vdi_db_step(db, st, "recording the home disk's use", err);
	vdi_stmt_finalize(st);
	return ret;
}

int
vdi_home_rm_row(struct vdi_db *db, const char *user, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;

	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	if (vdi_db_prepare(db, &st, "DELETE FROM homes WHERE username = ?1 AND NOT EXISTS "
			   "(SELECT 1 FROM uservms u WHERE u.username = ?1) RETURNING id", err) < 0)
		goto fail;
	vdi_stmt_bind_text(st, 1, user);
	switch (vdi_db_step_row(db, st, "forgetting the home disk", err)) {
	case 1:
		break;
	case 0:
		vdi_err_set(err, VDI_R_CONFLICT, "user '%s' has a user VM again (or no home disk): home disk kept", user);
		goto fail;
	default:
		goto fail;
	}
	vdi_stmt_finalize(st);
	st = NULL;
	if (vdi_event_add(db, user, "home-purged", "its home disk was deleted", err) < 0)
		goto fail;
	return vdi_db_commit(db, err);
fail:
	vdi_stmt_finalize(st);
	vdi_db_rollback(db);
	return -1;
}
