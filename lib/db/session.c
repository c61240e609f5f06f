/* session.c - sessions in the VMDB (see session.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "event.h"
#include "proc.h"
#include "mem.h"
#include "master.h"
#include "host.h"
#include "session.h"
#include "strv.h"

void
vdi_session_names(int64_t id, const char *user, char *domain, size_t dlen, char *overlay, size_t olen)
{
	snprintf(domain, dlen, "vdi-s%lld-%s", (long long)id, user);
	snprintf(overlay, olen, "s%lld-%s.qcow2", (long long)id, user);
}

#define SESSION_SELECT \
	"SELECT s.id, s.uservm_id, coalesce(s.host_id, 0), s.state, s.reason, u.username, h.name, h.uri, " \
	"h.display_address, u.pool, u.volume, u.seed, s.domain, s.overlay, s.display_address, " \
	"s.display_password, coalesce(s.display_port, 0), s.mem, s.vcpus, s.created, s.changed, " \
	"coalesce(s.pid, 0), s.kind, m.profile, m.firmware, m.disk_bus, m.nic_model, m.video, m.rdp, " \
	"h.network, h.bridge, s.address, coalesce(s.address_seen, 0), m.name, " \
	"coalesce(s.started, 0), coalesce(s.connected_since, 0), coalesce(s.disconnected_since, 0), " \
	"coalesce(s.ticket_expires, 0), coalesce(h.watch_since, 0), coalesce(h.watch_seen, 0), " \
	"coalesce(s.migrate_to, 0), t.name, t.uri, t.display_address, t.migration_uri, t.network, t.bridge, " \
	"coalesce(s.migrated, 0), s.owner, coalesce(s.lease, 0), h.health, coalesce(s.warm, 0), " \
	"coalesce(u.warm, 0), coalesce(s.console_port, 0), s.console_password, " \
	"(SELECT count(*) FROM consoles c WHERE c.session_id = s.id AND c.closed IS NULL), " \
	"(SELECT hm.volume FROM homes hm WHERE hm.username = u.username AND hm.state = 'ready') " \
	"FROM sessions s JOIN uservms u ON u.id = s.uservm_id JOIN masters m ON m.id = u.master_id " \
	"LEFT JOIN hosts h ON h.id = s.host_id LEFT JOIN hosts t ON t.id = s.migrate_to "

static void
read_session(struct vdi_stmt *st, struct vdi_session *s)
{
	memset(s, 0, sizeof(*s));
	s->id = vdi_stmt_int64(st, 0);
	s->uservm_id = vdi_stmt_int64(st, 1);
	s->host_id = vdi_stmt_int64(st, 2);
	s->state = vdi_stmt_strdup(st, 3);
	s->reason = vdi_stmt_strdup(st, 4);
	s->user = vdi_stmt_strdup(st, 5);
	s->host = vdi_stmt_strdup(st, 6);
	s->host_uri = vdi_stmt_strdup(st, 7);
	s->host_display = vdi_stmt_strdup(st, 8);
	s->pool = vdi_stmt_strdup(st, 9);
	s->disk = vdi_stmt_strdup(st, 10);
	s->seed = vdi_stmt_strdup(st, 11);
	s->domain = vdi_stmt_strdup(st, 12);
	s->overlay = vdi_stmt_strdup(st, 13);
	s->display_address = vdi_stmt_strdup(st, 14);
	s->display_password = vdi_stmt_strdup(st, 15);
	s->display_port = vdi_stmt_int64(st, 16);
	s->mem = vdi_stmt_int64(st, 17);
	s->vcpus = vdi_stmt_int64(st, 18);
	s->created = vdi_stmt_int64(st, 19);
	s->changed = vdi_stmt_int64(st, 20);
	s->pid = vdi_stmt_int64(st, 21);
	s->kind = vdi_stmt_strdup(st, 22);
	s->profile = vdi_stmt_strdup(st, 23);
	s->firmware = vdi_stmt_strdup(st, 24);
	s->disk_bus = vdi_stmt_strdup(st, 25);
	s->nic = vdi_stmt_strdup(st, 26);
	s->video = vdi_stmt_strdup(st, 27);
	s->rdp = vdi_stmt_int(st, 28) != 0;
	s->network = vdi_stmt_strdup(st, 29);
	s->bridge = vdi_stmt_strdup(st, 30);
	s->address = vdi_stmt_strdup(st, 31);
	s->address_seen = vdi_stmt_int64(st, 32);
	s->master = vdi_stmt_strdup(st, 33);
	s->started = vdi_stmt_int64(st, 34);
	s->connected_since = vdi_stmt_int64(st, 35);
	s->disconnected_since = vdi_stmt_int64(st, 36);
	s->ticket_expires = vdi_stmt_int64(st, 37);
	s->watch_since = vdi_stmt_int64(st, 38);
	s->watch_seen = vdi_stmt_int64(st, 39);
	s->migrate_to = vdi_stmt_int64(st, 40);
	s->to_host = vdi_stmt_strdup(st, 41);
	s->to_uri = vdi_stmt_strdup(st, 42);
	s->to_display = vdi_stmt_strdup(st, 43);
	s->to_migration_uri = vdi_stmt_strdup(st, 44);
	s->to_network = vdi_stmt_strdup(st, 45);
	s->to_bridge = vdi_stmt_strdup(st, 46);
	s->migrated = vdi_stmt_int64(st, 47);
	vdi_stmt_claim(st, 48, s->owner, sizeof(s->owner), &s->lease);
	s->host_health = vdi_stmt_strdup(st, 50);
	s->warm = vdi_stmt_int64(st, 51);
	s->uservm_warm = vdi_stmt_int64(st, 52);
	s->console_port = vdi_stmt_int64(st, 53);
	s->console_password = vdi_stmt_strdup(st, 54);
	s->consoles = vdi_stmt_int64(st, 55);
	s->home = vdi_stmt_strdup(st, 56);
}

bool
vdi_session_is_prepare(const struct vdi_session *s)
{
	return s->kind && strcmp(s->kind, "prepare") == 0;
}

bool
vdi_session_is_warm_build(const struct vdi_session *s)
{
	return s->kind && strcmp(s->kind, "warm") == 0;
}

bool
vdi_session_is_desktop(const struct vdi_session *s)
{
	return !s->kind || strcmp(s->kind, "desktop") == 0;
}

void
vdi_session_warm_names(int64_t build, const char *user, char *domain, size_t dlen, char *layer, size_t llen,
		       char *image, size_t ilen)
{
	if (domain)
		snprintf(domain, dlen, "vdi-w%lld-%s", (long long)build, user);
	if (layer)
		snprintf(layer, llen, "w%lld-%s.qcow2", (long long)build, user);
	if (image)
		snprintf(image, ilen, "w%lld-%s.save", (long long)build, user);
}

struct vdi_profile
vdi_session_profile(const struct vdi_session *s)
{
	struct vdi_profile p = { .name = s->profile, .firmware = s->firmware, .disk_bus = s->disk_bus,
				 .nic = s->nic, .video = s->video };
	return p;
}

static int
get_one(struct vdi_db *db, const char *where, int64_t id, const char *user, struct vdi_session *s,
	struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	char sql[2048];
	int rc;

	/* Cut SQL would be other SQL: refuse it (SESSION_SELECT grew past 1 KiB once, silently). */
	if ((size_t)snprintf(sql, sizeof(sql), "%s%s", SESSION_SELECT, where) >= sizeof(sql))
		return vdi_err_set(err, VDI_R_FAIL, "internal: a session query is longer than %zu bytes", sizeof(sql));
	if (vdi_db_prepare(db, &st, sql, err) < 0)
		return -1;
	if (user)
		vdi_stmt_bind_text(st, 1, user);
	else
		vdi_stmt_bind_int64(st, 1, id);
	rc = vdi_stmt_step(st);
	if (rc == VDI_DB_ROW)
		read_session(st, s);
	vdi_stmt_finalize(st);
	if (rc == VDI_DB_ROW)
		return 0;
	if (rc != VDI_DB_DONE)
		return vdi_db_fail(db, "reading session", err);
	if (user)
		return vdi_err_set(err, VDI_R_NOTFOUND, "user '%s' has no session", user);
	return vdi_err_set(err, VDI_R_NOTFOUND, "no session %lld", (long long)id);
}

