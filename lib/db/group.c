/*
 * group.c - entitlements (see group.h): grants of masters to system
 * groups, the groups' limits, and the verdict on a user's desktop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "event.h"
#include "group.h"
#include "mem.h"
#include "nss.h"
#include "parse.h"
#include "strv.h"

int
vdi_group_name_check(const char *s, struct vdi_err *err)
{
	size_t n = strlen(s);

	if (n == 0 || n > VDI_GROUP_MAX)
		return vdi_err_set(err, VDI_R_USAGE, "a group name is 1 to %d bytes, not %zu", VDI_GROUP_MAX, n);
	if (s[0] == '-')
		return vdi_err_set(err, VDI_R_USAGE, "group '%.64s' begins with '-'", s);
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f || strchr(",:\"\\/", *p))
			return vdi_err_set(err, VDI_R_USAGE, "group names hold no control character and none of , : \" "
					   "\\ / (byte %zu)", (size_t)(p - s) + 1);
	return 0;
}

int
vdi_group_active(struct vdi_db *db, bool *on, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int rc;

	*on = false;
	if (vdi_db_prepare(db, &st, "SELECT 1 FROM grants LIMIT 1", err) < 0)
		return -1;
	rc = vdi_stmt_step(st);
	*on = rc == VDI_DB_ROW;
	vdi_stmt_finalize(st);
	return rc == VDI_DB_ERROR ? vdi_db_fail(db, "reading grants", err) : 0;
}

int
vdi_group_grant(struct vdi_db *db, const char *grp, const char *master, bool grant, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int rc, ret = -1;

	vdi_err_object(err, "%s", grp);
	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	if (vdi_db_prepare(db, &st, grant ?
			   "INSERT INTO grants (grp, master_id, created) SELECT ?1, id, ?3 FROM masters "
			   "WHERE name = ?2 AND state <> 'importing' ON CONFLICT (grp, master_id) DO NOTHING RETURNING master_id" :
			   "DELETE FROM grants WHERE grp = ?1 AND master_id = (SELECT id FROM masters WHERE name = ?2) "
			   "RETURNING master_id", err) < 0)
		goto out;
	vdi_stmt_bind_text(st, 1, grp);
	vdi_stmt_bind_text(st, 2, master);
	if (grant)
		vdi_stmt_bind_int64(st, 3, vdi_clock_now());
	rc = vdi_stmt_step(st);
	vdi_stmt_finalize(st);
	st = NULL;
	if (rc == VDI_DB_ERROR) {
		vdi_db_fail(db, grant ? "granting" : "revoking", err);
		goto out;
	}
	if (rc == VDI_DB_DONE) {
		/* Nothing changed: no such master, or the grant was (not) there already. */
		if (vdi_db_prepare(db, &st, "SELECT 1 FROM masters WHERE name = ?1", err) < 0)
			goto out;
		vdi_stmt_bind_text(st, 1, master);
		rc = vdi_stmt_step(st);
		if (rc != VDI_DB_ROW) {
			if (rc == VDI_DB_DONE)
				vdi_err_set(err, VDI_R_NO_MASTER, "no master '%s'", master);
			else
				vdi_db_fail(db, "reading masters", err);
			goto out;
		}
		ret = 0;
		goto out;
	}
	ret = vdi_event_add(db, grp, grant ? "group-grant" : "group-revoke", master, err);
out:
	vdi_stmt_finalize(st);
	return vdi_db_finish(db, ret, err);
}

static void
limit_words(char *buf, size_t len, int64_t sessions, int64_t mem)
{
	char n[32] = "none", m[16] = "none";

	if (sessions >= 0)
		snprintf(n, sizeof(n), "%lld", (long long)sessions);
	if (mem >= 0)
		vdi_size_format((uint64_t)mem, m, sizeof(m));
	snprintf(buf, len, "sessions=%s mem=%s", n, m);
}

