/* assign.c - choosing and reserving a host for a session in the VMDB (see assign.h). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "event.h"
#include "group.h"
#include "mem.h"
#include "metrics.h"
#include "nss.h"
#include "strv.h"
#include "assign.h"
#include "host.h"
#include "session.h"

struct uvm {
	int64_t id, mem, vcpus, ntags, master_id;
	char state[16], pool[80];
	bool updating;  /* an update to a new master is under way */
	bool forced;    /* its master is replaced, and its user waits for the update (--force-update) */
};

/* A user VM as a placement reads it (struct uvm's order). */
#define UVM_SELECT \
	"SELECT id, state, pool, mem, vcpus, (SELECT count(*) FROM uservm_tags t WHERE t.uservm_id = u.id), " \
	"master_id, updating_from IS NOT NULL, (SELECT m.update_forced = 1 AND m.replaced_by IS NOT NULL " \
	"FROM masters m WHERE m.id = u.master_id) FROM uservms u WHERE username = ?"

static int
load_uservm(struct vdi_db *db, const char *user, bool prepare, struct uvm *u, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	bool pg = strcmp(vdi_db_engine_name(db), "postgresql") == 0;
	int rc;

	/*
	 * The row is share-locked on PostgreSQL: an update's claim
	 * (vdi_uservm_update_claim) takes it for writing, so a session and an
	 * update never both start on it (SQLite's write lock does that alone).
	 */
	if (vdi_db_prepare(db, &st, pg ? UVM_SELECT " FOR SHARE OF u" : UVM_SELECT, err) < 0)
		return -1;
	vdi_stmt_bind_text(st, 1, user);
	rc = vdi_stmt_step(st);
	if (rc == VDI_DB_ROW) {
		u->id = vdi_stmt_int64(st, 0);
		snprintf(u->state, sizeof(u->state), "%s", vdi_stmt_text(st, 1));
		snprintf(u->pool, sizeof(u->pool), "%s", vdi_stmt_text(st, 2));
		u->mem = vdi_stmt_int64(st, 3);
		u->vcpus = vdi_stmt_int64(st, 4);
		u->ntags = vdi_stmt_int64(st, 5);
		u->master_id = vdi_stmt_int64(st, 6);
		u->updating = vdi_stmt_int(st, 7) != 0;
		u->forced = vdi_stmt_int(st, 8) != 0;
	}
	vdi_stmt_finalize(st);
	if (rc == VDI_DB_DONE)
		return vdi_err_set(err, VDI_R_NO_USER, "user '%s' has no user VM (see vm-copy)", user);
	if (rc != VDI_DB_ROW)
		return vdi_db_fail(db, "looking up user VM", err);
	if (!prepare && u->updating)
		return vdi_err_set(err, VDI_R_UPDATING, "the desktop of '%s' is being updated to a new master; "
				   "try again in a few minutes", user);
	if (prepare ? strcmp(u->state, "preparing") == 0 : strcmp(u->state, "ready") == 0)
		return 0;
	if (prepare)
		return vdi_err_set(err, VDI_R_CONFLICT, "the user VM of '%s' is %s, not waiting for its first boot",
				   user, u->state);
	if (strcmp(u->state, "preparing") == 0)
		return vdi_err_set(err, VDI_R_PREPARING, "the user VM of '%s' is being prepared (its first boot)", user);
	if (strcmp(u->state, "failed") == 0)
		return vdi_err_set(err, VDI_R_PREPARE_FAILED, "the first boot of the user VM of '%s' failed "
				   "(vm-copy %s again retries it)", user, user);
	return vdi_err_set(err, VDI_R_PREPARING, "the user VM of '%s' is still being made", user);
}

/* The user's session that is not ended: 1 found, 0 none, -1 error. */
static int
live_session(struct vdi_db *db, int64_t uvm, struct vdi_assign_result *res, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int rc;

	if (vdi_db_prepare(db, &st, "SELECT s.id, h.name, s.mem, s.vcpus FROM sessions s LEFT JOIN hosts h ON "
			   "h.id = s.host_id WHERE s.uservm_id = ? AND s.state <> 'ended'", err) < 0)
		return -1;
	vdi_stmt_bind_int64(st, 1, uvm);
	rc = vdi_stmt_step(st);
	if (rc == VDI_DB_ROW) {
		res->session_id = vdi_stmt_int64(st, 0);
		res->host = vdi_stmt_strdup(st, 1);
		res->mem = vdi_stmt_int64(st, 2);
		res->vcpus = vdi_stmt_int64(st, 3);
		res->existing = true;
	}
	vdi_stmt_finalize(st);
	if (rc != VDI_DB_ROW && rc != VDI_DB_DONE)
		return vdi_db_fail(db, "looking up sessions", err);
	return rc == VDI_DB_ROW;
}