int
vdi_session_get(struct vdi_db *db, int64_t id, struct vdi_session *s, struct vdi_err *err)
{
	return get_one(db, "WHERE s.id = ?1", id, NULL, s, err);
}

int
vdi_session_of_domain(struct vdi_db *db, const char *domain, struct vdi_session *s, struct vdi_err *err)
{
	return get_one(db, "WHERE s.domain = ?1 AND s.state <> 'ended'", 0, domain, s, err);
}

int
vdi_session_of_user(struct vdi_db *db, const char *user, struct vdi_session *s, struct vdi_err *err)
{
	return get_one(db, "WHERE u.username = ?1 AND s.state <> 'ended'", 0, user, s, err);
}

int
vdi_session_last_of_user(struct vdi_db *db, const char *user, struct vdi_session *s, struct vdi_err *err)
{
	return get_one(db, "WHERE u.username = ?1 AND s.state = 'ended' AND s.kind = 'desktop' ORDER BY s.id DESC "
		       "LIMIT 1", 0, user, s, err);
}

void
vdi_session_clear(struct vdi_session *s)
{
	free(s->state);
	free(s->reason);
	free(s->user);
	free(s->host);
	free(s->host_uri);
	free(s->host_display);
	free(s->host_health);
	free(s->pool);
	free(s->disk);
	free(s->seed);
	free(s->domain);
	free(s->overlay);
	free(s->display_address);
	free(s->display_password);
	free(s->console_password);
	free(s->home);
	free(s->kind);
	free(s->profile);
	free(s->firmware);
	free(s->disk_bus);
	free(s->nic);
	free(s->video);
	free(s->network);
	free(s->bridge);
	free(s->address);
	free(s->master);
	free(s->to_host);
	free(s->to_uri);
	free(s->to_display);
	free(s->to_migration_uri);
	free(s->to_network);
	free(s->to_bridge);
	memset(s, 0, sizeof(*s));
}

