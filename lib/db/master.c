/* master.c - masters in the VMDB (see master.h). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "event.h"
#include "master.h"
#include "strv.h"

void
vdi_master_volume(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "master-%s", name);
}

int
vdi_master_claim(struct vdi_db *db, const struct vdi_master_spec *m, int64_t *id, bool *takeover,
		 struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	char vol[128];

	vdi_master_volume(m->name, vol, sizeof(vol));
	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	if (vdi_db_claim(db, "masters", "name", m->name, "importing", "master", "exists already", "imported",
			 takeover, err) < 0)
		goto fail;
	if (vdi_db_prepare(db, &st, "INSERT INTO masters (name, state, os, pool, volume, source, mem, vcpus, "
			   "disk, pid, created, profile, firmware, disk_bus, nic_model, video, prepare, rdp, owner, lease, home) "
			   "VALUES (?, 'importing', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, nullif(?20, 0)) RETURNING id", err) < 0)
		goto fail;
	vdi_stmt_bind_text(st, 11, m->prof.name ? m->prof.name : vdi_profile_for_os(m->os));
	vdi_stmt_bind_text(st, 12, m->prof.firmware);
	vdi_stmt_bind_text(st, 13, m->prof.disk_bus);
	vdi_stmt_bind_text(st, 14, m->prof.nic);
	vdi_stmt_bind_text(st, 15, m->prof.video);
	vdi_stmt_bind_text(st, 16, m->prepare ? m->prepare : "cloud-init");
	vdi_stmt_bind_int(st, 17, m->rdp);
	vdi_stmt_bind_text(st, 1, m->name);
	vdi_stmt_bind_text(st, 2, m->os);
	vdi_stmt_bind_text(st, 3, m->pool);
	vdi_stmt_bind_text(st, 4, vol);
	vdi_stmt_bind_text(st, 5, m->source);
	vdi_stmt_bind_int64(st, 6, m->mem);
	vdi_stmt_bind_int64(st, 7, m->vcpus);
	if (m->disk > 0)
		vdi_stmt_bind_int64(st, 8, m->disk);
	vdi_stmt_bind_int64(st, 9, (int64_t)getpid());
	vdi_stmt_bind_int64(st, 10, vdi_clock_now());
	vdi_db_bind_claim(db, st, 18);
	vdi_stmt_bind_int64(st, 20, m->home > 0 ? m->home : 0);
	if (vdi_db_step(db, st, "claiming master", err) < 0)
		goto fail;
	*id = vdi_stmt_int64(st, 0);
	vdi_stmt_finalize(st);
	st = NULL;
	if (vdi_db_insert_names(db, "INSERT INTO master_apps (master_id, app) VALUES (?, ?) ON CONFLICT DO NOTHING", *id,
				m->apps, m->napps, "recording apps", err) < 0)
		goto fail;
	return vdi_db_commit(db, err);
fail:
	vdi_stmt_finalize(st);
	vdi_db_rollback(db);
	return -1;
}

int
vdi_master_activate(struct vdi_db *db, int64_t id, const char *format, int64_t virtual_size,
		    const char *sha256, int64_t disk, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	char detail[256], name[128] = "";

	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	if (vdi_db_prepare(db, &st, "UPDATE masters SET state = 'active', format = ?2, virtual_size = ?3, "
			   "sha256 = ?4, disk = CASE WHEN coalesce(disk, 0) > ?5 THEN disk ELSE ?5 END, pid = NULL "
			   "WHERE id = ?1 AND state = 'importing' RETURNING name", err) < 0)
		goto fail;
	vdi_stmt_bind_int64(st, 1, id);
	vdi_stmt_bind_text(st, 2, format);
	vdi_stmt_bind_int64(st, 3, virtual_size);
	vdi_stmt_bind_text(st, 4, sha256);
	vdi_stmt_bind_int64(st, 5, disk);
	switch (vdi_db_step_row(db, st, "recording the imported master", err)) {
	case 1:
		break;
	case 0:
		vdi_err_set(err, VDI_R_CLAIM_LOST, "the import's claim was lost (taken over or removed)");
		goto fail;
	default:
		goto fail;
	}
	snprintf(name, sizeof(name), "%s", vdi_stmt_text(st, 0));
	vdi_stmt_finalize(st);
	st = NULL;
	snprintf(detail, sizeof(detail), "format=%s size=%lld sha256=%s", format, (long long)virtual_size, sha256);
	if (vdi_event_add(db, name, "master-add", detail, err) < 0)
		goto fail;
	return vdi_db_commit(db, err);
fail:
	vdi_stmt_finalize(st);
	vdi_db_rollback(db);
	return -1;
}

int
vdi_master_unclaim(struct vdi_db *db, int64_t id, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int ret;

	if (vdi_db_prepare(db, &st, "DELETE FROM masters WHERE id = ? AND state = 'importing'", err) < 0)
		return -1;
	vdi_stmt_bind_int64(st, 1, id);
	ret = vdi_db_step(db, st, "forgetting failed import", err);
	vdi_stmt_finalize(st);
	return ret;
}

#define MASTER_COLS "m.id, m.name, m.state, m.os, m.pool, m.volume, m.format, m.sha256, m.source, " \
	"m.virtual_size, m.mem, m.vcpus, m.disk, m.created, m.pid, " \
	"(SELECT count(*) FROM uservms u WHERE u.master_id = m.id) + " \
	"(SELECT count(*) FROM uservms u WHERE u.updating_from = m.id AND u.master_id <> m.id), " \
	"m.profile, m.firmware, m.disk_bus, m.nic_model, m.video, m.prepare, m.rdp, m.owner, coalesce(m.lease, 0), " \
	"coalesce(m.home, 0), (SELECT r.name FROM masters r WHERE r.id = m.replaced_by), m.update_forced, " \
	"(SELECT count(*) FROM uservms u WHERE u.master_id = m.id AND u.updating_from IS NOT NULL)"

static void
read_master(struct vdi_stmt *st, struct vdi_master *m)
{
	memset(m, 0, sizeof(*m));
	m->id = vdi_stmt_int64(st, 0);
	m->name = vdi_stmt_strdup(st, 1);
	m->state = vdi_stmt_strdup(st, 2);
	m->os = vdi_stmt_strdup(st, 3);
	m->pool = vdi_stmt_strdup(st, 4);
	m->volume = vdi_stmt_strdup(st, 5);
	m->format = vdi_stmt_strdup(st, 6);
	m->sha256 = vdi_stmt_strdup(st, 7);
	m->source = vdi_stmt_strdup(st, 8);
	m->virtual_size = vdi_stmt_int64(st, 9);
	m->mem = vdi_stmt_int64(st, 10);
	m->vcpus = vdi_stmt_int64(st, 11);
	m->disk = vdi_stmt_int64(st, 12);
	m->created = vdi_stmt_int64(st, 13);
	m->pid = vdi_stmt_int64(st, 14);
	m->uservms = vdi_stmt_int64(st, 15);
	m->profile = vdi_stmt_strdup(st, 16);
	m->firmware = vdi_stmt_strdup(st, 17);
	m->disk_bus = vdi_stmt_strdup(st, 18);
	m->nic = vdi_stmt_strdup(st, 19);
	m->video = vdi_stmt_strdup(st, 20);
	m->prepare = vdi_stmt_strdup(st, 21);
	m->rdp = vdi_stmt_int(st, 22) != 0;
	vdi_stmt_claim(st, 23, m->owner, sizeof(m->owner), &m->lease);
	m->home = vdi_stmt_int64(st, 25);
	m->replaced_by = vdi_stmt_strdup(st, 26);
	m->update_forced = vdi_stmt_int(st, 27) != 0;
	m->updating = vdi_stmt_int64(st, 28);
}

struct vdi_profile
vdi_master_profile(const struct vdi_master *m)
{
	struct vdi_profile p = { .name = m->profile, .firmware = m->firmware, .disk_bus = m->disk_bus,
				 .nic = m->nic, .video = m->video };
	return p;
}

static int
read_apps(struct vdi_db *db, struct vdi_master *m, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int rc;

	if (vdi_db_prepare(db, &st, "SELECT app FROM master_apps WHERE master_id = ? ORDER BY app", err) < 0)
		return -1;
	vdi_stmt_bind_int64(st, 1, m->id);
	while ((rc = vdi_stmt_step(st)) == VDI_DB_ROW) {
		vdi_strv_push(&m->apps, &m->napps, vdi_stmt_strdup(st, 0));
	}
	vdi_stmt_finalize(st);
	return rc == VDI_DB_DONE ? 0 : vdi_db_fail(db, "reading apps", err);
}

static int
query(struct vdi_db *db, const char *name, struct vdi_master **out, size_t *n, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	struct vdi_master *ms = NULL;
	size_t k = 0;
	int rc, ret = -1;

	if (vdi_db_prepare(db, &st, "SELECT " MASTER_COLS " FROM masters m WHERE m.name = ?1 OR ?1 IS NULL "
			   "ORDER BY m.name", err) < 0)
		return -1;
	if (name)
		vdi_stmt_bind_text(st, 1, name);
	while ((rc = vdi_stmt_step(st)) == VDI_DB_ROW) {
		struct vdi_master *t = vdi_grow(ms, k, sizeof(*t));
		ms = t;
		read_master(st, &ms[k++]);
		if (read_apps(db, &ms[k - 1], err) < 0)
			goto out;
	}
	if (rc != VDI_DB_DONE) {
		vdi_db_fail(db, "reading masters", err);
		goto out;
	}
	*out = ms;
	*n = k;
	ms = NULL;
	ret = 0;
out:
	vdi_stmt_finalize(st);
	if (ms)
		vdi_masters_free(ms, k);
	return ret;
}

int
vdi_master_get(struct vdi_db *db, const char *name, struct vdi_master *m, struct vdi_err *err)
{
	struct vdi_master *ms;
	size_t n;

	if (query(db, name, &ms, &n, err) < 0)
		return -1;
	if (n == 0) {
		free(ms);
		return vdi_err_set(err, VDI_R_NO_MASTER, "no master '%s'", name);
	}
	*m = ms[0];
	free(ms);
	return 0;
}

int
vdi_master_list(struct vdi_db *db, struct vdi_master **out, size_t *n, struct vdi_err *err)
{
	return query(db, NULL, out, n, err);
}

void
vdi_master_clear(struct vdi_master *m)
{
	free(m->name);
	free(m->state);
	free(m->os);
	free(m->pool);
	free(m->volume);
	free(m->format);
	free(m->sha256);
	free(m->source);
	free(m->profile);
	free(m->firmware);
	free(m->disk_bus);
	free(m->nic);
	free(m->video);
	free(m->prepare);
	free(m->replaced_by);
	vdi_strv_free(m->apps, m->napps);
	memset(m, 0, sizeof(*m));
}

void
vdi_masters_free(struct vdi_master *ms, size_t n)
{
	for (size_t i = 0; i < n; i++)
		vdi_master_clear(&ms[i]);
	free(ms);
}

int
vdi_master_retire(struct vdi_db *db, const char *name, struct vdi_err *err)
{
	struct vdi_master m;
	struct vdi_stmt *st = NULL;

	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	if (vdi_master_get(db, name, &m, err) < 0)
		goto fail;
	if (strcmp(m.state, "importing") == 0) {
		vdi_err_set(err, VDI_R_CONFLICT, "master '%s' is still being imported", name);
		vdi_master_clear(&m);
		goto fail;
	}
	vdi_master_clear(&m);
	if (vdi_db_prepare(db, &st, "UPDATE masters SET state = 'retired' WHERE name = ? AND state = 'active'", err) < 0)
		goto fail;
	vdi_stmt_bind_text(st, 1, name);
	if (vdi_db_step(db, st, "retiring master", err) < 0)
		goto fail;
	if (vdi_db_changes(db) > 0 && vdi_event_add(db, name, "master-retire", NULL, err) < 0)
		goto fail;
	vdi_stmt_finalize(st);
	return vdi_db_commit(db, err);
fail:
	vdi_stmt_finalize(st);
	vdi_db_rollback(db);
	return -1;
}

/* An OS's family: its name without the version at its end ("debian12" -> "debian", "win-11" -> "win"). */
static size_t
os_family(const char *os)
{
	size_t n = os ? strlen(os) : 0;

	while (n > 0 && (strchr("0123456789.-_", os[n - 1]) != NULL))
		n--;
	return n;
}

