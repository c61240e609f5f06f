/* uservm.c - user VMs in the VMDB (see uservm.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "event.h"
#include "master.h"
#include "session.h"
#include "uservm.h"
#include "strv.h"

void
vdi_uservm_volumes(const char *user, char *disk, size_t dlen, char *seed, size_t slen)
{
	snprintf(disk, dlen, "user-%s.qcow2", user);
	snprintf(seed, slen, "user-%s-seed.iso", user);
}

int
vdi_uservm_claim(struct vdi_db *db, const struct vdi_uservm_spec *u, int64_t *id, bool *takeover,
		 enum vdi_home_how *how, int64_t *home_size, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	char disk[128], seed[128];

	vdi_uservm_volumes(u->user, disk, sizeof(disk), seed, sizeof(seed));
	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	if (vdi_db_claim(db, "uservms", "username", u->user, "creating", "user", "has a user VM already", "copied",
			 takeover, err) < 0)
		goto fail;
	if (vdi_db_prepare(db, &st, "INSERT INTO uservms (username, state, master_id, pool, volume, seed, hostname, "
			   "mem, vcpus, disk, expires, pid, created, owner, lease) "
			   "VALUES (?, 'creating', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id", err) < 0)
		goto fail;
	vdi_stmt_bind_text(st, 1, u->user);
	vdi_stmt_bind_int64(st, 2, u->master_id);
	vdi_stmt_bind_text(st, 3, u->pool);
	vdi_stmt_bind_text(st, 4, disk);
	vdi_stmt_bind_text(st, 5, seed);
	vdi_stmt_bind_text(st, 6, u->hostname);
	vdi_stmt_bind_int64(st, 7, u->mem);
	vdi_stmt_bind_int64(st, 8, u->vcpus);
	vdi_stmt_bind_int64(st, 9, u->disk);
	if (u->expires > 0)
		vdi_stmt_bind_int64(st, 10, u->expires);
	vdi_stmt_bind_int64(st, 11, (int64_t)getpid());
	vdi_stmt_bind_int64(st, 12, vdi_clock_now());
	vdi_db_bind_claim(db, st, 13);
	if (vdi_db_step(db, st, "claiming user VM", err) < 0)
		goto fail;
	*id = vdi_stmt_int64(st, 0);
	vdi_stmt_reset(st);
	if (vdi_db_insert_names(db, "INSERT INTO uservm_tags (uservm_id, tag) VALUES (?, ?) ON CONFLICT DO NOTHING", *id,
				u->tags, u->ntags, "recording user VM", err) < 0 ||
	    vdi_db_insert_names(db, "INSERT INTO uservm_apps (uservm_id, app) VALUES (?, ?) ON CONFLICT DO NOTHING", *id,
				u->apps, u->napps, "recording user VM", err) < 0)
		goto fail;
	*home_size = u->home;
	if (vdi_home_claim(db, u->user, u->pool, home_size, how, err) < 0)
		goto fail;
	vdi_stmt_finalize(st);
	return vdi_db_commit(db, err);
fail:
	vdi_stmt_finalize(st);
	vdi_db_rollback(db);
	return -1;
}

int
vdi_uservm_made(struct vdi_db *db, int64_t id, bool prepare, const char *action, const char *detail,
		int64_t home_used, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	char user[128];

	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	/* Preparing keeps this process's pid: it waits for the first boot. */
	if (vdi_db_prepare(db, &st, "UPDATE uservms SET state = ?2, pid = CASE WHEN ?2 = 'ready' THEN NULL ELSE pid END "
			   "WHERE id = ?1 AND state = 'creating' RETURNING username", err) < 0)
		goto fail;
	vdi_stmt_bind_int64(st, 1, id);
	vdi_stmt_bind_text(st, 2, prepare ? "preparing" : "ready");
	switch (vdi_db_step_row(db, st, "recording the user VM", err)) {
	case 1:
		break;
	case 0:
		vdi_err_set(err, VDI_R_CLAIM_LOST, "the user VM's claim was lost (taken over or removed)");
		goto fail;
	default:
		goto fail;
	}
	snprintf(user, sizeof(user), "%s", vdi_stmt_text(st, 0));
	vdi_stmt_finalize(st);
	st = NULL;
	if (vdi_db_prepare(db, &st, "UPDATE homes SET state = 'ready', used = ?2, used_seen = ?3 WHERE username = ?1 "
			   "AND (state = 'creating' OR ?2 > 0)", err) < 0)
		goto fail;
	vdi_stmt_bind_text(st, 1, user);
	vdi_stmt_bind_int64(st, 2, home_used);
	vdi_stmt_bind_int64(st, 3, vdi_clock_now());
	if (vdi_db_step(db, st, "recording the home disk", err) < 0)
		goto fail;
	vdi_stmt_finalize(st);
	st = NULL;
	if (action && vdi_event_add(db, user, action, detail, err) < 0)
		goto fail;
	return vdi_db_commit(db, err);
