/* assign.c - choosing and reserving a host for a session in the VMDB (see assign.h). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mem.h"
#include "assign.h"

struct uvm {
	int64_t id, mem, vcpus, ntags;
	char state[16], pool[80];
};

static int
load_uservm(struct vdi_db *db, const char *user, bool prepare, struct uvm *u, struct vdi_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (vdi_db_prepare(db, &st, "SELECT id, state, pool, mem, vcpus, "
			   "(SELECT count(*) FROM uservm_tags t WHERE t.uservm_id = u.id) FROM uservms u WHERE user = ?",
			   err) < 0)
		return -1;
	sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		u->id = sqlite3_column_int64(st, 0);
		snprintf(u->state, sizeof(u->state), "%s", (const char *)sqlite3_column_text(st, 1));
		snprintf(u->pool, sizeof(u->pool), "%s", (const char *)sqlite3_column_text(st, 2));
		u->mem = sqlite3_column_int64(st, 3);
		u->vcpus = sqlite3_column_int64(st, 4);
		u->ntags = sqlite3_column_int64(st, 5);
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return vdi_err_set(err, VDI_ENOTFOUND, "user '%s' has no user VM (see vm-copy)", user);
	if (rc != SQLITE_ROW)
		return vdi_db_fail(db, "looking up user VM", err);
	if (prepare ? strcmp(u->state, "preparing") == 0 : strcmp(u->state, "ready") == 0)
		return 0;
	if (prepare)
		return vdi_err_set(err, VDI_ECONFLICT, "the user VM of '%s' is %s, not waiting for its first boot",
				   user, u->state);
	if (strcmp(u->state, "preparing") == 0)
		return vdi_err_set(err, VDI_ECONFLICT, "the user VM of '%s' is being prepared (its first boot)", user);
	if (strcmp(u->state, "failed") == 0)
		return vdi_err_set(err, VDI_ECONFLICT, "the first boot of the user VM of '%s' failed "
				   "(vm-copy %s again retries it)", user, user);
	return vdi_err_set(err, VDI_ECONFLICT, "the user VM of '%s' is still being made", user);
}

/* The user's session that is not ended: 1 found, 0 none, -1 error. */
static int
live_session(struct vdi_db *db, int64_t uvm, struct vdi_assign_result *res, struct vdi_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (vdi_db_prepare(db, &st, "SELECT s.id, h.name, s.mem, s.vcpus FROM sessions s LEFT JOIN hosts h ON "
			   "h.id = s.host_id WHERE s.uservm_id = ? AND s.state <> 'ended'", err) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, uvm);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		res->session_id = sqlite3_column_int64(st, 0);
		res->host = vdi_db_col_strdup(st, 1);
		res->mem = sqlite3_column_int64(st, 2);
		res->vcpus = sqlite3_column_int64(st, 3);
		res->existing = true;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return vdi_db_fail(db, "looking up sessions", err);
	return rc == SQLITE_ROW;
}

/* With move: the session must be the user's running desktop; its host goes to *from. */
static int
movable(struct vdi_db *db, int64_t uvm, int64_t id, int64_t *host, char **from, struct vdi_err *err)
{
	sqlite3_stmt *st = NULL;
	char state[16] = "", kind[16] = "";
	int rc;

	if (vdi_db_prepare(db, &st, "SELECT s.state, s.kind, coalesce(s.host_id, 0), h.name FROM sessions s "
			   "LEFT JOIN hosts h ON h.id = s.host_id WHERE s.id = ?1 AND s.uservm_id = ?2", err) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, uvm);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		snprintf(state, sizeof(state), "%s", (const char *)sqlite3_column_text(st, 0));
		snprintf(kind, sizeof(kind), "%s", (const char *)sqlite3_column_text(st, 1));
		*host = sqlite3_column_int64(st, 2);
		*from = vdi_db_col_strdup(st, 3);
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return vdi_err_set(err, VDI_ENOTFOUND, "no session %lld", (long long)id);
	if (rc != SQLITE_ROW)
		return vdi_db_fail(db, "reading the session", err);
	if (strcmp(kind, "desktop") != 0)
		return vdi_err_set(err, VDI_ECONFLICT, "session %lld is a user VM's first boot; it is not moved",
				   (long long)id);
	if (strcmp(state, "migrating") == 0)
		return vdi_err_set(err, VDI_ECONFLICT, "session %lld is being moved already", (long long)id);
	if (strcmp(state, "running") != 0 || !*from)
		return vdi_err_set(err, VDI_ECONFLICT, "session %lld is %s; only a running desktop moves",
				   (long long)id, state);
	return 0;
}

