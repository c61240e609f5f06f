/*
 * host.c - the host inventory in the VMDB (see host.h).
 *
 * Each change is one short transaction with its event; nothing here holds
 * a transaction across network I/O (polling probes first, then stores).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "event.h"
#include "metrics.h"
#include "host.h"
#include "names.h"
#include "parse.h"
#include "report.h"
#include "session.h"
#include "strv.h"

#define HOST_COLS \
	"h.id, h.name, h.uri, h.pool, h.admin, h.health, h.display_address, h.max_sessions, " \
	"h.cpu_ratio, h.ram_ratio, h.reserve_mem, h.vcpus, h.mem_total, h.mem_free, h.load, " \
	"h.domains_total, h.domains_ours, h.last_poll, h.last_ok, h.down_since, h.created, " \
	"h.last_error, h.sessions, h.vcpus_used, h.mem_used, h.network, h.bridge, h.migration_uri, " \
	"coalesce(h.fenced, 0), h.crashes"

const char *
vdi_host_state(const struct vdi_host *h)
{
	if (h->fenced)
		return "fenced";
	if (strcmp(h->admin, "maintenance") == 0)
		return "maintenance";
	if (strcmp(h->health, "down") == 0)
		return "down";
	if (strcmp(h->admin, "draining") == 0)
		return "draining";
	return h->health; /* unknown or up */
}

int
vdi_display_address_check(const char *a, struct vdi_err *err)
{
	size_t n = strlen(a);

	if (n == 0 || n > 253)
		goto bad;
	for (const char *p = a; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '-' || *p == ':'))
			goto bad;
	if (a[0] == '-' || a[0] == '.')
		goto bad;
	return 0;
bad:
	return vdi_err_set(err, VDI_R_USAGE, "invalid display address '%.80s': expected a host name "
			   "or an IP address", a);
}

static int64_t
host_id(struct vdi_db *db, const char *name, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int64_t id = -1;
	int rc;

	if (vdi_db_prepare(db, &st, "SELECT id FROM hosts WHERE name = ?", err) < 0)
		return -1;
	vdi_stmt_bind_text(st, 1, name);
	rc = vdi_stmt_step(st);
	if (rc == VDI_DB_ROW)
		id = vdi_stmt_int64(st, 0);
	else if (rc == VDI_DB_DONE)
		vdi_err_set(err, VDI_R_NOTFOUND, "no host '%s'", name);
	else
		vdi_db_fail(db, "looking up host", err);
	vdi_stmt_finalize(st);
	return id;
}

int
vdi_host_exists(struct vdi_db *db, const char *name, struct vdi_err *err)
{
	struct vdi_err e = { 0 };

	if (host_id(db, name, &e) >= 0)
		return 1;
	if (e.code == VDI_ENOTFOUND)
		return 0;
	vdi_err_copy(err, &e);
	return -1;
}