/*
 * Starts in flight on host_id other than session id's, across every
 * process and broker: its sessions 'starting' under a claim that is alive.
 */
static int
starts_in_flight(struct vdi_db *db, int64_t host_id, int64_t id, int64_t *n, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	char owner[160];
	int64_t lease;
	int rc;

	*n = 0;
	if (vdi_db_prepare(db, &st, "SELECT coalesce(pid, 0), owner, coalesce(lease, 0) FROM sessions "
			   "WHERE host_id = ?1 AND state = 'starting' AND id <> ?2", err) < 0)
		return -1;
	vdi_stmt_bind_int64(st, 1, host_id);
	vdi_stmt_bind_int64(st, 2, id);
	while ((rc = vdi_stmt_step(st)) == VDI_DB_ROW) {
		vdi_stmt_claim(st, 1, owner, sizeof(owner), &lease);
		*n += vdi_claim_alive(vdi_stmt_int64(st, 0), owner, lease);
	}
	vdi_stmt_finalize(st);
	return rc == VDI_DB_DONE ? 0 : vdi_db_fail(db, "counting starts", err);
}

int
vdi_session_claim_start(struct vdi_db *db, int64_t id, const char *domain, const char *overlay, int64_t warm,
			const char *address, const char *password, const char *console_password,
			struct vdi_err *err)
{
	return vdi_session_claim_start_gated(db, id, domain, overlay, warm, address, password, console_password, 0,
					     err);
}

int
vdi_session_claim_start_gated(struct vdi_db *db, int64_t id, const char *domain, const char *overlay,
			      int64_t warm, const char *address, const char *password,
			      const char *console_password, int64_t per_host, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int64_t inflight;
	int rc;
	struct vdi_session s;
	int ret = -1;

	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	if (vdi_session_get(db, id, &s, err) < 0)
		goto fail;
	if (strcmp(s.state, "running") == 0) {
		ret = 1;
		vdi_session_clear(&s);
		vdi_db_rollback(db);
		return ret;
	}
	if (strcmp(s.state, "starting") == 0 && vdi_claim_elsewhere(s.pid, s.owner, s.lease)) {
		vdi_err_set(err, VDI_R_CONFLICT, "session %lld is being started by process %lld", (long long)id,
			    (long long)s.pid);
		goto fail_clear;
	}
	if (strcmp(s.state, "migrating") == 0) {
		vdi_err_set(err, VDI_R_TEMP, "session %lld is moving from %s to %s; try again in a moment",
			    (long long)id, s.host, s.to_host);
		goto fail_clear;
	}
	if (strcmp(s.state, "assigned") != 0 && strcmp(s.state, "starting") != 0) {
		vdi_err_set(err, VDI_R_CONFLICT, "session %lld is %s", (long long)id, s.state);
		goto fail_clear;
	}
	/* Storm control, under the write lock: the host's start slots are counted in the VMDB. */
	if (per_host > 0 && s.host_id && strcmp(s.state, "assigned") == 0) {
		if (starts_in_flight(db, s.host_id, id, &inflight, err) < 0)
			goto fail_clear;
		if (inflight >= per_host) {
			vdi_session_clear(&s);
			vdi_db_rollback(db);
			return 2;
		}
	}
	if (vdi_db_prepare(db, &st, "UPDATE sessions SET state = 'starting', changed = ?2, pid = ?3, domain = ?4, "
			   "overlay = ?5, display_address = ?6, display_password = coalesce(display_password, ?7), "
			   "owner = ?8, lease = ?9, warm = nullif(?10, 0), console_password = coalesce(console_password, ?11) "
			   "WHERE id = ?1", err) < 0)
		goto fail_clear;
	vdi_stmt_bind_int64(st, 1, id);
	vdi_stmt_bind_int64(st, 2, vdi_clock_now());
	vdi_stmt_bind_int64(st, 3, (int64_t)getpid());
	vdi_stmt_bind_text(st, 4, domain);
	vdi_stmt_bind_text(st, 5, overlay);
	vdi_stmt_bind_text(st, 6, address);
	vdi_stmt_bind_text(st, 7, password);
	vdi_db_bind_claim(db, st, 8);
	vdi_stmt_bind_int64(st, 10, warm);
	vdi_stmt_bind_text(st, 11, console_password);
	rc = vdi_stmt_step(st);
	vdi_stmt_finalize(st);
	if (rc != VDI_DB_DONE) {
		vdi_db_fail(db, "claiming session", err);
		goto fail_clear;
	}
	vdi_session_clear(&s);
	return vdi_db_commit(db, err);
fail_clear:
	vdi_session_clear(&s);
fail:
	vdi_db_rollback(db);
	return -1;
}