int
vdi_master_replace(struct vdi_db *db, const char *old, const char *new, const struct vdi_master_replace_opts *o,
		   int64_t *stale, struct vdi_err *err)
{
	struct vdi_master om = { 0 }, nm = { 0 };
	struct vdi_stmt *st = NULL;
	char detail[300];
	int ret = -1;

	*stale = 0;
	if (strcmp(old, new) == 0)
		return vdi_err_set(err, VDI_R_USAGE, "a master cannot replace itself");
	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	if (vdi_master_get(db, old, &om, err) < 0 || vdi_master_get(db, new, &nm, err) < 0)
		goto out;
	if (strcmp(nm.state, "importing") == 0 || strcmp(om.state, "importing") == 0) {
		vdi_err_set(err, VDI_R_CONFLICT, "master '%s' is still being imported",
			    strcmp(nm.state, "importing") == 0 ? new : old);
		goto out;
	}
	if (strcmp(om.pool, nm.pool) != 0) {
		/* The user VMs' disks and home disks live in the old pool: a move between pools is not an update. */
		vdi_err_set(err, VDI_R_CONFLICT, "master '%s' is in pool %s, '%s' in pool %s: an update stays in "
			    "its pool", new, nm.pool, old, om.pool);
		goto out;
	}
	if (!o->force) {
		struct vdi_profile ro = vdi_master_profile(&om), rn = vdi_master_profile(&nm), eo, en;
		size_t fo = os_family(om.os), fn = os_family(nm.os);
		vdi_profile_resolve(&ro, &eo);
		vdi_profile_resolve(&rn, &en);
		if (fo != fn || (om.os && nm.os && strncmp(om.os, nm.os, fo) != 0) || (!om.os) != (!nm.os)) {
			vdi_err_set(err, VDI_R_CONFLICT, "master '%s' is OS %s, '%s' is OS %s: another OS family "
				    "(--force if you mean it)", new, nm.os ? nm.os : "(none)", old, om.os ? om.os : "(none)");
			goto out;
		}
		if (strcmp(eo.name, en.name) != 0) {
			vdi_err_set(err, VDI_R_CONFLICT, "master '%s' has profile %s, '%s' has %s: its user VMs' "
				    "devices would change (--force if you mean it)", new, en.name, old, eo.name);
			goto out;
		}
	}
	if (vdi_db_dry_run(db)) {
		*stale = om.uservms;
		ret = 0;
		goto out;
	}
	/*
	 * NEW serves again (a roll back to a retired master) and replaces
	 * nothing's successor any more; OLD, and whatever OLD had replaced,
	 * now point at NEW, so no user VM takes two updates.
	 */
	if (vdi_db_prepare(db, &st, "UPDATE masters SET state = 'active', replaced_by = NULL, update_forced = 0 "
			   "WHERE id = ?", err) < 0)
		goto out;
	vdi_stmt_bind_int64(st, 1, nm.id);
	if (vdi_db_step(db, st, "replacing master", err) < 0)
		goto out;
	vdi_stmt_finalize(st);
	if (vdi_db_prepare(db, &st, "UPDATE masters SET replaced_by = ?1, update_forced = ?3 "
			   "WHERE (id = ?2 OR replaced_by = ?2) AND id <> ?1", err) < 0)
		goto out;
	vdi_stmt_bind_int64(st, 1, nm.id);
	vdi_stmt_bind_int64(st, 2, om.id);
	vdi_stmt_bind_int(st, 3, o->force_update ? 1 : 0);
	if (vdi_db_step(db, st, "replacing master", err) < 0)
		goto out;
	vdi_stmt_finalize(st);
	/* Nobody uses it: retired now (else when its last user VM is updated: schema 13's triggers). */
	if (vdi_db_prepare(db, &st, "UPDATE masters SET state = 'retired' WHERE id = ? AND state = 'active' AND "
			   "NOT EXISTS (SELECT 1 FROM uservms u WHERE u.master_id = masters.id)", err) < 0)
		goto out;
	vdi_stmt_bind_int64(st, 1, om.id);
	if (vdi_db_step(db, st, "replacing master", err) < 0)
		goto out;
	vdi_stmt_finalize(st);
	st = NULL;
	*stale = om.uservms;
	snprintf(detail, sizeof(detail), "replaced by %s: %lld user VM%s to update%s", new, (long long)om.uservms,
		 om.uservms == 1 ? "" : "s", o->force_update ? " (their users wait for it)" : "");
	if (vdi_event_add(db, old, "master-replaced", detail, err) < 0)
		goto out;
	ret = vdi_db_commit(db, err);
	vdi_master_clear(&om);
	vdi_master_clear(&nm);
	return ret;
out:
	vdi_stmt_finalize(st);
	vdi_db_rollback(db);
	vdi_master_clear(&om);
	vdi_master_clear(&nm);
	return ret;
}