int
vdi_group_limit(struct vdi_db *db, const char *grp, int64_t max_sessions, int64_t max_mem, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	char detail[96];
	int ret = -1;

	vdi_err_object(err, "%s", grp);
	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	/* -2 keeps what is there (a new row: no limit). */
	if (vdi_db_prepare(db, &st, "INSERT INTO group_limits (grp, max_sessions, max_mem) "
			   "VALUES (?1, CASE WHEN ?2 >= 0 THEN ?2 END, CASE WHEN ?3 >= 0 THEN ?3 END) "
			   "ON CONFLICT (grp) DO UPDATE SET "
			   "max_sessions = CASE WHEN ?2 = -2 THEN group_limits.max_sessions WHEN ?2 >= 0 THEN ?2 END, "
			   "max_mem = CASE WHEN ?3 = -2 THEN group_limits.max_mem WHEN ?3 >= 0 THEN ?3 END "
			   "RETURNING coalesce(max_sessions, -1), coalesce(max_mem, -1)", err) < 0)
		goto out;
	vdi_stmt_bind_text(st, 1, grp);
	vdi_stmt_bind_int64(st, 2, max_sessions);
	vdi_stmt_bind_int64(st, 3, max_mem);
	if (vdi_db_step_row(db, st, "setting the group's limits", err) != 1)
		goto out;
	limit_words(detail, sizeof(detail), vdi_stmt_int64(st, 0), vdi_stmt_int64(st, 1));
	vdi_stmt_finalize(st);
	st = NULL;
	/* A group with neither limit needs no row. */
	if (vdi_db_exec(db, "DELETE FROM group_limits WHERE max_sessions IS NULL AND max_mem IS NULL", err) < 0)
		goto out;
	ret = vdi_event_add(db, grp, "group-limit", detail, err);
out:
	vdi_stmt_finalize(st);
	return vdi_db_finish(db, ret, err);
}

int
vdi_group_list(struct vdi_db *db, struct vdi_group_rule **out, size_t *n, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL, *ms = NULL;
	struct vdi_group_rule *r = NULL;
	size_t k = 0;
	bool began;
	int rc, ret = -1;

	*out = NULL;
	*n = 0;
	if (vdi_db_read_begin(db, &began, err) < 0)
		return -1;
	if (vdi_db_prepare(db, &st, "SELECT g.grp, coalesce(l.max_sessions, -1), coalesce(l.max_mem, -1), "
			   "(SELECT count(*) FROM sessions s WHERE s.grp = g.grp AND s.state <> 'ended'), "
			   "(SELECT coalesce(sum(s.mem), 0) FROM sessions s WHERE s.grp = g.grp AND s.state <> 'ended') "
			   "FROM (SELECT grp FROM grants UNION SELECT grp FROM group_limits) g "
			   "LEFT JOIN group_limits l ON l.grp = g.grp ORDER BY g.grp", err) < 0 ||
	    vdi_db_prepare(db, &ms, "SELECT m.name FROM grants g JOIN masters m ON m.id = g.master_id "
			   "WHERE g.grp = ?1 ORDER BY m.name", err) < 0)
		goto out;
	while ((rc = vdi_stmt_step(st)) == VDI_DB_ROW) {
		struct vdi_group_rule *g;
		r = vdi_grow(r, k, sizeof(*r));
		g = &r[k++];
		memset(g, 0, sizeof(*g));
		g->grp = vdi_stmt_strdup(st, 0);
		g->max_sessions = vdi_stmt_int64(st, 1);
		g->max_mem = vdi_stmt_int64(st, 2);
		g->sessions = vdi_stmt_int64(st, 3);
		g->mem = vdi_stmt_int64(st, 4);
		vdi_stmt_reset(ms);
		vdi_stmt_bind_text(ms, 1, g->grp);
		while ((rc = vdi_stmt_step(ms)) == VDI_DB_ROW)
			vdi_strv_push(&g->masters, &g->nmasters, vdi_stmt_strdup(ms, 0));
		if (rc != VDI_DB_DONE)
			break;
	}
	if (rc != VDI_DB_DONE) {
		vdi_db_fail(db, "reading groups", err);
		goto out;
	}
	*out = r;
	*n = k;
	r = NULL;
	ret = 0;
out:
	vdi_group_rules_free(r, k);
	vdi_stmt_finalize(st);
	vdi_stmt_finalize(ms);
	vdi_db_read_end(db, began);
	return ret;
}