int
vdi_session_set_running(struct vdi_db *db, int64_t id, const struct vdi_ports *port, int64_t warm,
			struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	char detail[256], user[128] = "", domain[160] = "";
	int rc;

	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	if (vdi_db_prepare(db, &st, "UPDATE sessions SET state = 'running', changed = ?2, started = ?2, pid = NULL, "
			   "display_port = ?3, warm = nullif(?5, 0), console_port = nullif(?6, 0) "
			   "WHERE id = ?1 AND state = 'starting' AND owner = ?4 "
			   "RETURNING (SELECT username FROM uservms WHERE id = uservm_id), domain", err) < 0)
		goto fail;
	vdi_stmt_bind_int64(st, 1, id);
	vdi_stmt_bind_int64(st, 2, vdi_clock_now());
	vdi_stmt_bind_int64(st, 3, port->spice);
	vdi_stmt_bind_text(st, 4, vdi_proc_owner());
	vdi_stmt_bind_int64(st, 5, warm);
	vdi_stmt_bind_int64(st, 6, port->vnc);
	rc = vdi_db_step_row(db, st, "recording the running session", err);
	if (rc == 1) {
		snprintf(user, sizeof(user), "%s", vdi_stmt_text(st, 0));
		snprintf(domain, sizeof(domain), "%s", vdi_stmt_text(st, 1));
	} else if (rc == 0) {
		vdi_err_set(err, VDI_R_CLAIM_LOST, "session %lld was ended or taken over while it started",
			    (long long)id);
	}
	vdi_stmt_finalize(st);
	st = NULL;
	if (rc != 1)
		goto fail;
	snprintf(detail, sizeof(detail), "session=%lld domain=%s port=%lld %s", (long long)id, domain, (long long)port,
		 warm ? "restored" : "booted");
	if (vdi_event_add_session(db, user, id, "session-running", detail, err) < 0)
		goto fail;
	return vdi_db_commit(db, err);
fail:
	vdi_stmt_finalize(st);
	vdi_db_rollback(db);
	return -1;
}

int
vdi_session_end(struct vdi_db *db, int64_t id, const char *expect, const char *reason, const char *detail,
		struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	char user[128] = "", d[512];
	int rc;

	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	if (vdi_db_prepare(db, &st, "UPDATE sessions SET state = 'ended', reason = ?3, changed = ?2, ended = ?2, "
			   "pid = NULL, migrate_to = NULL WHERE id = ?1 AND state <> 'ended' AND (state = ?4 OR ?4 IS NULL) "
			   "RETURNING (SELECT username FROM uservms WHERE id = uservm_id)", err) < 0)
		goto fail;
	vdi_stmt_bind_int64(st, 1, id);
	vdi_stmt_bind_int64(st, 2, vdi_clock_now());
	vdi_stmt_bind_text(st, 3, reason);
	if (expect)
		vdi_stmt_bind_text(st, 4, expect);
	rc = vdi_stmt_step(st);
	if (rc == VDI_DB_ROW)
		snprintf(user, sizeof(user), "%s", vdi_stmt_text(st, 0));
	vdi_stmt_finalize(st);
	st = NULL;
	if (rc == VDI_DB_DONE) {
		/* Ended already, or (with expect) moved on meanwhile: not ours to end. */
		vdi_db_rollback(db);
		return 1;
	}
	if (rc != VDI_DB_ROW) {
		vdi_db_fail(db, "ending session", err);
		goto fail;
	}
	snprintf(d, sizeof(d), "session=%lld reason=%s%s%s", (long long)id, reason, detail ? " " : "",
		 detail ? detail : "");
	if (vdi_event_add_session(db, user, id, "session-end", d, err) < 0)
		goto fail;
	return vdi_db_commit(db, err);
fail:
	vdi_stmt_finalize(st);
	vdi_db_rollback(db);
	return -1;
}