int
vdi_master_rm_check(struct vdi_db *db, const char *name, struct vdi_master *m, struct vdi_err *err)
{
	if (vdi_master_get(db, name, m, err) < 0)
		return -1;
	if (m->uservms > 0) {
		vdi_err_set(err, VDI_R_CONFLICT, "master '%s' is used by %lld user VM%s (vm-copy --rm them first)",
			    name, (long long)m->uservms, m->uservms == 1 ? "" : "s");
		vdi_master_clear(m);
		return -1;
	}
	if (strcmp(m->state, "importing") == 0 && vdi_claim_elsewhere(m->pid, m->owner, m->lease)) {
		vdi_err_set(err, VDI_R_CONFLICT, "master '%s' is being imported by process %lld", name,
			    (long long)m->pid);
		vdi_master_clear(m);
		return -1;
	}
	return 0;
}

int
vdi_master_rm_row(struct vdi_db *db, int64_t id, const char *name, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;

	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	/* Masters it replaced point at nothing now: their user VMs (none: they were updated) stay put. */
	if (vdi_db_prepare(db, &st, "UPDATE masters SET replaced_by = NULL WHERE replaced_by = ?", err) < 0)
		goto fail;
	vdi_stmt_bind_int64(st, 1, id);
	if (vdi_db_step(db, st, "removing master", err) < 0)
		goto fail;
	vdi_stmt_finalize(st);
	if (vdi_db_prepare(db, &st, "DELETE FROM masters WHERE id = ?", err) < 0)
		goto fail;
	vdi_stmt_bind_int64(st, 1, id);
	if (vdi_db_step(db, st, "removing master", err) < 0)
		goto fail;
	vdi_stmt_finalize(st);
	st = NULL;
	if (vdi_event_add(db, name, "master-rm", NULL, err) < 0)
		goto fail;
	return vdi_db_commit(db, err);
fail:
	vdi_stmt_finalize(st);
	vdi_db_rollback(db);
	return -1;
}