static int
set_tags(struct vdi_db *db, int64_t id, char **tags, size_t n, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int ret = -1;

	if (vdi_db_prepare(db, &st, "DELETE FROM host_tags WHERE host_id = ?", err) < 0)
		return -1;
	vdi_stmt_bind_int64(st, 1, id);
	if (vdi_db_step(db, st, "setting tags", err) < 0)
		goto out;
	vdi_stmt_finalize(st);
	if (vdi_db_prepare(db, &st, "INSERT INTO host_tags (host_id, tag) VALUES (?, ?) ON CONFLICT DO NOTHING", err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		vdi_stmt_reset(st);
		vdi_stmt_bind_int64(st, 1, id);
		vdi_stmt_bind_text(st, 2, tags[i]);
		if (vdi_db_step(db, st, "setting tags", err) < 0)
			goto out;
	}
	ret = 0;
out:
	vdi_stmt_finalize(st);
	return ret;
}

/* A short description of a spec's values, for the events table. */
static void
spec_detail(const struct vdi_host_spec *s, const char *uri, char *buf, size_t len)
{
	size_t o = 0;

#define PUT(...) do { if (o < len) o += (size_t)snprintf(buf + o, len - o, __VA_ARGS__); } while (0)
	buf[0] = '\0';
	if (uri)
		PUT("uri=%s ", uri);
	if (s->pool)
		PUT("pool=%s ", s->pool);
	if (s->has_max_sessions)
		PUT("max_sessions=%lld ", (long long)s->max_sessions);
	if (s->has_cpu_ratio)
		PUT("cpu_ratio=%g ", s->cpu_ratio);
	if (s->has_ram_ratio)
		PUT("ram_ratio=%g ", s->ram_ratio);
	if (s->has_reserve_mem)
		PUT("reserve_mem=%lld ", (long long)s->reserve_mem);
	if (s->has_display_address)
		PUT("display_address=%s ", s->display_address ? s->display_address : "");
	if (s->has_migration_uri)
		PUT("migration_uri=%s ", s->migration_uri && *s->migration_uri ? s->migration_uri : "default");
	if (s->has_network && s->network && *s->network)
		PUT("network=%s ", s->network);
	else if (s->has_network && s->bridge && *s->bridge)
		PUT("bridge=%s ", s->bridge);
	else if (s->has_network)
		PUT("network=none ");
	if (s->has_tags) {
		PUT("tags=");
		for (size_t i = 0; i < s->ntags; i++)
			PUT("%s%s", i ? "," : "", s->tags[i]);
	}
#undef PUT
	if (o > 0 && o < len && buf[o - 1] == ' ')
		buf[o - 1] = '\0';
}

/* Apply the spec's fields to host id (inside the caller's transaction). */
static int
apply_spec(struct vdi_db *db, int64_t id, const struct vdi_host_spec *s, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int ret = -1;

	if (vdi_db_prepare(db, &st,
			   "UPDATE hosts SET "
			   " pool = coalesce(?2, pool),"
			   " max_sessions = CASE WHEN ?3 <> 0 THEN ?4 ELSE max_sessions END,"
			   " cpu_ratio = CASE WHEN ?5 <> 0 THEN ?6 ELSE cpu_ratio END,"
			   " ram_ratio = CASE WHEN ?7 <> 0 THEN ?8 ELSE ram_ratio END,"
			   " reserve_mem = CASE WHEN ?9 <> 0 THEN ?10 ELSE reserve_mem END,"
			   " display_address = CASE WHEN ?11 <> 0 THEN nullif(?12, '') ELSE display_address END,"
			   " network = CASE WHEN ?13 <> 0 THEN nullif(?14, '') ELSE network END,"
			   " bridge = CASE WHEN ?13 <> 0 THEN nullif(?15, '') ELSE bridge END,"
			   " migration_uri = CASE WHEN ?16 <> 0 THEN nullif(?17, '') ELSE migration_uri END"
			   " WHERE id = ?1", err) < 0)
		return -1;
	vdi_stmt_bind_int64(st, 1, id);
	if (s->pool)
		vdi_stmt_bind_text(st, 2, s->pool);
	vdi_stmt_bind_int(st, 3, s->has_max_sessions);
	if (s->max_sessions >= 0)
		vdi_stmt_bind_int64(st, 4, s->max_sessions);
	vdi_stmt_bind_int(st, 5, s->has_cpu_ratio);
	vdi_stmt_bind_double(st, 6, s->cpu_ratio);
	vdi_stmt_bind_int(st, 7, s->has_ram_ratio);
	vdi_stmt_bind_double(st, 8, s->ram_ratio);
	vdi_stmt_bind_int(st, 9, s->has_reserve_mem);
	vdi_stmt_bind_int64(st, 10, s->reserve_mem);
	vdi_stmt_bind_int(st, 11, s->has_display_address);
	vdi_stmt_bind_text(st, 12, s->display_address ? s->display_address : "");
	vdi_stmt_bind_int(st, 13, s->has_network);
	vdi_stmt_bind_text(st, 14, s->network ? s->network : "");
	vdi_stmt_bind_text(st, 15, s->network && *s->network ? "" : s->bridge ? s->bridge : "");
	vdi_stmt_bind_int(st, 16, s->has_migration_uri);
	vdi_stmt_bind_text(st, 17, s->migration_uri ? s->migration_uri : "");
	if (vdi_db_step(db, st, "updating host", err) < 0)
		goto out;
	if (s->has_tags && set_tags(db, id, s->tags, s->ntags, err) < 0)
		goto out;
	ret = 0;
out:
	vdi_stmt_finalize(st);
	return ret;
}

int
vdi_host_add(struct vdi_db *db, const char *name, const char *uri,
	     const struct vdi_host_spec *spec, const struct vdi_node_report *probe,
	     struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int64_t now = vdi_clock_now(), id;
	char detail[1024];
	int rc;

	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	/*
	 * A name or URI taken makes no row (DO NOTHING): the transaction stays
	 * usable to say which, on PostgreSQL too, where a failed statement
	 * would end it.
	 */
	if (vdi_db_prepare(db, &st, "INSERT INTO hosts (name, uri, pool, created) VALUES (?, ?, ?, ?) "
			   "ON CONFLICT DO NOTHING RETURNING id", err) < 0)
		goto fail;
	vdi_stmt_bind_text(st, 1, name);
	vdi_stmt_bind_text(st, 2, uri);
	vdi_stmt_bind_text(st, 3, spec->pool);
	vdi_stmt_bind_int64(st, 4, now);
	rc = vdi_stmt_step(st);
	if (rc == VDI_DB_ROW)
		id = vdi_stmt_int64(st, 0);
	else if (rc == VDI_DB_ERROR)
		vdi_db_fail(db, "adding host", err);
	vdi_stmt_finalize(st);
	st = NULL;
	if (rc == VDI_DB_DONE) {
		int ex = vdi_host_exists(db, name, err);
		if (ex == 1)
			vdi_err_set(err, VDI_R_CONFLICT, "host '%s' exists already", name);
		else if (ex == 0)
			vdi_err_set(err, VDI_R_CONFLICT, "URI %s is host of another name already "
				    "(see vm-hosts list)", uri);
	}
	if (rc != VDI_DB_ROW)
		goto fail;
	if (apply_spec(db, id, spec, err) < 0)
		goto fail;
	if (probe) {
		if (vdi_db_prepare(db, &st, "UPDATE hosts SET health = 'up', vcpus = ?, mem_total = ?, "
				   "mem_free = ?, last_poll = ?, last_ok = ? WHERE id = ?", err) < 0)
			goto fail;
		vdi_stmt_bind_int64(st, 1, probe->vcpus);
		vdi_stmt_bind_int64(st, 2, probe->mem_total);
		vdi_stmt_bind_int64(st, 3, probe->mem_free);
		vdi_stmt_bind_int64(st, 4, now);
		vdi_stmt_bind_int64(st, 5, now);
		vdi_stmt_bind_int64(st, 6, id);
		rc = vdi_db_step(db, st, "adding host", err);
		vdi_stmt_finalize(st);
		if (rc < 0)
			goto fail;
	}
	spec_detail(spec, uri, detail, sizeof(detail));
	if (vdi_event_add_host(db, name, "host-add", detail, err) < 0)
		goto fail;
	return vdi_db_commit(db, err);
fail:
	vdi_db_rollback(db);
	return -1;
}

int
vdi_host_update(struct vdi_db *db, const char *name, const struct vdi_host_spec *spec,
		struct vdi_err *err)
{
	int64_t id;
	char detail[1024];

	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	id = host_id(db, name, err);
	if (id < 0 || apply_spec(db, id, spec, err) < 0)
		goto fail;
	spec_detail(spec, NULL, detail, sizeof(detail));
	if (vdi_event_add_host(db, name, "host-set", detail, err) < 0)
		goto fail;
	return vdi_db_commit(db, err);
fail:
	vdi_db_rollback(db);
	return -1;
}

static int
load_tags(struct vdi_db *db, struct vdi_host *h, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int rc;

	if (vdi_db_prepare(db, &st, "SELECT tag FROM host_tags WHERE host_id = ? ORDER BY tag", err) < 0)
		return -1;
	vdi_stmt_bind_int64(st, 1, h->id);
	while ((rc = vdi_stmt_step(st)) == VDI_DB_ROW) {
		vdi_strv_push(&h->tags, &h->ntags, vdi_stmt_strdup(st, 0));
	}
	vdi_stmt_finalize(st);
	if (rc != VDI_DB_DONE)
		return vdi_db_fail(db, "reading tags", err);
	return 0;
}

static void
read_row(struct vdi_stmt *st, struct vdi_host *h)
{
	memset(h, 0, sizeof(*h));
	h->id = vdi_stmt_int64(st, 0);
	h->name = vdi_stmt_strdup(st, 1);
	h->uri = vdi_stmt_strdup(st, 2);
	h->pool = vdi_stmt_strdup(st, 3);
	h->admin = vdi_stmt_strdup(st, 4);
	h->health = vdi_stmt_strdup(st, 5);
	h->display_address = vdi_stmt_strdup(st, 6);
	h->max_sessions = vdi_stmt_null(st, 7) ? -1 : vdi_stmt_int64(st, 7);
	h->cpu_ratio = vdi_stmt_double(st, 8);
	h->ram_ratio = vdi_stmt_double(st, 9);
	h->reserve_mem = vdi_stmt_int64(st, 10);
	h->vcpus = vdi_stmt_int64(st, 11);
	h->mem_total = vdi_stmt_int64(st, 12);
	h->mem_free = vdi_stmt_int64(st, 13);
	h->load_known = !vdi_stmt_null(st, 14);
	h->load = vdi_stmt_double(st, 14);
	h->domains_total = vdi_stmt_int64(st, 15);
	h->domains_ours = vdi_stmt_int64(st, 16);
	h->last_poll = vdi_stmt_int64(st, 17);
	h->last_ok = vdi_stmt_int64(st, 18);
	h->down_since = vdi_stmt_int64(st, 19);
	h->created = vdi_stmt_int64(st, 20);
	h->last_error = vdi_stmt_strdup(st, 21);
	h->sessions = vdi_stmt_int64(st, 22);
	h->vcpus_used = vdi_stmt_int64(st, 23);
	h->mem_used = vdi_stmt_int64(st, 24);
	h->network = vdi_stmt_strdup(st, 25);
	h->bridge = vdi_stmt_strdup(st, 26);
	h->migration_uri = vdi_stmt_strdup(st, 27);
	h->fenced = vdi_stmt_int64(st, 28);
	h->crashes = vdi_stmt_int64(st, 29);
}

int
vdi_migration_uri_check(const char *u, struct vdi_err *err)
{
	const char *a = NULL, *colon;
	char host[256];

	if (strncmp(u, "tcp://", 6) == 0)
		a = u + 6;
	else if (strncmp(u, "rdma://", 7) == 0)
		a = u + 7;
	if (!a)
		return vdi_err_set(err, VDI_R_USAGE, "invalid migration URI '%.80s': expected tcp://ADDRESS[:PORT]", u);
	/* ADDRESS, or [IPv6], then an optional :PORT */
	colon = a[0] == '[' ? strchr(a, ']') : strrchr(a, ':');
	if (a[0] == '[' && (!colon || (colon[1] && colon[1] != ':')))
		return vdi_err_set(err, VDI_R_USAGE, "invalid migration URI '%.80s': expected tcp://ADDRESS[:PORT]", u);
	if (a[0] == '[') {
		snprintf(host, sizeof(host), "%.*s", (int)(colon - a - 1), a + 1);
		colon = colon[1] ? colon + 1 : NULL;
	} else {
		snprintf(host, sizeof(host), "%.*s", colon ? (int)(colon - a) : (int)strlen(a), a);
	}
	if (vdi_display_address_check(host, err) < 0)
		return vdi_err_set(err, VDI_R_USAGE, "invalid migration URI '%.80s': '%.80s' is not a host name or "
				   "an address", u, host);
	if (colon) {
		char *end;
		long port = strtol(colon + 1, &end, 10);
		if (!colon[1] || *end || port < 1 || port > 65535)
			return vdi_err_set(err, VDI_R_USAGE, "invalid migration URI '%.80s': bad port", u);
	}
	return 0;
}

int
vdi_bridge_check(const char *name, struct vdi_err *err)
{
	size_t n = strlen(name);

	if (n == 0 || n > 15 || strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != n ||
	    name[0] == '-' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return vdi_err_set(err, VDI_R_USAGE, "invalid bridge name '%.40s': 1 to 15 of A-Z a-z 0-9 . _ -", name);
	return 0;
}

int
vdi_host_get(struct vdi_db *db, const char *name, struct vdi_host *h, struct vdi_err *err)
{
	struct vdi_host *hs = NULL;
	size_t n = 0;
	char *names[1] = { (char *)name };

	if (vdi_host_list(db, names, 1, &hs, &n, err) < 0)
		return -1;
	*h = hs[0];
	free(hs);
	return 0;
}

int
vdi_host_list(struct vdi_db *db, char *const *names, size_t nnames,
	      struct vdi_host **out, size_t *nout, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	struct vdi_host *hs = NULL;
	size_t n = 0, cap = 0, k;
	int rc, ret = -1;
	bool began;

	*out = NULL;
	*nout = 0;
	/* One read transaction: a consistent view across the queries. */
	if (vdi_db_read_begin(db, &began, err) < 0)
		return -1;
	if (vdi_db_prepare(db, &st, "SELECT " HOST_COLS " FROM hosts h "
			   "WHERE h.name = ?1 OR ?1 IS NULL ORDER BY h.name", err) < 0)
		goto out;
	for (k = 0; k < (names ? nnames : 1); k++) {
		bool found = false;
		vdi_stmt_reset(st);
		if (names)
			vdi_stmt_bind_text(st, 1, names[k]);
		while ((rc = vdi_stmt_step(st)) == VDI_DB_ROW) {
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				hs = vdi_grow(hs, cap - 1, sizeof(*hs));
			}
			read_row(st, &hs[n]);
			n++;
			found = true;
			if (load_tags(db, &hs[n - 1], err) < 0)
				goto out;
		}
		if (rc != VDI_DB_DONE) {
			vdi_db_fail(db, "listing hosts", err);
			goto out;
		}
		if (names && !found) {
			vdi_err_set(err, VDI_R_NOTFOUND, "no host '%s'", names[k]);
			goto out;
		}
	}
	*out = hs;
	*nout = n;
	hs = NULL;
	ret = 0;
out:
	vdi_stmt_finalize(st);
	vdi_db_read_end(db, began);
	if (hs)
		vdi_hosts_free(hs, n);
	return ret;
}

void
vdi_host_clear(struct vdi_host *h)
{
	free(h->name);
	free(h->uri);
	free(h->pool);
	free(h->admin);
	free(h->health);
	free(h->display_address);
	free(h->network);
	free(h->bridge);
	free(h->migration_uri);
	free(h->last_error);
	vdi_strv_free(h->tags, h->ntags);
	memset(h, 0, sizeof(*h));
}

void
vdi_hosts_free(struct vdi_host *hs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		vdi_host_clear(&hs[i]);
	free(hs);
}

int
vdi_host_for_pool(struct vdi_db *db, const char *pool, const char *want, char **name, char **uri,
		  struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int rc, ret = -1;

	/* A host named by hand may see more pools than its default: libvirt will tell. */
	*name = *uri = NULL;
	if (vdi_db_prepare(db, &st, "SELECT name, uri, pool FROM hosts WHERE (name = ?2 OR ?2 IS NULL) AND "
			   "(?2 IS NOT NULL OR (pool = ?1 AND health <> 'down' AND admin <> 'maintenance')) "
			   "ORDER BY health = 'up' DESC, name LIMIT 1", err) < 0)
		return -1;
	vdi_stmt_bind_text(st, 1, pool);
	if (want)
		vdi_stmt_bind_text(st, 2, want);
	rc = vdi_stmt_step(st);
	if (rc == VDI_DB_ROW) {
		*name = vdi_stmt_strdup(st, 0);
		*uri = vdi_stmt_strdup(st, 1);
		ret = 0;
	} else if (rc == VDI_DB_DONE) {
		if (want)
			vdi_err_set(err, VDI_R_NOTFOUND, "no host '%s'", want);
		else
			vdi_err_set(err, VDI_R_NOHOST, "no host that is up sees pool '%s' (see vm-hosts list)", pool);
	} else {
		vdi_db_fail(db, "looking for a host", err);
	}
	vdi_stmt_finalize(st);
	return ret;
}

/* Sessions that are not ended on host id, or moving there; -1 on error. */
static int64_t
live_sessions(struct vdi_db *db, int64_t id, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int64_t n = -1;

	if (vdi_db_prepare(db, &st, "SELECT count(*) FROM sessions WHERE (host_id = ?1 OR migrate_to = ?1) "
			   "AND state <> 'ended'", err) < 0)
		return -1;
	vdi_stmt_bind_int64(st, 1, id);
	if (vdi_stmt_step(st) == VDI_DB_ROW)
		n = vdi_stmt_int64(st, 0);
	else
		vdi_db_fail(db, "counting sessions", err);
	vdi_stmt_finalize(st);
	return n;
}

int
vdi_host_set_admin(struct vdi_db *db, const char *name, const char *admin, bool force, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int64_t id, live = 0;
	int rc;

	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	id = host_id(db, name, err);
	if (id < 0)
		goto fail;
	if (strcmp(admin, "maintenance") == 0 && !force) {
		/* Counted in the same transaction that marks it: no session slips in between. */
		if ((live = live_sessions(db, id, err)) < 0)
			goto fail;
		if (live > 0) {
			vdi_err_set(err, VDI_R_CONFLICT, "host '%s' has %lld session%s that %s not ended (--migrate "
				    "moves them first, vm-reap --host ends them, --force marks it anyway)", name,
				    (long long)live, live == 1 ? "" : "s", live == 1 ? "is" : "are");
			goto fail;
		}
	}
	/* Back to active is also the end of a fence: the administrator has it back. */
	if (vdi_db_prepare(db, &st, "UPDATE hosts SET admin = ?1, fenced = CASE WHEN ?1 = 'active' THEN NULL "
			   "ELSE fenced END WHERE id = ?2 AND (admin <> ?1 OR (?1 = 'active' AND fenced IS NOT NULL))",
			   err) < 0)
		goto fail;
	vdi_stmt_bind_text(st, 1, admin);
	vdi_stmt_bind_int64(st, 2, id);
	rc = vdi_db_step(db, st, "changing host", err);
	vdi_stmt_finalize(st);
	if (rc < 0)
		goto fail;
	/* Only a real change is an event: draining a draining host changes nothing. */
	if (vdi_db_changes(db) > 0 && vdi_event_add_host(db, name, "host-admin", admin, err) < 0)
		goto fail;
	return vdi_db_commit(db, err);
fail:
	vdi_db_rollback(db);
	return -1;
}

int
vdi_host_rm(struct vdi_db *db, const char *name, bool force, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int64_t id, live = 0;
	char detail[64];
	int rc;

	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	id = host_id(db, name, err);
	if (id < 0)
		goto fail;
	if ((live = live_sessions(db, id, err)) < 0)
		goto fail;
	if (live > 0 && !force) {
		vdi_err_set(err, VDI_R_CONFLICT, "host '%s' has %lld session%s that %s not ended "
			    "(end them with vm-reap, or use --force)", name, (long long)live,
			    live == 1 ? "" : "s", live == 1 ? "is" : "are");
		goto fail;
	}
	if (live > 0) {
		/* Forced: the sessions end now, as the administrator's act. */
		if (vdi_session_end_on_host(db, id, "admin", vdi_clock_now(), err) < 0)
			goto fail;
	}
	if (vdi_db_prepare(db, &st, "DELETE FROM hosts WHERE id = ?", err) < 0)
		goto fail;
	vdi_stmt_bind_int64(st, 1, id);
	rc = vdi_db_step(db, st, "removing host", err);
	vdi_stmt_finalize(st);
	if (rc < 0)
		goto fail;
	detail[0] = '\0';
	if (live > 0)
		snprintf(detail, sizeof(detail), "forced: %lld sessions ended", (long long)live);
	if (vdi_event_add_host(db, name, "host-rm", detail[0] ? detail : NULL, err) < 0)
		goto fail;
	return vdi_db_commit(db, err);
fail:
	vdi_db_rollback(db);
	return -1;
}

static int
store_domains(struct vdi_db *db, int64_t id, const struct vdi_node_report *r, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL, *addr = NULL;
	int ret = -1;

	if (vdi_db_prepare(db, &st, "DELETE FROM host_domains WHERE host_id = ?", err) < 0)
		return -1;
	vdi_stmt_bind_int64(st, 1, id);
	if (vdi_db_step(db, st, "storing domains", err) < 0)
		goto out;
	vdi_stmt_finalize(st);
	st = NULL;
	if (vdi_db_prepare(db, &st, "INSERT INTO host_domains (host_id, name, uuid, state, ours, "
			   "session_id, username, vcpus, mem) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
			   "ON CONFLICT (host_id, name) DO UPDATE SET uuid = excluded.uuid, state = excluded.state, "
			   "ours = excluded.ours, session_id = excluded.session_id, username = excluded.username, "
			   "vcpus = excluded.vcpus, mem = excluded.mem", err) < 0)
		goto out;
	if (vdi_db_prepare(db, &addr, "UPDATE sessions SET address = ?3, address_seen = ?4 WHERE id = ?1 AND "
			   "host_id = ?2 AND state = 'running' AND (address IS NULL OR address <> ?3)", err) < 0)
		goto out;
	for (size_t i = 0; i < r->ndoms; i++) {
		const struct vdi_domain_info *d = &r->doms[i];
		/* The guest's address as its host knows it now: vm-ls shows it, also after a move. */
		if (d->ours && d->address && d->session_id > 0) {
			vdi_stmt_reset(addr);
			vdi_stmt_bind_int64(addr, 1, d->session_id);
			vdi_stmt_bind_int64(addr, 2, id);
			vdi_stmt_bind_text(addr, 3, d->address);
			vdi_stmt_bind_int64(addr, 4, vdi_clock_now());
			if (vdi_db_step(db, addr, "recording an address", err) < 0)
				goto out;
		}
		vdi_stmt_reset(st);
		vdi_stmt_clear(st);
		vdi_stmt_bind_int64(st, 1, id);
		vdi_stmt_bind_text(st, 2, d->name);
		vdi_stmt_bind_text(st, 3, d->uuid);
		vdi_stmt_bind_text(st, 4, d->state);
		vdi_stmt_bind_int(st, 5, d->ours);
		if (d->ours) {
			vdi_stmt_bind_int64(st, 6, d->session_id);
			vdi_stmt_bind_text(st, 7, d->user);
		}
		vdi_stmt_bind_int(st, 8, d->vcpus);
		vdi_stmt_bind_int64(st, 9, d->mem);
		if (vdi_db_step(db, st, "storing domains", err) < 0)
			goto out;
	}
	ret = 0;
out:
	vdi_stmt_finalize(st);
	vdi_stmt_finalize(addr);
	return ret;
}

/* The rest of one host's poll, in its transaction (begun by the caller, ended here). */
static int
record_poll(struct vdi_db *db, const struct vdi_host *h, const struct vdi_node_report *r,
	    struct vdi_stmt *st, const char *before, struct vdi_err *err)
{
	int ret = -1;

	if (vdi_db_step(db, st, "recording poll", err) < 0)
		goto out;
	if (r->err.code == 0 && store_domains(db, h->id, r, err) < 0)
		goto out;
	/* Only changes of health are events; a poll every minute would drown the log. */
	if (r->err.code == 0 && strcmp(before, "up") != 0) {
		if (vdi_event_add_host(db, h->name, "host-up", NULL, err) < 0)
			goto out;
	} else if (r->err.code != 0 && strcmp(before, "down") != 0) {
		if (vdi_event_add_host(db, h->name, "host-down", r->err.msg, err) < 0)
			goto out;
	}
	ret = 0;
out:
	return vdi_db_finish(db, ret, err);
}

int
vdi_host_record_polls(struct vdi_db *db, const struct vdi_host *hs,
		      const struct vdi_node_report *reps, size_t n, struct vdi_err *err)
{
	struct vdi_stmt *up = NULL, *down = NULL, *was = NULL;
	int64_t now = vdi_clock_now();
	int ret = -1;

	if (vdi_db_prepare(db, &up, "UPDATE hosts SET health = 'up', vcpus = ?2, mem_total = ?3, "
			   "mem_free = ?4, load = ?5, domains_total = ?6, domains_ours = ?7, last_poll = ?8, "
			   "last_ok = ?8, down_since = NULL, last_error = NULL WHERE id = ?1", err) < 0 ||
	    vdi_db_prepare(db, &down, "UPDATE hosts SET health = 'down', last_poll = ?2, "
			   "down_since = coalesce(down_since, ?2), last_error = ?3 WHERE id = ?1", err) < 0 ||
	    vdi_db_prepare(db, &was, "SELECT health FROM hosts WHERE id = ?", err) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const struct vdi_node_report *r = &reps[i];
		char before[16] = "";
		int64_t ours = 0;
		struct vdi_stmt *st;

		/*
		 * One short transaction per host: at 10,000 hosts one for all held
		 * the write lock for seconds and every login waited behind it.
		 */
		if (vdi_db_begin(db, true, err) < 0)
			goto out;
		vdi_stmt_reset(was);
		vdi_stmt_bind_int64(was, 1, hs[i].id);
		if (vdi_stmt_step(was) != VDI_DB_ROW) {
			vdi_stmt_reset(was);
			vdi_db_rollback(db);
			continue; /* removed while we polled */
		}
		snprintf(before, sizeof(before), "%s", vdi_stmt_text(was, 0));
		if (r->err.code == 0) {
			for (size_t d = 0; d < r->ndoms; d++)
				ours += r->doms[d].ours;
			st = up;
			vdi_stmt_reset(st);
			vdi_stmt_bind_int64(st, 1, hs[i].id);
			vdi_stmt_bind_int64(st, 2, r->vcpus);
			vdi_stmt_bind_int64(st, 3, r->mem_total);
			vdi_stmt_bind_int64(st, 4, r->mem_free);
			if (r->load_known)
				vdi_stmt_bind_double(st, 5, r->load);
			else
				vdi_stmt_bind_null(st, 5);
			vdi_stmt_bind_int64(st, 6, (int64_t)r->ndoms);
			vdi_stmt_bind_int64(st, 7, ours);
			vdi_stmt_bind_int64(st, 8, now);
		} else {
			st = down;
			vdi_stmt_reset(st);
			vdi_stmt_bind_int64(st, 1, hs[i].id);
			vdi_stmt_bind_int64(st, 2, now);
			vdi_stmt_bind_text(st, 3, r->err.msg);
		}
		vdi_stmt_reset(was);
		if (record_poll(db, &hs[i], r, st, before, err) < 0)
			goto out;
	}
	ret = 0;
out:
	vdi_stmt_finalize(up);
	vdi_stmt_finalize(down);
	vdi_stmt_finalize(was);
	return ret;
}

int
vdi_host_domains(struct vdi_db *db, int64_t host_id, struct vdi_host_domain **out,
		 size_t *nout, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	struct vdi_host_domain *ds = NULL;
	size_t n = 0;
	int rc;

	*out = NULL;
	*nout = 0;
	if (vdi_db_prepare(db, &st, "SELECT d.name, d.uuid, d.state, d.ours, d.session_id, d.username, "
			   "d.vcpus, d.mem, s.state FROM host_domains d LEFT JOIN sessions s ON s.id = d.session_id "
			   "WHERE d.host_id = ? ORDER BY d.ours DESC, d.name", err) < 0)
		return -1;
	vdi_stmt_bind_int64(st, 1, host_id);
	while ((rc = vdi_stmt_step(st)) == VDI_DB_ROW) {
		struct vdi_host_domain *t = vdi_grow(ds, n, sizeof(*t)), *d;
		ds = t;
		d = &ds[n++];
		d->name = vdi_stmt_strdup(st, 0);
		d->uuid = vdi_stmt_strdup(st, 1);
		d->state = vdi_stmt_strdup(st, 2);
		d->ours = vdi_stmt_int(st, 3);
		d->session_id = vdi_stmt_int64(st, 4);
		d->user = vdi_stmt_strdup(st, 5);
		d->vcpus = vdi_stmt_int64(st, 6);
		d->mem = vdi_stmt_int64(st, 7);
		d->session_state = vdi_stmt_strdup(st, 8);
	}
	vdi_stmt_finalize(st);
	if (rc != VDI_DB_DONE) {
		vdi_host_domains_free(ds, n);
		return vdi_db_fail(db, "reading domains", err);
	}
	*out = ds;
	*nout = n;
	return 0;
}

void
vdi_host_domains_free(struct vdi_host_domain *d, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(d[i].name);
		free(d[i].uuid);
		free(d[i].state);
		free(d[i].user);
		free(d[i].session_state);
	}
	free(d);
}