static int
list(struct vdi_db *db, const char *sql, const char *host, const char *state, struct vdi_session **out,
     size_t *n, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	struct vdi_session *ss = NULL;
	size_t k = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (vdi_db_prepare(db, &st, sql, err) < 0)
		return -1;
	if (host)
		vdi_stmt_bind_text(st, 1, host);
	if (state)
		vdi_stmt_bind_text(st, 2, state);
	while ((rc = vdi_stmt_step(st)) == VDI_DB_ROW) {
		struct vdi_session *t = vdi_grow(ss, k, sizeof(*t));
		ss = t;
		read_session(st, &ss[k++]);
	}
	vdi_stmt_finalize(st);
	if (rc != VDI_DB_DONE) {
		vdi_sessions_free(ss, k);
		return vdi_db_fail(db, "listing sessions", err);
	}
	*out = ss;
	*n = k;
	return 0;
}

int
vdi_session_list_live(struct vdi_db *db, struct vdi_session **out, size_t *n, struct vdi_err *err)
{
	return list(db, SESSION_SELECT "WHERE s.state <> 'ended' ORDER BY h.name, s.id", NULL, NULL, out, n, err);
}

int
vdi_session_list(struct vdi_db *db, const char *host, const char *state, struct vdi_session **out,
		 size_t *n, struct vdi_err *err)
{
	return list(db, SESSION_SELECT "WHERE (h.name = ?1 OR ?1 IS NULL) AND "
		    "(s.state = ?2 OR ?2 IS NULL AND s.state <> 'ended') ORDER BY s.id DESC",
		    host, state, out, n, err);
}

void
vdi_sessions_free(struct vdi_session *ss, size_t n)
{
	for (size_t i = 0; i < n; i++)
		vdi_session_clear(&ss[i]);
	free(ss);
}

int
vdi_session_claim_stop(struct vdi_db *db, int64_t id, const char *expect, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	struct vdi_session s = { 0 };
	int rc, ret = -1;

	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	if (vdi_session_get(db, id, &s, err) < 0)
		goto out;
	if (strcmp(s.state, "ended") == 0 || (expect && strcmp(s.state, expect) != 0)) {
		ret = 1; /* moved on since the caller looked: leave it to whoever moved it */
		goto out;
	}
	if (strcmp(s.state, "starting") == 0 && vdi_claim_elsewhere(s.pid, s.owner, s.lease)) {
		vdi_err_set(err, VDI_R_CONFLICT, "session %lld is being started by process %lld; try again",
			    (long long)id, (long long)s.pid);
		goto out;
	}
	/* A move is finished or undone first (migrate.h): until then its domain may run on either host. */
	if (strcmp(s.state, "migrating") == 0) {
		if (vdi_claim_elsewhere(s.pid, s.owner, s.lease))
			vdi_err_set(err, VDI_R_CONFLICT, "session %lld is being moved to %s by process %lld; try again",
				    (long long)id, s.to_host, (long long)s.pid);
		else
			vdi_err_set(err, VDI_R_CONFLICT, "session %lld was left moving to %s; vm-reap finishes "
				    "or undoes the move first", (long long)id, s.to_host);
		goto out;
	}
	if (vdi_db_prepare(db, &st, "UPDATE sessions SET state = 'stopping', changed = ?2, pid = ?3, owner = ?4, "
			   "lease = ?5 WHERE id = ?1 AND state <> 'ended'", err) < 0)
		goto out;
	vdi_stmt_bind_int64(st, 1, id);
	vdi_stmt_bind_int64(st, 2, vdi_clock_now());
	vdi_stmt_bind_int64(st, 3, (int64_t)getpid());
	vdi_db_bind_claim(db, st, 4);
	rc = vdi_db_step(db, st, "stopping session", err);
	vdi_stmt_finalize(st);
	if (rc < 0)
		goto out;
	/* Rule 2: stopping is committed before the domain goes. */
	if (vdi_db_commit(db, err) < 0)
		goto out;
	ret = 0;
out:
	if (ret != 0)
		vdi_db_rollback(db);
	vdi_session_clear(&s);
	return ret;
}