int
vdi_master_choose(struct vdi_db *db, const char *os, char *const *apps, size_t napps,
		  char **name, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int rc, ret = -1;
	char missing[512] = "";
	size_t o = 0;

	*name = NULL;
	/* Requested apps go in a temp table: one query ranks every candidate. */
	if (vdi_db_exec(db, "CREATE TEMP TABLE IF NOT EXISTS req_apps (app TEXT PRIMARY KEY); "
			"DELETE FROM req_apps", err) < 0)
		return -1;
	if (vdi_db_prepare(db, &st, "INSERT INTO req_apps VALUES (?) ON CONFLICT DO NOTHING", err) < 0)
		return -1;
	for (size_t i = 0; i < napps; i++) {
		vdi_stmt_reset(st);
		vdi_stmt_bind_text(st, 1, apps[i]);
		if (vdi_db_step(db, st, "choosing master", err) < 0)
			goto out;
	}
	vdi_stmt_finalize(st);
	if (vdi_db_prepare(db, &st,
			   "SELECT m.name FROM masters m WHERE m.state = 'active' AND m.os = ?1"
			   " AND NOT EXISTS (SELECT 1 FROM req_apps r WHERE r.app NOT IN"
			   "   (SELECT app FROM master_apps a WHERE a.master_id = m.id))"
			   " ORDER BY (SELECT count(*) FROM master_apps a WHERE a.master_id = m.id), m.created DESC, m.id DESC"
			   " LIMIT 1", err) < 0)
		return -1;
	vdi_stmt_bind_text(st, 1, os);
	rc = vdi_stmt_step(st);
	if (rc == VDI_DB_ROW) {
		*name = vdi_stmt_strdup(st, 0);
		ret = 0;
		goto out;
	}
	if (rc != VDI_DB_DONE) {
		vdi_db_fail(db, "choosing master", err);
		goto out;
	}
	vdi_stmt_finalize(st);
	/* No master covers the request: say which apps none of that OS has. */
	if (vdi_db_prepare(db, &st,
			   "SELECT r.app FROM req_apps r WHERE NOT EXISTS (SELECT 1 FROM master_apps a"
			   " JOIN masters m ON m.id = a.master_id WHERE m.state = 'active' AND m.os = ?1"
			   " AND a.app = r.app) ORDER BY r.app", err) < 0)
		return -1;
	vdi_stmt_bind_text(st, 1, os);
	while (vdi_stmt_step(st) == VDI_DB_ROW && o < sizeof(missing) - 80)
		o += (size_t)snprintf(missing + o, sizeof(missing) - o, "%s%s", o ? ", " : "",
				      vdi_stmt_text(st, 0));
	if (o)
		vdi_err_set(err, VDI_R_NOTFOUND, "no active master of os '%s' has the apps: %s", os, missing);
	else if (napps)
		vdi_err_set(err, VDI_R_NOTFOUND, "no single active master of os '%s' has all the apps asked for", os);
	else
		vdi_err_set(err, VDI_R_NOTFOUND, "no active master of os '%s'", os);
out:
	vdi_stmt_finalize(st);
	return ret;
}