fail:
	vdi_stmt_finalize(st);
	vdi_db_rollback(db);
	return -1;
}

int
vdi_uservm_retry(struct vdi_db *db, const char *user, int64_t *id, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int64_t pid = 0, lease = 0;
	char owner[160];
	const char *state;
	bool retry = false;
	int rc;

	*id = 0;
	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	if (vdi_db_prepare(db, &st, "SELECT id, state, coalesce(pid, 0), EXISTS (SELECT 1 FROM sessions s WHERE "
			   "s.uservm_id = u.id AND s.state <> 'ended'), owner, coalesce(lease, 0), updating_from IS NOT NULL "
			   "FROM uservms u WHERE username = ?", err) < 0)
		goto fail;
	vdi_stmt_bind_text(st, 1, user);
	rc = vdi_stmt_step(st);
	if (rc == VDI_DB_ROW) {
		*id = vdi_stmt_int64(st, 0);
		state = vdi_stmt_text(st, 1);
		pid = vdi_stmt_int64(st, 2);
		vdi_stmt_claim(st, 4, owner, sizeof(owner), &lease);
		/*
		 * Failed, or preparing with nobody left to wait for it and no
		 * first boot running, or an update whose process died half way.
		 */
		retry = strcmp(state, "failed") == 0 ||
			(strcmp(state, "preparing") == 0 && !vdi_stmt_int(st, 3) && !vdi_claim_alive(pid, owner, lease)) ||
			(strcmp(state, "creating") == 0 && vdi_stmt_int(st, 6) && !vdi_claim_alive(pid, owner, lease));
	} else if (rc != VDI_DB_DONE) {
		vdi_db_fail(db, "reading user VM", err);
		goto fail;
	}
	vdi_stmt_finalize(st);
	st = NULL;
	if (!retry) {
		vdi_db_rollback(db);
		return 0;
	}
	if (vdi_db_prepare(db, &st, "UPDATE uservms SET state = 'creating', pid = ?2, owner = ?3, lease = ?4, "
			   "warm = NULL WHERE id = ?1", err) < 0)
		goto fail;
	vdi_stmt_bind_int64(st, 1, *id);
	vdi_stmt_bind_int64(st, 2, (int64_t)getpid());
	vdi_db_bind_claim(db, st, 3);
	if (vdi_db_step(db, st, "claiming user VM", err) < 0 ||
	    vdi_event_add(db, user, "uservm-retry", "its disk is made again from the master", err) < 0)
		goto fail;
	vdi_stmt_finalize(st);
	return vdi_db_commit(db, err) < 0 ? -1 : 1;
fail:
	vdi_stmt_finalize(st);
	vdi_db_rollback(db);
	return -1;
}