int
vdi_session_set_address(struct vdi_db *db, int64_t id, const char *address, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int ret;

	/* Not an audited state change: no event; a plain autocommit statement. */
	if (vdi_db_prepare(db, &st, "UPDATE sessions SET address = ?2, address_seen = ?3 "
			   "WHERE id = ?1 AND state <> 'ended'", err) < 0)
		return -1;
	vdi_stmt_bind_int64(st, 1, id);
	vdi_stmt_bind_text(st, 2, address);
	vdi_stmt_bind_int64(st, 3, vdi_clock_now());
	ret = vdi_db_step(db, st, "recording the address", err);
	vdi_stmt_finalize(st);
	return ret;
}

bool
vdi_session_connected(const struct vdi_session *s)
{
	return s->connected_since > 0 && s->disconnected_since == 0;
}

bool
vdi_session_watched(const struct vdi_session *s, int64_t now)
{
	return s->watch_since > 0 && now - s->watch_seen <= VDI_WATCH_STALE;
}

int
vdi_session_set_viewer(struct vdi_db *db, int64_t id, bool connected, int64_t at, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	char detail[96], user[128] = "";
	int rc, ret = -1;

	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	/* Only a change is an event: a second client, or a second "gone", is not. */
	if (vdi_db_prepare(db, &st, connected ?
			   "UPDATE sessions SET connected_since = ?2, disconnected_since = NULL "
			   "WHERE id = ?1 AND state <> 'ended' AND (connected_since IS NULL OR disconnected_since IS NOT NULL) "
			   "RETURNING (SELECT username FROM uservms WHERE id = uservm_id)" :
			   "UPDATE sessions SET disconnected_since = ?2 "
			   "WHERE id = ?1 AND state <> 'ended' AND connected_since IS NOT NULL AND disconnected_since IS NULL "
			   "RETURNING (SELECT username FROM uservms WHERE id = uservm_id)", err) < 0)
		goto out;
	vdi_stmt_bind_int64(st, 1, id);
	vdi_stmt_bind_int64(st, 2, at);
	rc = vdi_stmt_step(st);
	if (rc == VDI_DB_ROW)
		snprintf(user, sizeof(user), "%s", vdi_stmt_text(st, 0));
	vdi_stmt_finalize(st);
	if (rc != VDI_DB_ROW && rc != VDI_DB_DONE) {
		vdi_db_fail(db, "recording the viewer", err);
		goto out;
	}
	if (rc == VDI_DB_DONE) {
		ret = 0;
		goto out;
	}
	snprintf(detail, sizeof(detail), "session=%lld", (long long)id);
	if (vdi_event_add_session(db, user, id, connected ? "viewer-connected" : "viewer-disconnected", detail, err) < 0)
		goto out;
	if (vdi_db_commit(db, err) < 0)
		return -1;
	return 1;
out:
	vdi_db_rollback(db);
	return ret;
}

int
vdi_session_set_ticket(struct vdi_db *db, int64_t id, const char *password, int64_t expires,
		       struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int ret;

	if (vdi_db_prepare(db, &st, "UPDATE sessions SET display_password = ?2, ticket_expires = nullif(?3, 0) "
			   "WHERE id = ?1 AND state <> 'ended'", err) < 0)
		return -1;
	vdi_stmt_bind_int64(st, 1, id);
	vdi_stmt_bind_text(st, 2, password);
	vdi_stmt_bind_int64(st, 3, expires);
	ret = vdi_db_step(db, st, "recording the display password", err);
	vdi_stmt_finalize(st);
	return ret;
}

int
vdi_session_claim_move(struct vdi_db *db, int64_t id, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	struct vdi_session s = { 0 };
	int ret = -1;

	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	if (vdi_session_get(db, id, &s, err) < 0)
		goto out;
	if (strcmp(s.state, "migrating") != 0) {
		ret = 1;
		goto out;
	}
	if (vdi_claim_elsewhere(s.pid, s.owner, s.lease)) {
		vdi_err_set(err, VDI_R_CONFLICT, "session %lld is being moved to %s by process %lld; try again",
			    (long long)id, s.to_host, (long long)s.pid);
		goto out;
	}
	if (vdi_db_prepare(db, &st, "UPDATE sessions SET pid = ?2, owner = ?3, lease = ?4 WHERE id = ?1 "
			   "AND state = 'migrating'", err) < 0)
		goto out;
	vdi_stmt_bind_int64(st, 1, id);
	vdi_stmt_bind_int64(st, 2, (int64_t)getpid());
	vdi_db_bind_claim(db, st, 3);
	ret = vdi_db_step(db, st, "taking over a move", err);
	vdi_stmt_finalize(st);
	if (ret == 0)
		ret = vdi_db_commit(db, err);
out:
	if (ret != 0)
		vdi_db_rollback(db);
	vdi_session_clear(&s);
	return ret;
}