/* Why the user's live session is where it is, as its placement recorded it, into res->why. */
static void
recorded_why(struct vdi_db *db, const char *user, struct vdi_assign_result *res)
{
	struct vdi_stmt *st = NULL;
	char key[32];

	snprintf(key, sizeof(key), "session=%lld %%", (long long)res->session_id);
	snprintf(res->why, sizeof(res->why), "already placed (no placement was recorded)");
	if (vdi_db_prepare(db, &st, "SELECT action, detail FROM events WHERE object = ?1 AND action IN "
			   "('session-assign', 'session-assign-forced', 'session-migrate-begin') AND detail LIKE ?2 "
			   "ORDER BY id DESC LIMIT 1", VDI_ERR_SCRATCH) < 0)
		return;
	vdi_stmt_bind_text(st, 1, user);
	vdi_stmt_bind_text(st, 2, key);
	if (vdi_stmt_step(st) == VDI_DB_ROW)
		snprintf(res->why, sizeof(res->why), "already %s: %s",
			 strcmp(vdi_stmt_text(st, 0), "session-migrate-begin") == 0 ? "moved here" : "placed",
			 vdi_stmt_text(st, 1));
	vdi_stmt_finalize(st);
}

/*
 * The user has a live session and the helpdesk named a host: fine where it
 * runs there already; else the answer says where it runs, and nothing moves.
 */
static int
existing_by_hand(struct vdi_db *db, const struct vdi_assign_opts *o,
		 const struct vdi_assign_result *res, struct vdi_err *err)
{
	int rc;

	if (res->host && strcmp(res->host, o->host) == 0)
		return 0;
	if ((rc = vdi_host_exists(db, o->host, err)) < 0)
		return -1;
	if (rc == 0)
		return vdi_err_set(err, VDI_R_NOTFOUND, "no host '%s'", o->host);
	return vdi_err_set(err, VDI_R_CONFLICT, "has session %lld on %s already; it is not moved (vm-migrate "
			   "--to %s --session %lld moves it; vm-reap --session %lld ends it)",
			   (long long)res->session_id, res->host ? res->host : "no host", o->host,
			   (long long)res->session_id, (long long)res->session_id);
}

/* With move: the session must be the user's running desktop; its host goes to *from. */
static int
movable(struct vdi_db *db, int64_t uvm, int64_t id, int64_t *host, char **from, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	char state[16] = "", kind[16] = "";
	int rc;

	if (vdi_db_prepare(db, &st, "SELECT s.state, s.kind, coalesce(s.host_id, 0), h.name FROM sessions s "
			   "LEFT JOIN hosts h ON h.id = s.host_id WHERE s.id = ?1 AND s.uservm_id = ?2", err) < 0)
		return -1;
	vdi_stmt_bind_int64(st, 1, id);
	vdi_stmt_bind_int64(st, 2, uvm);
	rc = vdi_stmt_step(st);
	if (rc == VDI_DB_ROW) {
		snprintf(state, sizeof(state), "%s", vdi_stmt_text(st, 0));
		snprintf(kind, sizeof(kind), "%s", vdi_stmt_text(st, 1));
		*host = vdi_stmt_int64(st, 2);
		*from = vdi_stmt_strdup(st, 3);
	}
	vdi_stmt_finalize(st);
	if (rc == VDI_DB_DONE)
		return vdi_err_set(err, VDI_R_NOTFOUND, "no session %lld", (long long)id);
	if (rc != VDI_DB_ROW)
		return vdi_db_fail(db, "reading the session", err);
	if (strcmp(kind, "desktop") != 0)
		return vdi_err_set(err, VDI_R_CONFLICT, "session %lld is a user VM's first boot; it is not moved",
				   (long long)id);
	if (strcmp(state, "migrating") == 0)
		return vdi_err_set(err, VDI_R_CONFLICT, "session %lld is being moved already", (long long)id);
	if (strcmp(state, "running") != 0 || !*from)
		return vdi_err_set(err, VDI_R_CONFLICT, "session %lld is %s; only a running desktop moves",
				   (long long)id, state);
	return 0;
}