int
vdi_uservm_update_claim(struct vdi_db *db, int64_t id, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	char user[128], detail[300];
	int rc, ret = -1;

	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	/*
	 * The row is locked by this UPDATE before the session check: vm-assign
	 * claims a session under the same row's lock (PostgreSQL: FOR UPDATE),
	 * so the two never both win.
	 */
	if (vdi_db_prepare(db, &st, "UPDATE uservms SET state = 'creating', pid = ?2, owner = ?3, lease = ?4, "
			   "warm = NULL, updating_from = master_id, "
			   "master_id = (SELECT m.replaced_by FROM masters m WHERE m.id = uservms.master_id) "
			   "WHERE id = ?1 AND state IN ('ready', 'failed') AND "
			   "(SELECT m.replaced_by FROM masters m WHERE m.id = uservms.master_id) IS NOT NULL "
			   "RETURNING username, (SELECT m.name FROM masters m WHERE m.id = uservms.master_id), "
			   "(SELECT m.name FROM masters m WHERE m.id = uservms.updating_from)", err) < 0)
		goto out;
	vdi_stmt_bind_int64(st, 1, id);
	vdi_stmt_bind_int64(st, 2, (int64_t)getpid());
	vdi_db_bind_claim(db, st, 3);
	if ((rc = vdi_db_step_row(db, st, "claiming the user VM for its update", err)) <= 0) {
		ret = rc;
		goto out;
	}
	snprintf(user, sizeof(user), "%s", vdi_stmt_text(st, 0));
	snprintf(detail, sizeof(detail), "from master %s to %s", vdi_stmt_text(st, 2), vdi_stmt_text(st, 1));
	vdi_stmt_finalize(st);
	st = NULL;
	if (vdi_db_prepare(db, &st, "SELECT 1 FROM sessions WHERE uservm_id = ? AND state <> 'ended'", err) < 0)
		goto out;
	vdi_stmt_bind_int64(st, 1, id);
	if ((rc = vdi_db_step_row(db, st, "reading sessions", err)) != 0) {
		ret = rc < 0 ? -1 : 0; /* a session runs: later */
		goto out;
	}
	if (vdi_event_add(db, user, "uservm-update", detail, err) < 0)
		goto out;
	vdi_stmt_finalize(st);
	st = NULL;
	return vdi_db_commit(db, err) < 0 ? -1 : 1;
out:
	vdi_stmt_finalize(st);
	vdi_db_rollback(db);
	return ret;
}

int
vdi_uservm_update_due(struct vdi_db *db, struct vdi_uservm **out, size_t *n, size_t *busy, struct vdi_err *err)
{
	struct vdi_uservm *us = NULL;
	size_t nus = 0;

	*out = NULL;
	*n = 0;
	*busy = 0;
	if (vdi_uservm_list(db, NULL, 0, &us, &nus, err) < 0)
		return -1;
	for (size_t i = 0; i < nus; i++) {
		struct vdi_uservm *u = &us[i];
		bool stale = u->update_to && (strcmp(u->state, "ready") == 0 || strcmp(u->state, "failed") == 0);
		/* Half way (a dead process's): creating or preparing with nobody alive on it, or failed. */
		bool stuck = u->updating_from && !u->session_id &&
			     (strcmp(u->state, "failed") == 0 || !vdi_claim_alive(u->pid, u->owner, u->lease));
		if (stale && u->session_id) {
			(*busy)++;
			continue;
		}
		if (!stale && !stuck)
			continue;
		*out = vdi_grow(*out, *n, sizeof(**out));
		(*out)[(*n)++] = *u;
		memset(u, 0, sizeof(*u));
	}
	vdi_uservms_free(us, nus);
	return 0;
}

int
vdi_uservm_fail(struct vdi_db *db, int64_t id, const char *detail, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int ret = -1;

	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	if (vdi_db_prepare(db, &st, "UPDATE uservms SET state = 'failed', pid = NULL WHERE id = ? AND "
			   "state IN ('creating', 'preparing') RETURNING username", err) < 0)
		goto out;
	vdi_stmt_bind_int64(st, 1, id);
	if (vdi_stmt_step(st) == VDI_DB_ROW) {
		char user[128];
		snprintf(user, sizeof(user), "%s", vdi_stmt_text(st, 0));
		vdi_stmt_finalize(st);
		st = NULL;
		if (vdi_event_add(db, user, "uservm-failed", detail, err) < 0)
			goto out;
	}
	ret = vdi_db_commit(db, err);
out:
	vdi_stmt_finalize(st);
	if (ret < 0)
		vdi_db_rollback(db);
	return ret;
}

int
vdi_uservm_unclaim(struct vdi_db *db, int64_t id, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	char user[128];
	int ret;

	/* A row with history (a retry) is not forgotten: it is failed (vdi_uservm_fail). */
	if (vdi_db_prepare(db, &st, "DELETE FROM uservms WHERE id = ? AND state = 'creating' AND NOT EXISTS "
			   "(SELECT 1 FROM sessions s WHERE s.uservm_id = uservms.id) RETURNING username", err) < 0)
		return -1;
	vdi_stmt_bind_int64(st, 1, id);
	ret = vdi_db_step_row(db, st, "forgetting failed user VM", err);
	if (ret == 1)
		snprintf(user, sizeof(user), "%s", vdi_stmt_text(st, 0));
	vdi_stmt_finalize(st);
	st = NULL;
	if (ret <= 0)
		return ret;
	/* Its home disk row too, if this copy made it (the caller deleted the volume). */
	if (vdi_db_prepare(db, &st, "DELETE FROM homes WHERE username = ? AND state = 'creating'", err) < 0)
		return -1;
	vdi_stmt_bind_text(st, 1, user);
	ret = vdi_db_step(db, st, "forgetting the home disk", err);
	vdi_stmt_finalize(st);
	return ret;
}