/* The hosts that have every tag the user VM needs, as a sorted array of ids. */
static int
tagged_hosts(struct vdi_db *db, const struct uvm *u, int64_t **ids, size_t *n, struct vdi_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*ids = NULL;
	*n = 0;
	if (vdi_db_prepare(db, &st, "SELECT h.host_id FROM host_tags h JOIN uservm_tags t ON t.tag = h.tag "
			   "AND t.uservm_id = ?1 GROUP BY h.host_id HAVING count(*) = ?2 ORDER BY h.host_id", err) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, u->id);
	sqlite3_bind_int64(st, 2, u->ntags);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t *t = vdi_grow(*ids, *n, sizeof(*t));
		*ids = t;
		t[(*n)++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : vdi_db_fail(db, "reading tags", err);
}

static bool
has_id(const int64_t *ids, size_t n, int64_t id)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (ids[mid] == id)
			return true;
		if (ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/*
 * The hosts, in name order.  full: every host with everything people see
 * in --explain.  Otherwise only the hosts that pass the state, freshness
 * and pool filters, without their names: the quick path of one login,
 * where reading and copying 1,000 hosts' text would cost more than the
 * decision.  Capacity and tags are judged in C either way (sched.c).
 */
static int
load_hosts(struct vdi_db *db, const struct uvm *u, const char *rr_last, int64_t min_ok, bool full,
	   struct vdi_assign_result *res, struct vdi_err *err)
{
	sqlite3_stmt *st = NULL;
	int64_t *tagged = NULL;
	size_t ntagged = 0, cap = 0;
	int rc, ret = -1;

	if (u->ntags > 0 && tagged_hosts(db, u, &tagged, &ntagged, err) < 0)
		return -1;
	if (vdi_db_prepare(db, &st, full ?
			   "SELECT id, sessions, mem_used, vcpus_used, mem_total, reserve_mem, ram_ratio, vcpus, "
			   "cpu_ratio, coalesce(max_sessions, -1), load, name > ?3, coalesce(last_ok, 0), pool = ?1, "
			   "name, admin, health FROM hosts ORDER BY name" :
			   "SELECT id, sessions, mem_used, vcpus_used, mem_total, reserve_mem, ram_ratio, vcpus, "
			   "cpu_ratio, coalesce(max_sessions, -1), load, name > ?3, last_ok FROM hosts "
			   "WHERE admin = 'active' AND health = 'up' AND pool = ?1 AND last_ok >= ?2 ORDER BY name",
			   err) < 0)
		goto out;
	sqlite3_bind_text(st, 1, u->pool, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, min_ok);
	sqlite3_bind_text(st, 3, rr_last ? rr_last : "", -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct vdi_sched_host *h;
		if (res->nhosts == cap) {
			cap = cap ? cap * 2 : 256;
			h = vdi_grow(res->hosts, cap - 1, sizeof(*h));
			res->hosts = h;
		}
		h = &res->hosts[res->nhosts++];
		memset(h, 0, offsetof(struct vdi_sched_host, detail));
		h->id = sqlite3_column_int64(st, 0);
		h->sessions = sqlite3_column_int64(st, 1);
		h->mem_used = sqlite3_column_int64(st, 2);
		h->vcpus_used = sqlite3_column_int64(st, 3);
		h->mem_total = sqlite3_column_int64(st, 4);
		h->reserve_mem = sqlite3_column_int64(st, 5);
		h->ram_ratio = sqlite3_column_double(st, 6);
		h->vcpus = sqlite3_column_int64(st, 7);
		h->cpu_ratio = sqlite3_column_double(st, 8);
		h->max_sessions = sqlite3_column_int64(st, 9);
		h->load_known = sqlite3_column_type(st, 10) != SQLITE_NULL;
		h->load = sqlite3_column_double(st, 10);
		h->rr_after = sqlite3_column_int(st, 11);
		h->last_ok = sqlite3_column_int64(st, 12);
		h->tags_ok = u->ntags == 0 || has_id(tagged, ntagged, h->id);
		if (full) {
			h->pool_ok = sqlite3_column_int(st, 13);
			h->name = vdi_db_col_strdup(st, 14);
			h->admin = vdi_db_col_strdup(st, 15);
			h->health = vdi_db_col_strdup(st, 16);
		} else {
			h->pool_ok = true;
			h->admin = "active";
			h->health = "up";
		}
	}
	if (rc != SQLITE_DONE) {
		vdi_db_fail(db, "reading hosts", err);
		goto out;
	}
	res->full = full;
	ret = 0;
out:
	sqlite3_finalize(st);
	free(tagged);
	return ret;
}

static char *
host_name(struct vdi_db *db, int64_t id)
{
	sqlite3_stmt *st = NULL;
	char *name = NULL;

	if (sqlite3_prepare_v2(db->h, "SELECT name FROM hosts WHERE id = ?", -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW)
		name = vdi_db_col_strdup(st, 0);
	sqlite3_finalize(st);
	return name;
}

static char *
kv_get(struct vdi_db *db, const char *key)
{
	sqlite3_stmt *st = NULL;
	char *v = NULL;

	if (sqlite3_prepare_v2(db->h, "SELECT value FROM kv WHERE key = ?", -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = vdi_db_col_strdup(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int
kv_set(struct vdi_db *db, const char *key, const char *val, struct vdi_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (vdi_db_prepare(db, &st, "INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", err) < 0)
		return -1;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, val, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : vdi_db_fail(db, "saving the round-robin cursor", err);
}

static int64_t
last_host(struct vdi_db *db, int64_t uvm)
{
	sqlite3_stmt *st = NULL;
	int64_t id = 0;

	if (sqlite3_prepare_v2(db->h, "SELECT coalesce(host_id, 0) FROM sessions WHERE uservm_id = ? "
			       "ORDER BY id DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_int64(st, 1, uvm);
	if (sqlite3_step(st) == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return id;
}

/* running -> migrating to host, held by this process: the triggers reserve its room there. */
static int
move_session(struct vdi_db *db, int64_t id, int64_t host, int64_t now, struct vdi_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (vdi_db_prepare(db, &st, "UPDATE sessions SET state = 'migrating', migrate_to = ?2, pid = ?3, changed = ?4 "
			   "WHERE id = ?1 AND state = 'running'", err) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, host);
	sqlite3_bind_int64(st, 3, (int64_t)getpid());
	sqlite3_bind_int64(st, 4, now);
	rc = vdi_db_step(db, st, "reserving the destination", err);
	sqlite3_finalize(st);
	return rc;
}

int
vdi_assign(struct vdi_db *db, const char *user, const struct vdi_assign_opts *o,
	   struct vdi_assign_result *res, struct vdi_err *err)
{
	struct uvm u;
	struct vdi_sched_req req;
	struct vdi_sched_ctx ctx = { 0 };
	sqlite3_stmt *st = NULL;
	char *rr = NULL, detail[512];
	int win = -1, rc;
	int64_t now = (int64_t)time(NULL), source = 0;

	memset(res, 0, sizeof(*res));
	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	if (load_uservm(db, user, o->prepare, &u, err) < 0)
		goto fail;
	if (o->move) {
		if (movable(db, u.id, o->move, &source, &res->from, err) < 0)
			goto fail;
		rc = 0;
	} else if ((rc = live_session(db, u.id, res, err)) < 0) {
		goto fail;
	}
	if (rc == 1) {
		/* The broker reconnects the user: same session, nothing new reserved. */
		vdi_db_rollback(db);
		return 0;
	}
	res->mem = u.mem;
	res->vcpus = u.vcpus;
	req.mem = u.mem;
	req.vcpus = u.vcpus;
	req.now = now;
	req.max_age = o->max_age;
	if (o->policy == VDI_POLICY_ROUND_ROBIN)
		rr = kv_get(db, "rr_last");
	/*
	 * A quick pass over the hosts that can take sessions at all (its SQL
	 * filter lets through exactly the hosts that pass the state, freshness
	 * and pool filters, so its eligible hosts, in the same order, are the
	 * full pass's); the full pass only when asked to explain, or to say why
	 * no host fits.
	 */
	for (int full = o->explain || o->host; full < 2 && win < 0; full++) {
		vdi_assign_result_hosts_clear(res);
		if (load_hosts(db, &u, rr, o->max_age > 0 ? now - o->max_age : INT64_MIN, full, res, err) < 0)
			goto fail;
		vdi_sched_filter(res->hosts, res->nhosts, &req);
		for (size_t i = 0; i < res->nhosts; i++)
			for (size_t k = 0; k < o->nexclude; k++)
				if (res->hosts[i].id == o->exclude[k])
					res->hosts[i].reject = "failed";
		for (size_t i = 0; i < res->nhosts; i++)
			if (res->hosts[i].id == source)
				res->hosts[i].reject = "source";
		if (o->host) {
			for (size_t i = 0; i < res->nhosts; i++)
				if (strcmp(res->hosts[i].name, o->host) == 0)
					win = (int)i;
			if (win < 0) {
				vdi_err_set(err, VDI_ENOTFOUND, "no host '%s'", o->host);
				goto fail;
			}
			vdi_sched_detail(&res->hosts[win], &req);
			if (res->hosts[win].reject && !o->force) {
				vdi_err_set(err, VDI_ENOHOST, "host %s fails filter '%s'%s%s%s (--force to place "
					    "there anyway)", o->host, res->hosts[win].reject,
					    res->hosts[win].detail[0] ? " (" : "", res->hosts[win].detail,
					    res->hosts[win].detail[0] ? ")" : "");
				goto fail;
			}
			res->forced = res->hosts[win].reject != NULL;
			res->hosts[win].rank = 1;
			snprintf(res->why, sizeof(res->why), "chosen by hand%s",
				 res->forced ? ", forced past the filters" : "");
			break;
		}
		ctx.policy = o->policy;
		ctx.fallback = o->fallback;
		ctx.rng = o->rng;
		ctx.rank_all = full;
		ctx.rr_last = rr;
		if (o->policy == VDI_POLICY_STICKY)
			ctx.sticky_host = last_host(db, u.id);
		win = vdi_sched_pick(res->hosts, res->nhosts, &req, &ctx);
		snprintf(res->why, sizeof(res->why), "%s", ctx.why);
	}
	if (win < 0) {
		char why[256];
		vdi_sched_why_none(res->hosts, res->nhosts, why, sizeof(why));
		vdi_err_set(err, VDI_ENOHOST, "%s for %s", why, user);
		if (!o->explain || !res->full)
			goto fail;
		/* The explanation is most wanted when nothing fits: keep every host's verdict. */
		for (size_t i = 0; i < res->nhosts; i++)
			vdi_sched_detail(&res->hosts[i], &req);
		free(rr);
		vdi_db_rollback(db);
		return -1;
	}
	res->host = res->full ? vdi_xstrdup(res->hosts[win].name) : host_name(db, res->hosts[win].id);
	if (!res->host) {
		vdi_err_set(err, VDI_EFAIL, "host %lld vanished", (long long)res->hosts[win].id);
		goto fail;
	}
	if (o->explain)
		for (size_t i = 0; i < res->nhosts; i++)
			vdi_sched_detail(&res->hosts[i], &req);
	if (o->dry_run) {
		vdi_db_rollback(db);
		free(rr);
		return 0;
	}
	if (o->move) {
		if (move_session(db, o->move, res->hosts[win].id, now, err) < 0)
			goto fail;
		res->session_id = o->move;
		snprintf(detail, sizeof(detail), "session=%lld from=%s to=%s %s%s", (long long)o->move, res->from,
			 res->host, o->host ? "chosen by hand" : vdi_policy_name(o->policy),
			 res->forced ? " FORCED past the filters" : "");
		if (vdi_event_add(db, user, "session-migrate-begin", detail, err) < 0)
			goto fail;
		free(rr);
		return vdi_db_commit(db, err);
	}
	if (vdi_db_prepare(db, &st, "INSERT INTO sessions (uservm_id, host_id, state, mem, vcpus, created, changed, "
			   "kind) VALUES (?, ?, 'assigned', ?, ?, ?, ?, ?)", err) < 0)
		goto fail;
	sqlite3_bind_text(st, 7, o->prepare ? "prepare" : "desktop", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 1, u.id);
	sqlite3_bind_int64(st, 2, res->hosts[win].id);
	sqlite3_bind_int64(st, 3, u.mem);
	sqlite3_bind_int64(st, 4, u.vcpus);
	sqlite3_bind_int64(st, 5, now);
	sqlite3_bind_int64(st, 6, now);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		vdi_db_fail(db, "reserving", err);
		goto fail;
	}
	res->session_id = sqlite3_last_insert_rowid(db->h);
	if (o->policy == VDI_POLICY_ROUND_ROBIN && !o->host && kv_set(db, "rr_last", res->host, err) < 0)
		goto fail;
	if (res->forced)
		snprintf(detail, sizeof(detail), "session=%lld host=%s FORCED by %s past filter %s (%s)",
			 (long long)res->session_id, res->host, db->who, res->hosts[win].reject, res->hosts[win].detail);
	else
		snprintf(detail, sizeof(detail), "session=%lld host=%s %s", (long long)res->session_id, res->host,
			 o->host ? "chosen by hand" : vdi_policy_name(o->policy));
	if (vdi_event_add(db, user, o->prepare ? "prepare-assign" : res->forced ? "session-assign-forced" :
			  "session-assign", detail, err) < 0)
		goto fail;
	free(rr);
	return vdi_db_commit(db, err);
fail:
	free(rr);
	vdi_db_rollback(db);
	vdi_assign_result_clear(res); /* on failure the caller has nothing to free */
	return -1;
}

void
vdi_assign_result_hosts_clear(struct vdi_assign_result *res)
{
	if (res->full) {
		for (size_t i = 0; i < res->nhosts; i++) {
			free((char *)res->hosts[i].name);
			free((char *)res->hosts[i].admin);
			free((char *)res->hosts[i].health);
		}
	}
	free(res->hosts);
	res->hosts = NULL;
	res->nhosts = 0;
	res->full = false;
}

void
vdi_assign_result_clear(struct vdi_assign_result *res)
{
	vdi_assign_result_hosts_clear(res);
	free(res->host);
	free(res->from);
	memset(res, 0, sizeof(*res));
}