/* Health changes of one host by id, with its event when it changed. */
static int
set_health(struct vdi_db *db, int64_t id, const char *sql, int64_t now, const char *why, const char *health,
	   const char *action, const char *counter, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	char name[128] = "", before[16] = "";
	int rc, ret = -1;

	if (vdi_db_prepare(db, &st, "SELECT name, health FROM hosts WHERE id = ?", err) < 0)
		goto out;
	vdi_stmt_bind_int64(st, 1, id);
	rc = vdi_stmt_step(st);
	if (rc == VDI_DB_ROW) {
		snprintf(name, sizeof(name), "%s", vdi_stmt_text(st, 0));
		snprintf(before, sizeof(before), "%s", vdi_stmt_text(st, 1));
	}
	vdi_stmt_finalize(st);
	st = NULL;
	if (rc != VDI_DB_ROW) {
		ret = rc == VDI_DB_DONE ? 0 : vdi_db_fail(db, "reading host", err); /* removed meanwhile */
		goto out;
	}
	if (vdi_db_prepare(db, &st, sql, err) < 0)
		goto out;
	vdi_stmt_bind_int64(st, 1, id);
	vdi_stmt_bind_int64(st, 2, now);
	if (why)
		vdi_stmt_bind_text(st, 3, why);
	if (vdi_db_step(db, st, "recording the watch", err) < 0)
		goto out;
	if (health && strcmp(before, health) != 0 && vdi_event_add_host(db, name, action, why, err) < 0)
		goto out;
	if (counter && vdi_metrics_count(db, counter, "host", name, 1, err) < 0)
		goto out;
	ret = 0;
out:
	vdi_stmt_finalize(st);
	return ret;
}