int
vdi_session_end_move(struct vdi_db *db, int64_t id, bool moved, const struct vdi_ports *port,
		     const char *display_address,
		     const char *detail, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	char user[128] = "";
	int rc, ret = -1;

	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	if (vdi_db_prepare(db, &st, moved ?
			   "UPDATE sessions SET state = 'running', host_id = migrate_to, migrate_to = NULL, pid = NULL, "
			   "changed = ?2, migrated = ?2, display_port = ?3, display_address = coalesce(?4, display_address), "
			   "console_port = nullif(?6, 0), "
			   "address = NULL, address_seen = NULL "
			   "WHERE id = ?1 AND state = 'migrating' AND owner = ?5 "
			   "RETURNING (SELECT username FROM uservms WHERE id = uservm_id)" :
			   "UPDATE sessions SET state = 'running', migrate_to = NULL, pid = NULL, changed = ?2 "
			   "WHERE id = ?1 AND state = 'migrating' AND owner = ?5 "
			   "RETURNING (SELECT username FROM uservms WHERE id = uservm_id)", err) < 0)
		goto out;
	vdi_stmt_bind_int64(st, 1, id);
	vdi_stmt_bind_int64(st, 2, vdi_clock_now());
	if (moved) {
		vdi_stmt_bind_int64(st, 3, port->spice);
		vdi_stmt_bind_text(st, 4, display_address);
		vdi_stmt_bind_int64(st, 6, port->vnc);
	}
	vdi_stmt_bind_text(st, 5, vdi_proc_owner());
	rc = vdi_stmt_step(st);
	if (rc == VDI_DB_ROW)
		snprintf(user, sizeof(user), "%s", vdi_stmt_text(st, 0));
	vdi_stmt_finalize(st);
	if (rc == VDI_DB_DONE) {
		vdi_err_set(err, VDI_R_CONFLICT, "session %lld is no longer this process's to move", (long long)id);
		goto out;
	}
	if (rc != VDI_DB_ROW) {
		vdi_db_fail(db, "recording the move", err);
		goto out;
	}
	if (vdi_event_add_session(db, user, id, moved ? "session-migrate" : "session-migrate-undone", detail, err) < 0)
		goto out;
	ret = vdi_db_commit(db, err);
out:
	if (ret < 0)
		vdi_db_rollback(db);
	return ret;
}

int
vdi_session_insert(struct vdi_db *db, int64_t uservm, int64_t host, int64_t mem, int64_t vcpus,
		   const char *kind, int64_t now, int64_t *id, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int rc;

	if (vdi_db_prepare(db, &st, "INSERT INTO sessions (uservm_id, host_id, state, mem, vcpus, created, changed, "
			   "kind) VALUES (?1, ?2, 'assigned', ?3, ?4, ?5, ?5, ?6) RETURNING id", err) < 0)
		return -1;
	vdi_stmt_bind_int64(st, 1, uservm);
	vdi_stmt_bind_int64(st, 2, host);
	vdi_stmt_bind_int64(st, 3, mem);
	vdi_stmt_bind_int64(st, 4, vcpus);
	vdi_stmt_bind_int64(st, 5, now);
	vdi_stmt_bind_text(st, 6, kind);
	rc = vdi_stmt_step(st);
	if (rc == VDI_DB_ROW)
		*id = vdi_stmt_int64(st, 0);
	else
		vdi_db_fail(db, "reserving", err);
	vdi_stmt_finalize(st);
	return rc == VDI_DB_ROW ? 0 : -1;
}

int
vdi_session_set_group(struct vdi_db *db, int64_t id, const char *grp, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int rc;

	if (vdi_db_prepare(db, &st, "UPDATE sessions SET grp = ?2 WHERE id = ?1", err) < 0)
		return -1;
	vdi_stmt_bind_int64(st, 1, id);
	vdi_stmt_bind_text(st, 2, grp);
	rc = vdi_db_step(db, st, "charging the session to its group", err);
	vdi_stmt_finalize(st);
	return rc;
}

int
vdi_session_move_begin(struct vdi_db *db, int64_t id, int64_t host, int64_t now, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int rc;

	if (vdi_db_prepare(db, &st, "UPDATE sessions SET state = 'migrating', migrate_to = ?2, pid = ?3, changed = ?4, "
			   "owner = ?5, lease = ?6 WHERE id = ?1 AND state = 'running'", err) < 0)
		return -1;
	vdi_stmt_bind_int64(st, 1, id);
	vdi_stmt_bind_int64(st, 2, host);
	vdi_stmt_bind_int64(st, 3, (int64_t)getpid());
	vdi_stmt_bind_int64(st, 4, now);
	vdi_db_bind_claim(db, st, 5);
	rc = vdi_db_step(db, st, "reserving the destination", err);
	vdi_stmt_finalize(st);
	return rc;
}