static int
read_list(struct vdi_db *db, const char *sql, int64_t id, char ***v, size_t *n, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int rc;

	if (vdi_db_prepare(db, &st, sql, err) < 0)
		return -1;
	vdi_stmt_bind_int64(st, 1, id);
	while ((rc = vdi_stmt_step(st)) == VDI_DB_ROW) {
		vdi_strv_push(v, n, vdi_stmt_strdup(st, 0));
	}
	vdi_stmt_finalize(st);
	return rc == VDI_DB_DONE ? 0 : vdi_db_fail(db, "reading user VM", err);
}

#define USERVM_SELECT \
	"SELECT u.id, u.username, u.state, m.name, u.pool, u.volume, u.seed, u.hostname, u.master_id," \
	" u.mem, u.vcpus, u.disk, u.expires, u.created, u.pid, s.id, s.state, h.name, u.owner," \
	" coalesce(u.lease, 0), coalesce(u.warm, 0), coalesce(u.warm_built, 0), coalesce(u.warm_failed, 0)," \
	" (SELECT max(w.id) FROM sessions w WHERE w.uservm_id = u.id AND w.kind = 'warm'" \
	"  AND w.state <> 'ended'), s.kind, coalesce(s.warm, 0)," \
	" hm.volume, coalesce(hm.size, 0), coalesce(hm.used, 0), hm.state, r.name, f.name," \
	" m.update_forced" \
	" FROM uservms u JOIN masters m ON m.id = u.master_id" \
	" LEFT JOIN sessions s ON s.uservm_id = u.id AND s.state <> 'ended'" \
	" LEFT JOIN hosts h ON h.id = s.host_id" \
	" LEFT JOIN homes hm ON hm.username = u.username" \
	" LEFT JOIN masters r ON r.id = m.replaced_by" \
	" LEFT JOIN masters f ON f.id = u.updating_from"

int
vdi_uservm_list(struct vdi_db *db, char *const *users, size_t nusers, struct vdi_uservm **out,
		size_t *nout, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	struct vdi_uservm *us = NULL;
	size_t n = 0;
	int rc, ret = -1;
	bool began;

	*out = NULL;
	*nout = 0;
	if (vdi_db_read_begin(db, &began, err) < 0)
		return -1;
	/* One user by its unique index, or every one: never a scan per named user (an OR would be one). */
	if (vdi_db_prepare(db, &st, users ? USERVM_SELECT " WHERE u.username = ?1 ORDER BY u.username" :
			   USERVM_SELECT " ORDER BY u.username", err) < 0)
		goto out;
	for (size_t k = 0; k < (users ? nusers : 1); k++) {
		bool found = false;
		vdi_stmt_reset(st);
		if (users)
			vdi_stmt_bind_text(st, 1, users[k]);
		while ((rc = vdi_stmt_step(st)) == VDI_DB_ROW) {
			struct vdi_uservm *t = vdi_grow(us, n, sizeof(*t)), *u;
			us = t;
			u = &us[n++];
			memset(u, 0, sizeof(*u));
			found = true;
			u->id = vdi_stmt_int64(st, 0);
			u->user = vdi_stmt_strdup(st, 1);
			u->state = vdi_stmt_strdup(st, 2);
			u->master = vdi_stmt_strdup(st, 3);
			u->pool = vdi_stmt_strdup(st, 4);
			u->volume = vdi_stmt_strdup(st, 5);
			u->seed = vdi_stmt_strdup(st, 6);
			u->hostname = vdi_stmt_strdup(st, 7);
			u->master_id = vdi_stmt_int64(st, 8);
			u->mem = vdi_stmt_int64(st, 9);
			u->vcpus = vdi_stmt_int64(st, 10);
			u->disk = vdi_stmt_int64(st, 11);
			u->expires = vdi_stmt_int64(st, 12);
			u->created = vdi_stmt_int64(st, 13);
			u->pid = vdi_stmt_int64(st, 14);
			u->session_id = vdi_stmt_int64(st, 15);
			u->session_state = vdi_stmt_strdup(st, 16);
			u->session_host = vdi_stmt_strdup(st, 17);
			vdi_stmt_claim(st, 18, u->owner, sizeof(u->owner), &u->lease);
			u->warm = vdi_stmt_int64(st, 20);
			u->warm_built = vdi_stmt_int64(st, 21);
			u->warm_failed = vdi_stmt_int64(st, 22);
			u->warm_building = vdi_stmt_int64(st, 23);
			u->session_kind = vdi_stmt_strdup(st, 24);
			u->session_warm = vdi_stmt_int64(st, 25);
			u->home = vdi_stmt_strdup(st, 26);
			u->home_size = vdi_stmt_int64(st, 27);
			u->home_used = vdi_stmt_int64(st, 28);
			u->home_state = vdi_stmt_strdup(st, 29);
			u->update_to = vdi_stmt_strdup(st, 30);
			u->updating_from = vdi_stmt_strdup(st, 31);
			u->update_forced = vdi_stmt_int(st, 32) != 0;
			if (read_list(db, "SELECT tag FROM uservm_tags WHERE uservm_id = ? ORDER BY tag", u->id,
				      &u->tags, &u->ntags, err) < 0 ||
			    read_list(db, "SELECT app FROM uservm_apps WHERE uservm_id = ? ORDER BY app", u->id,
				      &u->apps, &u->napps, err) < 0)
				goto out;
		}
		if (rc != VDI_DB_DONE) {
			vdi_db_fail(db, "listing user VMs", err);
			goto out;
		}
		if (users && !found) {
			vdi_err_set(err, VDI_R_NO_USER, "user '%s' has no user VM", users[k]);
			goto out;
		}
	}
	*out = us;
	*nout = n;
	us = NULL;
	ret = 0;
out:
	vdi_stmt_finalize(st);
	vdi_db_read_end(db, began);
	if (us)
		vdi_uservms_free(us, n);
	return ret;
}