/* The hosts that have every tag the user VM needs, as a sorted array of ids. */
static int
tagged_hosts(struct vdi_db *db, const struct uvm *u, int64_t **ids, size_t *n, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int rc;

	*ids = NULL;
	*n = 0;
	if (vdi_db_prepare(db, &st, "SELECT h.host_id FROM host_tags h JOIN uservm_tags t ON t.tag = h.tag "
			   "AND t.uservm_id = ?1 GROUP BY h.host_id HAVING count(*) = ?2 ORDER BY h.host_id", err) < 0)
		return -1;
	vdi_stmt_bind_int64(st, 1, u->id);
	vdi_stmt_bind_int64(st, 2, u->ntags);
	while ((rc = vdi_stmt_step(st)) == VDI_DB_ROW) {
		int64_t *t = vdi_grow(*ids, *n, sizeof(*t));
		*ids = t;
		t[(*n)++] = vdi_stmt_int64(st, 0);
	}
	vdi_stmt_finalize(st);
	return rc == VDI_DB_DONE ? 0 : vdi_db_fail(db, "reading tags", err);
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

/* The columns every host read starts with (read_host), then full's names and states. */
#define HOST_COLS "id, sessions, mem_used, vcpus_used, mem_total, reserve_mem, ram_ratio, vcpus, cpu_ratio, " \
	"coalesce(max_sessions, -1), load, name > ?3, coalesce(last_ok, 0)"

static struct vdi_sched_host *
push_host(struct vdi_assign_result *res, size_t *cap)
{
	struct vdi_sched_host *h;

	if (res->nhosts == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		res->hosts = vdi_grow(res->hosts, *cap - 1, sizeof(*h));
	}
	h = &res->hosts[res->nhosts++];
	memset(h, 0, offsetof(struct vdi_sched_host, detail));
	return h;
}

static void
read_host(struct vdi_stmt *st, struct vdi_sched_host *h, const struct uvm *u, const int64_t *tagged, size_t ntagged)
{
	h->id = vdi_stmt_int64(st, 0);
	h->sessions = vdi_stmt_int64(st, 1);
	h->mem_used = vdi_stmt_int64(st, 2);
	h->vcpus_used = vdi_stmt_int64(st, 3);
	h->mem_total = vdi_stmt_int64(st, 4);
	h->reserve_mem = vdi_stmt_int64(st, 5);
	h->ram_ratio = vdi_stmt_double(st, 6);
	h->vcpus = vdi_stmt_int64(st, 7);
	h->cpu_ratio = vdi_stmt_double(st, 8);
	h->max_sessions = vdi_stmt_int64(st, 9);
	h->load_known = !vdi_stmt_null(st, 10);
	h->load = vdi_stmt_double(st, 10);
	h->rr_after = vdi_stmt_int(st, 11);
	h->last_ok = vdi_stmt_int64(st, 12);
	h->tags_ok = u->ntags == 0 || has_id(tagged, ntagged, h->id);
	h->pool_ok = true;
	h->admin = "active";
	h->health = "up";
}

/* Every host in name order, with everything people see in --explain. */
static int
load_hosts(struct vdi_db *db, const struct uvm *u, const char *rr_last, struct vdi_assign_result *res,
	   struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int64_t *tagged = NULL;
	size_t ntagged = 0, cap = 0;
	int rc, ret = -1;

	if (u->ntags > 0 && tagged_hosts(db, u, &tagged, &ntagged, err) < 0)
		return -1;
	if (vdi_db_prepare(db, &st, "SELECT " HOST_COLS ", pool = ?1, name, admin, health FROM hosts ORDER BY name",
			   err) < 0)
		goto out;
	vdi_stmt_bind_text(st, 1, u->pool);
	vdi_stmt_bind_text(st, 3, rr_last ? rr_last : "");
	res->full = true; /* from the first row on: the clear frees names */
	while ((rc = vdi_stmt_step(st)) == VDI_DB_ROW) {
		struct vdi_sched_host *h = push_host(res, &cap);
		read_host(st, h, u, tagged, ntagged);
		h->pool_ok = vdi_stmt_int(st, 13);
		h->name = vdi_stmt_strdup(st, 14);
		h->admin = vdi_stmt_strdup(st, 15);
		h->health = vdi_stmt_strdup(st, 16);
	}
	if (rc != VDI_DB_DONE) {
		vdi_db_fail(db, "reading hosts", err);
		goto out;
	}
	ret = 0;
out:
	vdi_stmt_finalize(st);
	free(tagged);
	return ret;
}

/*
 * ---- the quick path of one login ----
 *
 * Only the hosts that can take sessions at all (active, up, the user VM's
 * pool, fresh) are read, in the order of the policy's key, from the
 * partial indexes of schema 5, and a walk stops as soon as the rest cannot
 * win, so a login reads a few rows however many hosts there are:
 *   least-sessions  (sessions, name): the first eligible host wins.
 *   round-robin     (name) after the last pick, then from the start: the
 *                   first eligible host wins.
 *   least-load      one mem_cap at a time, largest first, in (mem_key,
 *                   name) order: a host's score after placing is at least
 *                   its memory share after placing plus a tenth of its
 *                   load, which only grows along the walk, so the walk of
 *                   a size stops at the first host that cannot beat the
 *                   best score found.
 *   pack            one mem_cap at a time, (mem_room, name) from the
 *                   request's size up: the first eligible host is that
 *                   size's fullest after placing; the fullest of those wins.
 *   sticky          the user's last host; if it fails, the fallback's walk.
 *   random2         two distinct hosts drawn uniformly: an id drawn from
 *                   the id range, drawn again while it is no candidate or
 *                   fails a filter (uniform over the eligible hosts).
 * The hosts kept are put in name order, then scored and ranked by sched.c,
 * as in the full pass, so ties break by name.  (One tie can be missed: a
 * host whose vCPUs, not memory, dominate its score, tied with a host of
 * its size that comes later in the walk and has a smaller name.)  More than QUICK_SIZES sizes of hosts, QUICK_ROWS
 * hosts read that fail a filter, or a draw that keeps missing: the quick
 * path gives up (*win -1), and the full pass decides and says why.
 */
#define QUICK_SIZES 64
#define QUICK_ROWS 2048
#define QUICK_DRAWS 64

struct quick {
	struct vdi_db *db;
	const struct uvm *u;
	const struct vdi_sched_req *req;
	const struct vdi_assign_opts *o;
	const char *rr_last;
	int64_t source, min_ok;
	int64_t *tagged;
	size_t ntagged;
	struct vdi_assign_result *res;
	size_t cap;
	size_t rejected;           /* rows read that failed a filter */
};

/* Filter one host as vdi_sched_filter, exclusions and the mover's source too. */
static bool
eligible(struct quick *q, struct vdi_sched_host *h)
{
	vdi_sched_filter(h, 1, q->req);
	for (size_t k = 0; k < q->o->nexclude && !h->reject; k++)
		if (h->id == q->o->exclude[k])
			h->reject = "failed";
	if (!h->reject && h->id == q->source)
		h->reject = "source";
	if (h->reject)
		q->rejected++;
	return h->reject == NULL;
}

/*
 * The candidates in an index's order (INDEXED BY: a plan that cannot use
 * it fails loudly rather than reading every host); ?4 and ?5 are bound by
 * the caller.
 */
static int
quick_prepare(struct quick *q, struct vdi_stmt **st, const char *index, const char *where, const char *order,
	      struct vdi_err *err)
{
	char sql[512], ix[64];

	snprintf(sql, sizeof(sql), "SELECT " HOST_COLS ", name FROM hosts%s WHERE admin = 'active' "
		 "AND health = 'up' AND pool = ?1 AND last_ok >= ?2%s ORDER BY %s%s",
		 vdi_db_indexed_by(q->db, index, ix, sizeof(ix)), where, order, vdi_db_lock_rows(q->db));
	if (vdi_db_prepare_walk(q->db, st, sql, err) < 0)
		return -1;
	vdi_stmt_bind_text(*st, 1, q->u->pool);
	vdi_stmt_bind_int64(*st, 2, q->min_ok);
	vdi_stmt_bind_text(*st, 3, q->rr_last ? q->rr_last : "");
	return 0;
}

/* The next row of st into h: 1, or 0 at the end (or when too many rows failed), -1 on error. */
static int
quick_row(struct quick *q, struct vdi_stmt *st, struct vdi_sched_host *h, struct vdi_err *err)
{
	int rc;

	if (q->rejected >= QUICK_ROWS)
		return 0;
	rc = vdi_stmt_step(st);
	if (rc == VDI_DB_DONE)
		return 0;
	if (rc != VDI_DB_ROW)
		return vdi_db_fail(q->db, "reading hosts", err);
	memset(h, 0, offsetof(struct vdi_sched_host, detail));
	read_host(st, h, q->u, q->tagged, q->ntagged);
	return 1;
}

static void
quick_keep(struct quick *q, struct vdi_stmt *st, struct vdi_sched_host *h)
{
	h->name = vdi_stmt_strdup(st, 13);
	*push_host(q->res, &q->cap) = *h;
}

/* Walk an index in order and keep its first eligible host (least-sessions, round-robin, sticky). */
static int
quick_first(struct quick *q, const char *index, const char *where, const char *order, int64_t arg,
	    struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	struct vdi_sched_host h;
	int rc;

	if (quick_prepare(q, &st, index, where, order, err) < 0)
		return -1;
	vdi_stmt_bind_int64(st, 4, arg);
	while ((rc = quick_row(q, st, &h, err)) > 0) {
		if (eligible(q, &h)) {
			quick_keep(q, st, &h);
			break;
		}
	}
	/*
	 * The next row too, when it is eligible: the runner-up that the event
	 * records.  It is in the walk's first fetch, so it costs no round trip.
	 */
	if (rc > 0 && q->res->nhosts == 1 && (rc = quick_row(q, st, &h, err)) > 0 && eligible(q, &h))
		quick_keep(q, st, &h);
	vdi_stmt_finalize(st);
	return rc < 0 ? -1 : 0;
}

/* least-load and pack: each size of host (mem_cap), largest first, walked as the comment above says. */
static int
quick_sizes(struct quick *q, enum vdi_policy p, struct vdi_err *err)
{
	bool pack = p == VDI_POLICY_PACK;
	const char *index = pack ? "hosts_by_room" : "hosts_by_load";
	struct vdi_stmt *sizes = NULL, *st = NULL;
	struct vdi_sched_host h;
	int64_t size = INT64_MAX;
	double best = 0, sc;
	bool have = false, mine;
	int n = 0, rc, ret = -1;
	char sql[256], ix[64];

	snprintf(sql, sizeof(sql), "SELECT mem_cap FROM hosts%s WHERE admin = 'active' AND health = 'up' "
		 "AND pool = ?1 AND mem_cap < ?2 ORDER BY mem_cap DESC LIMIT 1",
		 vdi_db_indexed_by(q->db, index, ix, sizeof(ix)));
	if (vdi_db_prepare(q->db, &sizes, sql, err) < 0 ||
	    quick_prepare(q, &st, index, pack ? " AND mem_cap = ?4 AND mem_room >= ?5" : " AND mem_cap = ?4",
			  pack ? "mem_room, name" : "mem_key, name", err) < 0)
		goto out;
	vdi_stmt_bind_text(sizes, 1, q->u->pool);
	vdi_stmt_bind_int64(st, 5, q->req->mem);
	for (;;) {
		vdi_stmt_bind_int64(sizes, 2, size);
		rc = vdi_stmt_step(sizes);
		if (rc == VDI_DB_DONE)
			break;
		if (rc != VDI_DB_ROW) {
			vdi_db_fail(q->db, "reading host sizes", err);
			goto out;
		}
		size = vdi_stmt_int64(sizes, 0);
		vdi_stmt_reset(sizes);
		if (++n > QUICK_SIZES) {
			vdi_assign_result_hosts_clear(q->res); /* too many sizes: the full pass */
			break;
		}
		vdi_stmt_bind_int64(st, 4, size);
		mine = false;
		while ((rc = quick_row(q, st, &h, err)) > 0) {
			if (!pack && have) {
				/*
				 * The memory part of the score: no later host of this size
				 * scores below it.  A tie is walked on only while the best
				 * is another size's (it may lose the tie by name).
				 */
				double least = (size > 0 ? (double)(h.mem_used + q->req->mem) / (double)size : 1) +
					       0.1 * (h.load_known ? h.load : 0);
				if (least > best + 1e-12 || (mine && least >= best - 1e-12))
					break;
			}
			if (!eligible(q, &h))
				continue;
			sc = vdi_sched_score(&h, q->req, p);
			if (!have || sc < best - 1e-12)
				mine = false;
			if (!have || sc < best)
				best = sc;
			if (sc <= best + 1e-12)
				mine = true;
			have = true;
			quick_keep(q, st, &h);
			if (pack)
				break;
		}
		vdi_stmt_reset(st);
		if (rc < 0)
			goto out;
	}
	ret = 0;
out:
	vdi_stmt_finalize(sizes);
	vdi_stmt_finalize(st);
	return ret;
}

/*
 * random2: host ids drawn uniformly from the id range, drawn again while
 * the id is not a candidate or fails a filter, which is uniform over the
 * eligible hosts (ids are dense where hosts are rarely removed).
 */
static int
quick_random2(struct quick *q, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	struct vdi_sched_host h;
	int64_t lo = 0, hi = -1;
	int rc = 0;

	if (vdi_db_prepare(q->db, &st, "SELECT (SELECT min(id) FROM hosts), (SELECT max(id) FROM hosts)", err) < 0)
		return -1;
	if (vdi_stmt_step(st) == VDI_DB_ROW && !vdi_stmt_null(st, 0)) {
		lo = vdi_stmt_int64(st, 0);
		hi = vdi_stmt_int64(st, 1);
	}
	vdi_stmt_finalize(st);
	if (quick_prepare(q, &st, NULL, " AND id = ?4", "id", err) < 0)
		return -1;
	for (int k = 0; k < QUICK_DRAWS && hi > lo && q->res->nhosts < 2 && rc >= 0; k++) {
		vdi_stmt_bind_int64(st, 4, lo + (int64_t)(vdi_rand_next(q->o->rng) % (uint64_t)(hi - lo + 1)));
		rc = quick_row(q, st, &h, err);
		if (rc > 0 && eligible(q, &h) && !(q->res->nhosts == 1 && q->res->hosts[0].id == h.id))
			quick_keep(q, st, &h);
		vdi_stmt_reset(st);
	}
	vdi_stmt_finalize(st);
	if (rc < 0)
		return -1;
	if (q->res->nhosts == 2 && strcmp(q->res->hosts[0].name, q->res->hosts[1].name) > 0) {
		/* Ties break by name, as in the full pass: put the two in name order. */
		struct vdi_sched_host t = q->res->hosts[0];
		q->res->hosts[0] = q->res->hosts[1];
		q->res->hosts[1] = t;
	}
	if (q->res->nhosts < 2)
		vdi_assign_result_hosts_clear(q->res); /* fewer than two eligible, or unlucky: the full pass draws */
	return 0;
}

static int
quick_hosts(struct quick *q, enum vdi_policy p, int64_t sticky, struct vdi_err *err)
{
	switch (p) {
	case VDI_POLICY_LEAST_SESSIONS:
		return quick_first(q, "hosts_by_sessions", "", "sessions, name", 0, err);
	case VDI_POLICY_LEAST_LOAD:
	case VDI_POLICY_PACK:
		return quick_sizes(q, p, err);
	case VDI_POLICY_ROUND_ROBIN:
		if (q->rr_last && quick_first(q, "hosts_by_name", " AND name > ?3", "name", 0, err) < 0)
			return -1;
		return q->res->nhosts ? 0 : quick_first(q, "hosts_by_name", "", "name", 0, err);
	case VDI_POLICY_RANDOM2:
		return quick_random2(q, err);
	case VDI_POLICY_STICKY:
		/* One host, by its id (no index walk). */
		if (sticky && quick_first(q, NULL, " AND id = ?4", "id", sticky, err) < 0)
			return -1;
		return q->res->nhosts ? 0 : quick_hosts(q, q->o->fallback, 0, err);
	}
	return 0;
}

static char *
kv_get(struct vdi_db *db, const char *key)
{
	struct vdi_stmt *st = NULL;
	char *v = NULL;

	if (vdi_db_prepare(db, &st, "SELECT value FROM kv WHERE key = ?", VDI_ERR_SCRATCH) < 0)
		return NULL;
	vdi_stmt_bind_text(st, 1, key);
	if (vdi_stmt_step(st) == VDI_DB_ROW)
		v = vdi_stmt_strdup(st, 0);
	vdi_stmt_finalize(st);
	return v;
}

static int
kv_set(struct vdi_db *db, const char *key, const char *val, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int rc;

	if (vdi_db_prepare(db, &st, "INSERT INTO kv (key, value) VALUES (?, ?) "
			   "ON CONFLICT (key) DO UPDATE SET value = excluded.value", err) < 0)
		return -1;
	vdi_stmt_bind_text(st, 1, key);
	vdi_stmt_bind_text(st, 2, val);
	rc = vdi_stmt_step(st);
	vdi_stmt_finalize(st);
	return rc == VDI_DB_DONE ? 0 : vdi_db_fail(db, "saving the round-robin cursor", err);
}

static int64_t
last_host(struct vdi_db *db, int64_t uvm)
{
	struct vdi_stmt *st = NULL;
	int64_t id = 0;

	if (vdi_db_prepare(db, &st, "SELECT coalesce(host_id, 0) FROM sessions WHERE uservm_id = ? "
			   "ORDER BY id DESC LIMIT 1", VDI_ERR_SCRATCH) < 0)
		return 0;
	vdi_stmt_bind_int64(st, 1, uvm);
	if (vdi_stmt_step(st) == VDI_DB_ROW)
		id = vdi_stmt_int64(st, 0);
	vdi_stmt_finalize(st);
	return id;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(((const struct vdi_sched_host *)a)->name, ((const struct vdi_sched_host *)b)->name);
}

static void
sched_ctx(struct vdi_db *db, const struct uvm *u, const struct vdi_assign_opts *o, const char *rr, bool rank_all,
	  struct vdi_sched_ctx *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->policy = o->policy;
	ctx->fallback = o->fallback;
	ctx->rng = o->rng;
	ctx->rank_all = rank_all;
	ctx->rr_last = rr;
	if (o->policy == VDI_POLICY_STICKY)
		ctx->sticky_host = last_host(db, u->id);
}

/* The quick path's pick into res (the hosts it kept), or *win -1 when it leaves the decision to the full pass. */
static int
quick_pick(struct vdi_db *db, const struct uvm *u, const struct vdi_sched_req *req, const struct vdi_assign_opts *o,
	   const char *rr, int64_t source, int64_t min_ok, struct vdi_assign_result *res, int *win, struct vdi_err *err)
{
	struct quick q = { .db = db, .u = u, .req = req, .o = o, .rr_last = rr, .source = source,
			   .min_ok = min_ok, .res = res };
	struct vdi_sched_ctx ctx;
	int ret = -1;

	*win = -1;
	if (u->ntags > 0 && tagged_hosts(db, u, &q.tagged, &q.ntagged, err) < 0)
		return -1;
	sched_ctx(db, u, o, rr, false, &ctx);
	if (quick_hosts(&q, o->policy, ctx.sticky_host, err) < 0)
		goto out;
	if (res->nhosts > 0) {
		/* Ties break by name, as in the full pass. */
		qsort(res->hosts, res->nhosts, sizeof(*res->hosts), by_name);
		*win = vdi_sched_pick(res->hosts, res->nhosts, req, &ctx);
		snprintf(res->why, sizeof(res->why), "%s", ctx.why);
	}
	ret = 0;
out:
	free(q.tagged);
	return ret;
}

static int assign_by_hand(struct vdi_assign_result *res, const struct vdi_sched_req *req,
			  const struct vdi_assign_opts *o, int *win, struct vdi_err *err);

/*
 * Pick: the host for u, on the rows read inside the caller's write
 * transaction.  The quick path reads the best few candidates (see above);
 * the full pass reads every host, when asked to explain or to place by
 * hand, or when the quick path finds nothing and the refusal must say why.
 * 0 with *win; -1 with err, and *keep when the result holds every host's
 * verdict for --explain; 2 when a shared placement must place again under
 * the write lock.
 */
static int
assign_pick(struct vdi_db *db, const char *user, const struct uvm *u, const struct vdi_sched_req *req,
	    const struct vdi_assign_opts *o, const char *rr, int64_t source, bool shared,
	    struct vdi_assign_result *res, int *win, bool *keep, struct vdi_err *err)
{
	struct vdi_sched_ctx ctx;
	int64_t min_ok = o->max_age > 0 ? req->now - o->max_age : INT64_MIN;
	char why[256];

	*win = -1;
	*keep = false;
	if (!o->explain && !o->host && quick_pick(db, u, req, o, rr, source, min_ok, res, win, err) < 0)
		return -1;
	if (*win < 0 && shared)
		return 2; /* the full pass reads rows it has not locked: under the write lock only */
	if (*win < 0) {
		vdi_assign_result_hosts_clear(res);
		if (load_hosts(db, u, rr, res, err) < 0)
			return -1;
		vdi_sched_filter(res->hosts, res->nhosts, req);
		for (size_t i = 0; i < res->nhosts; i++) {
			for (size_t k = 0; k < o->nexclude; k++)
				if (res->hosts[i].id == o->exclude[k])
					res->hosts[i].reject = "failed";
			if (res->hosts[i].id == source)
				res->hosts[i].reject = "source";
		}
		if (o->host)
			return assign_by_hand(res, req, o, win, err);
		sched_ctx(db, u, o, rr, true, &ctx);
		*win = vdi_sched_pick(res->hosts, res->nhosts, req, &ctx);
		snprintf(res->why, sizeof(res->why), "%s", ctx.why);
	}
	if (*win < 0) {
		vdi_sched_why_none(res->hosts, res->nhosts, why, sizeof(why));
		vdi_err_set(err, VDI_R_NOHOST, "%s for %s", why, user);
		if (o->explain && res->full) {
			/* The explanation is most wanted when nothing fits: keep every host's verdict. */
			for (size_t i = 0; i < res->nhosts; i++)
				vdi_sched_detail(&res->hosts[i], req);
			*keep = true;
		}
		return -1;
	}
	return 0;
}

/* --host: the helpdesk's choice, still filtered unless forced (and then logged as such). */
static int
assign_by_hand(struct vdi_assign_result *res, const struct vdi_sched_req *req, const struct vdi_assign_opts *o,
	       int *win, struct vdi_err *err)
{
	struct vdi_sched_host *h = NULL;

	for (size_t i = 0; i < res->nhosts; i++)
		if (strcmp(res->hosts[i].name, o->host) == 0)
			*win = (int)i;
	if (*win < 0)
		return vdi_err_set(err, VDI_R_NOTFOUND, "no host '%s'", o->host);
	h = &res->hosts[*win];
	vdi_sched_detail(h, req);
	if (h->reject && !o->force)
		return vdi_err_set(err, VDI_R_NOHOST, "host %s fails filter '%s'%s%s%s (--force to place "
				   "there anyway)", o->host, h->reject, h->detail[0] ? " (" : "", h->detail,
				   h->detail[0] ? ")" : "");
	res->forced = h->reject != NULL;
	h->rank = 1;
	snprintf(res->why, sizeof(res->why), "chosen by hand%s", res->forced ? ", forced past the filters" : "");
	return 0;
}

/* Reserve: the write, in the caller's transaction: a new session, or a move begun, and its event. */
static int
assign_reserve(struct vdi_db *db, const char *user, const struct uvm *u, const struct vdi_assign_opts *o,
	       int win, int64_t now, const char *grp, struct vdi_assign_result *res, struct vdi_err *err)
{
	const struct vdi_sched_host *h = &res->hosts[win];
	char detail[512];

	if (o->move) {
		if (vdi_session_move_begin(db, o->move, h->id, now, err) < 0)
			return -1;
		res->session_id = o->move;
		snprintf(detail, sizeof(detail), "session=%lld from=%s to=%s %s%s", (long long)o->move, res->from,
			 res->host, o->host ? "chosen by hand" : vdi_policy_name(o->policy),
			 res->forced ? " FORCED past the filters" : "");
		return vdi_event_add_session(db, user, o->move, "session-migrate-begin", detail, err);
	}
	if (vdi_session_insert(db, u->id, h->id, u->mem, u->vcpus, o->prepare ? "prepare" : o->warm ? "warm" : "desktop",
			       now, &res->session_id, err) < 0)
		return -1;
	if (grp && *grp && vdi_session_set_group(db, res->session_id, grp, err) < 0)
		return -1;
	if (o->policy == VDI_POLICY_ROUND_ROBIN && !o->host && kv_set(db, "rr_last", res->host, err) < 0)
		return -1;
	if (res->forced)
		snprintf(detail, sizeof(detail), "session=%lld host=%s FORCED by %s past filter %s (%s)",
			 (long long)res->session_id, res->host, vdi_db_who(db), h->reject, h->detail);
	else if (o->host)
		snprintf(detail, sizeof(detail), "session=%lld host=%s chosen by hand", (long long)res->session_id,
			 res->host);
	else
		snprintf(detail, sizeof(detail), "session=%lld host=%s %s", (long long)res->session_id, res->host,
			 res->why_short);
	return vdi_event_add_session(db, user, res->session_id, o->prepare ? "prepare-assign" :
				     o->warm ? "warm-assign" : res->forced ? "session-assign-forced" : "session-assign", detail, err);
}

/*
 * One try at vdi_assign: as a shared placement when may_share (and the
 * engine can), else under the write lock.  2: place again under the write
 * lock (res cleared, nothing written).
 */
static int
assign_once(struct vdi_db *db, const char *user, const struct vdi_assign_opts *o, bool may_share, bool entitle,
	    char *const *groups, size_t ngroups, struct vdi_assign_result *res, struct vdi_err *err)
{
	struct vdi_group_verdict gv = { 0 };
	struct uvm u;
	struct vdi_sched_req req = { 0 };
	char *rr = NULL;
	int win = -1, rc, ret = -1;
	int64_t source = 0;
	bool keep = false, shared = false;

	memset(res, 0, sizeof(*res));
	vdi_err_object(err, "%s", user); /* every error line of a batch names its user */
	if ((may_share ? vdi_db_begin_placement(db, &shared, err) : vdi_db_begin(db, true, err)) < 0)
		return -1;
	if (load_uservm(db, user, o->prepare, &u, err) < 0)
		goto out;
	if (o->move) {
		if (movable(db, u.id, o->move, &source, &res->from, err) < 0)
			goto out;
		rc = 0;
	} else if ((rc = live_session(db, u.id, res, err)) < 0) {
		goto out;
	}
	if (rc == 0 && u.forced && !o->prepare) {
		/* Stale, and its user waits for the update (a running desktop above is left as it is). */
		vdi_err_set(err, VDI_R_UPDATING, "the desktop of '%s' waits for its update to a new master "
			    "(vm-copy --update); try again in a few minutes", user);
		goto out;
	}
	if (rc == 1) {
		/* The broker reconnects the user: same session, nothing new reserved. */
		if (o->host && existing_by_hand(db, o, res, err) < 0)
			goto out;
		if (o->explain)
			recorded_why(db, user, res);
		vdi_db_rollback(db);
		return 0;
	}
	/* Entitlements: may the user use this master, and which group's room does the desktop take? */
	if (entitle) {
		if (vdi_group_check(db, user, groups, ngroups, u.master_id, u.mem, true, &gv, err) < 0)
			goto out;
		snprintf(res->entitled, sizeof(res->entitled), "%s", gv.why);
		/* A group's cap is decided on rows no host lock covers: under the write lock only. */
		if (gv.limited && shared) {
			ret = 2;
			goto out;
		}
	}
	res->mem = req.mem = u.mem;
	res->vcpus = req.vcpus = u.vcpus;
	req.now = vdi_clock_now();
	req.max_age = o->max_age;
	if (o->policy == VDI_POLICY_ROUND_ROBIN)
		rr = kv_get(db, "rr_last");
	if ((rc = assign_pick(db, user, &u, &req, o, rr, source, shared, res, &win, &keep, err)) != 0) {
		if (rc == 2)
			ret = 2;
		goto out;
	}
	res->host = vdi_xstrdup(res->hosts[win].name);
	if (!o->host)
		vdi_sched_why_short(res->hosts, res->nhosts, win, o->policy, res->why_short, sizeof(res->why_short));
	if (o->explain)
		for (size_t i = 0; i < res->nhosts; i++)
			vdi_sched_detail(&res->hosts[i], &req);
	if (vdi_db_dry_run(db)) {
		ret = 0;
		goto out;
	}
	if (assign_reserve(db, user, &u, o, win, req.now, gv.grp, res, err) < 0) {
		/* Another placement gave this user a session meanwhile: look again, under the write lock. */
		if (shared && vdi_db_conflict(db))
			ret = 2;
		goto out;
	}
	free(rr);
	return vdi_db_commit(db, err);
out:
	free(rr);
	vdi_db_rollback(db);
	if ((ret < 0 && !keep) || ret == 2)
		vdi_assign_result_clear(res); /* on failure the caller has nothing to free */
	return ret;
}

/*
 * A placement refused for want of a host: an event (the helpdesk's "why
 * could ann not start at 9:02?") and a count by reason, in a transaction
 * of their own as the placement's rolled back.  A failure to record it is
 * not the caller's error: the refusal is.
 */
static void
record_refusal(struct vdi_db *db, const char *user, const struct vdi_assign_opts *o, const struct vdi_err *why)
{
	struct vdi_err err = { 0 };

	if (vdi_db_begin(db, true, &err) < 0)
		return;
	if (vdi_metrics_count(db, "vdi_placement_refusals_total", "reason", vdi_reason_name(why->reason), 1,
			      &err) < 0 ||
	    vdi_event_add(db, user, o->move ? "session-migrate-refused" : o->prepare ? "prepare-refused" :
			  o->warm ? "warm-refused" : "session-refused", why->msg, &err) < 0) {
		vdi_db_rollback(db);
		return;
	}
	vdi_db_commit(db, &err);
}

int
vdi_assign(struct vdi_db *db, const char *user, const struct vdi_assign_opts *o,
	   struct vdi_assign_result *res, struct vdi_err *err)
{
	char **groups = NULL;
	size_t ngroups = 0;
	bool on = false;
	int rc;

	/* The user's groups, when entitlements are in force: asked of NSS before any lock is taken. */
	if (!o->move && !o->prepare && !o->warm &&
	    (vdi_group_active(db, &on, err) < 0 || (on && vdi_nss_groups(user, &groups, &ngroups, err) < 0))) {
		memset(res, 0, sizeof(*res));
		return -1;
	}
	/* Only the quick path locks the rows it decides on; --explain, --host and a move read every host. */
	rc = assign_once(db, user, o, !o->explain && !o->host && !o->move, on, groups, ngroups, res, err);
	if (rc == 2) {
		vdi_err_clear(err);
		rc = assign_once(db, user, o, false, on, groups, ngroups, res, err);
	}
	if (rc < 0 && (err->reason == VDI_R_NOHOST || err->reason == VDI_R_NEVER_FITS ||
		       err->reason == VDI_R_GROUP_FULL || err->reason == VDI_R_NOT_ENTITLED) && !o->explain &&
	    !vdi_db_dry_run(db))
		record_refusal(db, user, o, err);
	vdi_strv_free(groups, ngroups);
	return rc;
}

void
vdi_assign_result_hosts_clear(struct vdi_assign_result *res)
{
	for (size_t i = 0; i < res->nhosts; i++) {
		free((char *)res->hosts[i].name);
		if (res->full) {
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