void
vdi_group_rules_free(struct vdi_group_rule *r, size_t n)
{
	for (size_t i = 0; r && i < n; i++) {
		free(r[i].grp);
		vdi_strv_free(r[i].masters, r[i].nmasters);
	}
	free(r);
}

/* "staff, users" (at most len bytes). */
static void
join(char *buf, size_t len, char *const *v, size_t n)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "", v[i]);
}

int
vdi_group_check(struct vdi_db *db, const char *user, char *const *groups, size_t n, int64_t master_id,
		int64_t mem, bool room, struct vdi_group_verdict *v, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	char full[256] = "", mine[200], master[80] = "";
	size_t o = 0;
	int rc, ret = -1;
	bool any = false;

	memset(v, 0, sizeof(*v));
	if (vdi_group_active(db, &v->on, err) < 0)
		return -1;
	if (!v->on) {
		v->allowed = true;
		snprintf(v->why, sizeof(v->why), "no grants: every user may use every master");
		return 0;
	}
	/* The groups that have the master, those without limits first, then by name. */
	if (vdi_db_prepare(db, &st, "SELECT g.grp, coalesce(l.max_sessions, -1), coalesce(l.max_mem, -1), "
			   "(SELECT count(*) FROM sessions s WHERE s.grp = g.grp AND s.state <> 'ended'), "
			   "(SELECT coalesce(sum(s.mem), 0) FROM sessions s WHERE s.grp = g.grp AND s.state <> 'ended'), "
			   "(SELECT name FROM masters WHERE id = g.master_id) "
			   "FROM grants g LEFT JOIN group_limits l ON l.grp = g.grp WHERE g.master_id = ?1 "
			   "ORDER BY CASE WHEN l.grp IS NULL THEN 0 ELSE 1 END, g.grp", err) < 0)
		return -1;
	vdi_stmt_bind_int64(st, 1, master_id);
	while ((rc = vdi_stmt_step(st)) == VDI_DB_ROW) {
		const char *g = vdi_stmt_text(st, 0);
		int64_t ms = vdi_stmt_int64(st, 1), mm = vdi_stmt_int64(st, 2);
		int64_t s = vdi_stmt_int64(st, 3), m = vdi_stmt_int64(st, 4);

		snprintf(master, sizeof(master), "%s", vdi_stmt_text(st, 5));
		if (!vdi_strv_has(groups, n, g))
			continue;
		any = true;
		if (room && ((ms >= 0 && s + 1 > ms) || (mm >= 0 && m + mem > mm))) {
			char a[16], b[16];
			vdi_size_format((uint64_t)m, a, sizeof(a));
			vdi_size_format((uint64_t)(mm > 0 ? mm : 0), b, sizeof(b));
			if (ms >= 0 && s + 1 > ms)
				o += (size_t)snprintf(full + o, o < sizeof(full) ? sizeof(full) - o : 0,
						      "%sgroup %s holds %lld of its %lld sessions", o ? "; " : "", g,
						      (long long)s, (long long)ms);
			else
				o += (size_t)snprintf(full + o, o < sizeof(full) ? sizeof(full) - o : 0,
						      "%sgroup %s holds %s of its %s of memory", o ? "; " : "", g, a, b);
			continue;
		}
		v->allowed = true;
		v->limited = ms >= 0 || mm >= 0;
		snprintf(v->grp, sizeof(v->grp), "%s", g);
		if (v->limited) {
			char used[16], cap[16], ses[48] = "", memw[64] = "";
			vdi_size_format((uint64_t)m, used, sizeof(used));
			vdi_size_format((uint64_t)(mm > 0 ? mm : 0), cap, sizeof(cap));
			if (ms >= 0)
				snprintf(ses, sizeof(ses), "%lld of its %lld sessions", (long long)s, (long long)ms);
			if (mm >= 0)
				snprintf(memw, sizeof(memw), "%s%s of its %s of memory", ms >= 0 ? ", " : "", used, cap);
			snprintf(v->why, sizeof(v->why), "%s may use %s through group %s (%s%s in use)", user, master, g,
				 ses, memw);
		} else {
			snprintf(v->why, sizeof(v->why), "%s may use %s through group %s (no limits)", user, master, g);
		}
		break;
	}
	vdi_stmt_finalize(st);
	if (rc == VDI_DB_ERROR)
		return vdi_db_fail(db, "reading grants", err);
	if (v->allowed)
		return 0;
	if (!master[0]) {
		/* No group has it at all: its name, for the message. */
		if (vdi_db_prepare(db, &st, "SELECT name FROM masters WHERE id = ?1", err) < 0)
			return -1;
		vdi_stmt_bind_int64(st, 1, master_id);
		if (vdi_stmt_step(st) == VDI_DB_ROW)
			snprintf(master, sizeof(master), "%s", vdi_stmt_text(st, 0));
		vdi_stmt_finalize(st);
	}
	join(mine, sizeof(mine), groups, n);
	if (any)
		ret = vdi_err_set(err, VDI_R_GROUP_FULL, "%s for %s (master %s); try again when a desktop of the "
				  "group ends", full, user, master);
	else if (n == 0)
		ret = vdi_err_set(err, VDI_R_NOT_ENTITLED, "%s is in no group the system knows: no master is "
				  "granted to them (vm-group)", user);
	else
		ret = vdi_err_set(err, VDI_R_NOT_ENTITLED, "none of %s's groups (%s) may use master %s (vm-group "
				  "grant GROUP %s)", user, mine, master, master);
	snprintf(v->why, sizeof(v->why), "%.500s", err->msg);
	return ret;
}