int
vdi_uservm_get(struct vdi_db *db, const char *user, struct vdi_uservm *u, struct vdi_err *err)
{
	struct vdi_uservm *us;
	size_t n;
	char *users[1] = { (char *)user };

	if (vdi_uservm_list(db, users, 1, &us, &n, err) < 0)
		return -1;
	*u = us[0];
	free(us);
	return 0;
}

void
vdi_uservm_clear(struct vdi_uservm *u)
{
	free(u->user);
	free(u->state);
	free(u->master);
	free(u->pool);
	free(u->volume);
	free(u->seed);
	free(u->hostname);
	free(u->session_state);
	free(u->session_host);
	free(u->session_kind);
	free(u->home);
	free(u->home_state);
	free(u->update_to);
	free(u->updating_from);
	vdi_strv_free(u->tags, u->ntags);
	vdi_strv_free(u->apps, u->napps);
	memset(u, 0, sizeof(*u));
}

void
vdi_uservms_free(struct vdi_uservm *us, size_t n)
{
	for (size_t i = 0; i < n; i++)
		vdi_uservm_clear(&us[i]);
	free(us);
}

int
vdi_uservm_rm_begin(struct vdi_db *db, const char *user, struct vdi_uservm *u, struct vdi_err *err)
{
	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	if (vdi_uservm_get(db, user, u, err) < 0)
		goto fail;
	if (strcmp(u->state, "creating") == 0 && vdi_claim_elsewhere(u->pid, u->owner, u->lease)) {
		vdi_err_set(err, VDI_R_CONFLICT, "user '%s' is being copied by process %lld", user,
			    (long long)u->pid);
		goto fail_clear;
	}
	if (u->session_id) {
		vdi_err_set(err, VDI_R_CONFLICT, "user '%s' has session %lld (%s on %s); end it "
			    "with vm-reap, or use --force", user, (long long)u->session_id,
			    u->session_state, u->session_host ? u->session_host : "no host");
		goto fail_clear;
	}
	return vdi_db_commit(db, err);
fail_clear:
	vdi_uservm_clear(u);
fail:
	vdi_db_rollback(db);
	return -1;
}