int
vdi_host_watch_begin(struct vdi_db *db, int64_t id, int64_t now, struct vdi_err *err)
{
	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	return vdi_db_finish(db, set_health(db, id, "UPDATE hosts SET watch_since = ?2, watch_seen = ?2, "
					    "health = 'up', down_since = NULL, last_error = NULL, last_ok = ?2 "
					    "WHERE id = ?1", now, NULL, "up", "host-up",
					    "vdi_watch_connects_total", err), err);
}

int
vdi_host_watch_end(struct vdi_db *db, int64_t id, int64_t since, bool down, const char *why, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int rc;

	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	if (down)
		return vdi_db_finish(db, set_health(db, id, "UPDATE hosts SET watch_since = NULL, watch_seen = NULL, "
						    "health = 'down', down_since = coalesce(down_since, ?2), last_error = ?3 "
						    "WHERE id = ?1", vdi_clock_now(), why, "down", "host-down", NULL, err),
				     err);
	/* Only the mark this watcher made: another watcher's stays. */
	if (vdi_db_prepare(db, &st, "UPDATE hosts SET watch_since = NULL, watch_seen = NULL WHERE id = ?1 "
			   "AND (?2 = 0 OR watch_since = ?2)", err) < 0) {
		vdi_db_rollback(db);
		return -1;
	}
	vdi_stmt_bind_int64(st, 1, id);
	vdi_stmt_bind_int64(st, 2, since);
	rc = vdi_db_step(db, st, "ending the watch", err);
	vdi_stmt_finalize(st);
	return vdi_db_finish(db, rc, err);
}