int
vdi_session_end_on_host(struct vdi_db *db, int64_t host, const char *reason, int64_t now, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int rc;

	if (vdi_db_prepare(db, &st, "UPDATE sessions SET state = 'ended', reason = ?3, changed = ?2, ended = ?2 "
			   "WHERE host_id = ?1 AND state <> 'ended'", err) < 0)
		return -1;
	vdi_stmt_bind_int64(st, 1, host);
	vdi_stmt_bind_int64(st, 2, now);
	vdi_stmt_bind_text(st, 3, reason);
	rc = vdi_db_step(db, st, "ending sessions", err);
	vdi_stmt_finalize(st);
	return rc;
}

int
vdi_session_forget_ended(struct vdi_db *db, int64_t uservm, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int rc;

	if (vdi_db_prepare(db, &st, "DELETE FROM sessions WHERE uservm_id = ?1 AND state = 'ended'", err) < 0)
		return -1;
	vdi_stmt_bind_int64(st, 1, uservm);
	rc = vdi_db_step(db, st, "forgetting ended sessions", err);
	vdi_stmt_finalize(st);
	return rc;
}

int
vdi_session_end_fenced(struct vdi_db *db, int64_t host, int64_t now, int64_t *n, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int64_t *ids = NULL;
	char **users = NULL, d[128];
	size_t k = 0;
	int rc, ret = -1;

	*n = 0;
	if (vdi_db_prepare(db, &st, "UPDATE sessions SET state = 'ended', reason = 'host-lost', changed = ?2, "
			   "ended = ?2, pid = NULL, migrate_to = NULL WHERE host_id = ?1 AND state NOT IN ('ended', "
			   "'migrating') RETURNING id, (SELECT username FROM uservms WHERE id = uservm_id)", err) < 0)
		return -1;
	vdi_stmt_bind_int64(st, 1, host);
	vdi_stmt_bind_int64(st, 2, now);
	while ((rc = vdi_stmt_step(st)) == VDI_DB_ROW) {
		ids = vdi_grow(ids, k, sizeof(*ids));
		users = vdi_grow(users, k, sizeof(*users));
		ids[k] = vdi_stmt_int64(st, 0);
		users[k++] = vdi_stmt_strdup(st, 1);
	}
	if (rc != VDI_DB_DONE) {
		vdi_db_fail(db, "ending the fenced host's sessions", err);
		goto out;
	}
	vdi_stmt_finalize(st);
	st = NULL;
	for (size_t i = 0; i < k; i++) {
		snprintf(d, sizeof(d), "session=%lld reason=host-lost fenced", (long long)ids[i]);
		if (vdi_event_add_session(db, users[i] ? users[i] : "", ids[i], "session-end", d, err) < 0)
			goto out;
	}
	*n = (int64_t)k;
	ret = 0;
out:
	vdi_stmt_finalize(st);
	for (size_t i = 0; i < k; i++)
		free(users[i]);
	free(users);
	free(ids);
	return ret;
}

int
vdi_session_overlays_ended(struct vdi_db *db, int64_t host, char ***out, size_t *n, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int rc;

	*out = NULL;
	*n = 0;
	if (vdi_db_prepare(db, &st, "SELECT DISTINCT overlay FROM sessions WHERE host_id = ? AND state = 'ended' "
			   "AND overlay IS NOT NULL ORDER BY overlay", err) < 0)
		return -1;
	vdi_stmt_bind_int64(st, 1, host);
	while ((rc = vdi_stmt_step(st)) == VDI_DB_ROW) {
		*out = vdi_grow(*out, *n, sizeof(**out));
		(*out)[(*n)++] = vdi_stmt_strdup(st, 0);
	}
	vdi_stmt_finalize(st);
	if (rc != VDI_DB_DONE) {
		vdi_strv_free(*out, *n);
		*out = NULL;
		*n = 0;
		return vdi_db_fail(db, "reading the host's sessions", err);
	}
	return 0;
}

int
vdi_session_warm_users(struct vdi_db *db, int64_t build, int64_t *n, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int rc;

	*n = 0;
	if (vdi_db_prepare(db, &st, "SELECT count(*) FROM sessions WHERE warm = ?1 AND state <> 'ended'", err) < 0)
		return -1;
	vdi_stmt_bind_int64(st, 1, build);
	rc = vdi_stmt_step(st);
	if (rc == VDI_DB_ROW)
		*n = vdi_stmt_int64(st, 0);
	vdi_stmt_finalize(st);
	return rc == VDI_DB_ROW ? 0 : vdi_db_fail(db, "counting the sessions of a warm image", err);
}