int
vdi_uservm_rm_row(struct vdi_db *db, int64_t id, const char *user, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;

	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	/* Ended sessions are history of a user VM that is gone: they go with it. */
	if (vdi_session_forget_ended(db, id, err) < 0)
		goto fail;
	if (vdi_db_prepare(db, &st, "DELETE FROM uservms WHERE id = ?", err) < 0)
		goto fail;
	vdi_stmt_bind_int64(st, 1, id);
	if (vdi_db_step(db, st, "removing user VM", err) < 0)
		goto fail;
	vdi_stmt_finalize(st);
	st = NULL;
	if (vdi_event_add(db, user, "uservm-rm", NULL, err) < 0)
		goto fail;
	return vdi_db_commit(db, err);
fail:
	vdi_stmt_finalize(st);
	vdi_db_rollback(db);
	return -1;
}

int
vdi_uservm_list_unwatched(struct vdi_db *db, struct vdi_uservm **out, size_t *n, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	struct vdi_uservm *us = NULL;
	size_t k = 0;
	int rc;

	*out = NULL;
	*n = 0;
	/* Only the few preparing rows: vm-reap runs this every time, on every user VM there is. */
	if (vdi_db_prepare(db, &st, "SELECT id, username, state, coalesce(pid, 0), owner, coalesce(lease, 0) FROM uservms u "
			   "WHERE state = 'preparing' "
			   "AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.uservm_id = u.id AND s.state <> 'ended')",
			   err) < 0)
		return -1;
	while ((rc = vdi_stmt_step(st)) == VDI_DB_ROW) {
		struct vdi_uservm u = { 0 };
		/* ... and nobody alive waiting to start its first boot. */
		vdi_stmt_claim(st, 4, u.owner, sizeof(u.owner), &u.lease);
		if (vdi_claim_alive(vdi_stmt_int64(st, 3), u.owner, u.lease))
			continue;
		u.id = vdi_stmt_int64(st, 0);
		u.user = vdi_stmt_strdup(st, 1);
		u.state = vdi_stmt_strdup(st, 2);
		us = vdi_grow(us, k, sizeof(*us));
		us[k++] = u;
	}
	vdi_stmt_finalize(st);
	if (rc != VDI_DB_DONE) {
		vdi_uservms_free(us, k);
		return vdi_db_fail(db, "reading user VMs", err);
	}
	*out = us;
	*n = k;
	return 0;
}

int
vdi_uservm_warm_drop(struct vdi_db *db, int64_t id, int64_t build, int64_t session, const char *detail,
		     struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	char user[128] = "";
	int rc;

	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	if (vdi_db_prepare(db, &st, "UPDATE uservms SET warm = NULL WHERE id = ?1 AND warm = ?2 "
			   "RETURNING username", err) < 0)
		goto fail;
	vdi_stmt_bind_int64(st, 1, id);
	vdi_stmt_bind_int64(st, 2, build);
	rc = vdi_db_step_row(db, st, "dropping the warm image", err);
	if (rc == 1)
		snprintf(user, sizeof(user), "%s", vdi_stmt_text(st, 0));
	vdi_stmt_finalize(st);
	st = NULL;
	if (rc < 0)
		goto fail;
	/* 0 rows: dropped or rebuilt meanwhile; the event is still the session's. */
	if (vdi_event_add_session(db, user[0] ? user : "?", session, "session-warm-fallback", detail, err) < 0)
		goto fail;
	return vdi_db_commit(db, err);
fail:
	vdi_stmt_finalize(st);
	vdi_db_rollback(db);
	return -1;
}

int
vdi_uservm_warm_keep(struct vdi_db *db, int64_t **ids, size_t *n, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int rc;

	*ids = NULL;
	*n = 0;
	if (vdi_db_prepare(db, &st, "SELECT warm FROM uservms WHERE warm IS NOT NULL "
			   "UNION SELECT id FROM sessions WHERE kind = 'warm' AND state <> 'ended' "
			   "UNION SELECT warm FROM sessions WHERE warm IS NOT NULL AND state <> 'ended'", err) < 0)
		return -1;
	while ((rc = vdi_stmt_step(st)) == VDI_DB_ROW) {
		*ids = vdi_grow(*ids, *n, sizeof(**ids));
		(*ids)[(*n)++] = vdi_stmt_int64(st, 0);
	}
	vdi_stmt_finalize(st);
	if (rc != VDI_DB_DONE) {
		free(*ids);
		*ids = NULL;
		*n = 0;
		return vdi_db_fail(db, "listing the warm images in use", err);
	}
	return 0;
}