int
vdi_host_watch_seen(struct vdi_db *db, const int64_t *ids, size_t n, int64_t now, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int ret = -1;

	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	if (vdi_db_prepare(db, &st, "UPDATE hosts SET watch_seen = ?2 WHERE id = ?1 AND watch_since IS NOT NULL",
			   err) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		vdi_stmt_reset(st);
		vdi_stmt_bind_int64(st, 1, ids[i]);
		vdi_stmt_bind_int64(st, 2, now);
		if (vdi_db_step(db, st, "affirming the watch", err) < 0)
			goto out;
	}
	ret = 0;
out:
	vdi_stmt_finalize(st);
	return vdi_db_finish(db, ret, err);
}

int
vdi_host_fence(struct vdi_db *db, const char *name, const char *detail, int64_t *ended, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int64_t id, now = vdi_clock_now();
	char what[512];
	int rc;

	*ended = 0;
	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	if ((id = host_id(db, name, err)) < 0)
		goto fail;
	if (vdi_session_end_fenced(db, id, now, ended, err) < 0)
		goto fail;
	if (vdi_db_prepare(db, &st, "UPDATE hosts SET fenced = ?2, admin = 'maintenance', domains_total = 0, "
			   "domains_ours = 0 WHERE id = ?1", err) < 0)
		goto fail;
	vdi_stmt_bind_int64(st, 1, id);
	vdi_stmt_bind_int64(st, 2, now);
	rc = vdi_db_step(db, st, "fencing host", err);
	vdi_stmt_finalize(st);
	st = NULL;
	if (rc < 0 || vdi_db_prepare(db, &st, "DELETE FROM host_domains WHERE host_id = ?", err) < 0)
		goto fail;
	vdi_stmt_bind_int64(st, 1, id);
	rc = vdi_db_step(db, st, "forgetting the host's domains", err);
	vdi_stmt_finalize(st);
	if (rc < 0)
		goto fail;
	snprintf(what, sizeof(what), "%s; %lld session%s ended host-lost", detail, (long long)*ended,
		 *ended == 1 ? "" : "s");
	if (vdi_event_add_host(db, name, "host-fenced", what, err) < 0)
		goto fail;
	return vdi_db_commit(db, err);
fail:
	vdi_db_rollback(db);
	return -1;
}