int
vdi_group_check_master(struct vdi_db *db, const char *user, char *const *groups, size_t n, const char *master,
		       struct vdi_group_verdict *v, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int64_t id;
	int rc;

	if (vdi_db_prepare(db, &st, "SELECT id FROM masters WHERE name = ?1", err) < 0)
		return -1;
	vdi_stmt_bind_text(st, 1, master);
	rc = vdi_stmt_step(st);
	id = rc == VDI_DB_ROW ? vdi_stmt_int64(st, 0) : 0;
	vdi_stmt_finalize(st);
	if (rc == VDI_DB_DONE)
		return vdi_err_set(err, VDI_R_NO_MASTER, "no master '%s'", master);
	if (rc != VDI_DB_ROW)
		return vdi_db_fail(db, "reading masters", err);
	return vdi_group_check(db, user, groups, n, id, 0, false, v, err);
}

int
vdi_group_user_may(struct vdi_db *db, const char *user, const char *master, struct vdi_group_verdict *v,
		   struct vdi_err *err)
{
	char **groups = NULL;
	size_t n = 0;
	int ret;

	memset(v, 0, sizeof(*v));
	if (vdi_group_active(db, &v->on, err) < 0)
		return -1;
	if (!v->on) {
		v->allowed = true;
		return 0;
	}
	if (vdi_nss_groups(user, &groups, &n, err) < 0)
		return -1;
	ret = vdi_group_check_master(db, user, groups, n, master, v, err);
	vdi_strv_free(groups, n);
	return ret;
}

int
vdi_group_masters(struct vdi_db *db, const char *user, bool *on, char ***names, size_t *n, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	char **groups = NULL;
	size_t ng = 0;
	int rc, ret = -1;

	*names = NULL;
	*n = 0;
	if (vdi_group_active(db, on, err) < 0)
		return -1;
	if (!*on)
		return 0;
	if (vdi_nss_groups(user, &groups, &ng, err) < 0)
		return -1;
	if (vdi_db_prepare(db, &st, "SELECT g.grp, m.name FROM grants g JOIN masters m ON m.id = g.master_id "
			   "WHERE m.state = 'active' ORDER BY m.name", err) < 0)
		goto out;
	while ((rc = vdi_stmt_step(st)) == VDI_DB_ROW) {
		const char *m = vdi_stmt_text(st, 1);
		if (vdi_strv_has(groups, ng, vdi_stmt_text(st, 0)) && (*n == 0 || strcmp((*names)[*n - 1], m) != 0))
			vdi_strv_push_copy(names, n, m);
	}
	if (rc != VDI_DB_DONE) {
		vdi_db_fail(db, "reading grants", err);
		vdi_strv_free(*names, *n);
		*names = NULL;
		*n = 0;
		goto out;
	}
	ret = 0;
out:
	vdi_stmt_finalize(st);
	vdi_strv_free(groups, ng);
	return ret;
}