int
vdi_host_fits_ever(struct vdi_db *db, const char *pool, int64_t mem, int64_t vcpus, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int64_t max_mem = 0, max_vcpus = 0, polled = 0;
	char a[24], b[24];
	int rc;

	/*
	 * The caps as lib/db/sched.c computes them (mem_cap is schema 5's
	 * generated column); the vCPU cap is truncated here, as the engines'
	 * casts do not agree (SQLite truncates, PostgreSQL rounds).
	 */
	if (vdi_db_prepare(db, &st, "SELECT coalesce(max(mem_cap), 0), coalesce(max(vcpus * cpu_ratio), 0), "
			   "count(*) FROM hosts WHERE pool = ?1 AND mem_total > 0", err) < 0)
		return -1;
	vdi_stmt_bind_text(st, 1, pool);
	rc = vdi_stmt_step(st);
	if (rc == VDI_DB_ROW) {
		max_mem = vdi_stmt_int64(st, 0);
		max_vcpus = (int64_t)(vdi_stmt_double(st, 1) + 1e-9);
		polled = vdi_stmt_int64(st, 2);
	}
	vdi_stmt_finalize(st);
	if (rc != VDI_DB_ROW)
		return vdi_db_fail(db, "reading the hosts' capacity", err);
	if (polled == 0)
		return 0;
	if (mem > max_mem) {
		vdi_size_format((uint64_t)mem, a, sizeof(a));
		vdi_size_format((uint64_t)max_mem, b, sizeof(b));
		return vdi_err_set(err, VDI_R_NEVER_FITS, "no host of pool '%s' can ever hold %s of memory: the "
				   "largest can give %s", pool, a, b);
	}
	if (vcpus > max_vcpus)
		return vdi_err_set(err, VDI_R_NEVER_FITS, "no host of pool '%s' can ever hold %lld vCPUs: the "
				   "largest can give %lld", pool, (long long)vcpus, (long long)max_vcpus);
	return 0;
}
