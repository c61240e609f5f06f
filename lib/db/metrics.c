/*
 * metrics.c - the VMDB's figures as Prometheus text exposition (see
 * metrics.h): gauges from the rows, counters from the table counters.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

/* A label value as the format wants it: \\, \" and \n escaped; other bytes as they are (UTF-8). */
static void
label_value(FILE *fp, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(fp, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", fp);
		else
			fputc(*s, fp);
	}
}

static void
value(FILE *fp, double v)
{
	if (isfinite(v) && v == floor(v) && fabs(v) < 1e15)
		fprintf(fp, " %.0f\n", v);
	else
		fprintf(fp, " %.17g\n", v);
}

static void
family(FILE *fp, const char *name, const char *type, const char *help)
{
	fprintf(fp, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{k1="v1",k2="v2"} v; a NULL key ends the labels. */
static void
sample(FILE *fp, const char *name, const char *k1, const char *v1, const char *k2, const char *v2, double v)
{
	fputs(name, fp);
	if (k1) {
		fprintf(fp, "{%s=\"", k1);
		label_value(fp, v1);
		if (k2) {
			fprintf(fp, "\",%s=\"", k2);
			label_value(fp, v2);
		}
		fputs("\"}", fp);
	}
	value(fp, v);
}

int
vdi_metrics_count(struct vdi_db *db, const char *name, const char *key, const char *val, double by,
		  struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	char *labels = NULL;
	size_t len = 0;
	FILE *fp;
	int ret = -1;

	if (!(fp = open_memstream(&labels, &len)))
		return vdi_err_set(err, VDI_R_FAIL, "no memory for a counter");
	if (key) {
		fprintf(fp, "%s=\"", key);
		label_value(fp, val);
		fputc('"', fp);
	}
	fclose(fp);
	if (vdi_db_prepare(db, &st, "INSERT INTO counters (name, labels, value) VALUES (?1, ?2, ?3) "
			   "ON CONFLICT (name, labels) DO UPDATE SET value = counters.value + excluded.value", err) < 0)
		goto out;
	vdi_stmt_bind_text(st, 1, name);
	vdi_stmt_bind_text(st, 2, labels);
	vdi_stmt_bind_double(st, 3, by);
	ret = vdi_db_step(db, st, "counting", err);
out:
	vdi_stmt_finalize(st);
	free(labels);
	return ret;
}

/* Each host: what it has, what is reserved on it, what it may still give. */
static int
hosts(struct vdi_db *db, FILE *fp, struct vdi_err *err)
{
	static const struct {
		const char *name, *type, *help;
	} fams[] = {
		{ "vdi_host_up", "gauge", "1 if the host answered its last poll or its watcher, 0 if not (unknown: absent)" },
		{ "vdi_host_admin", "gauge",
		  "The host's administrative state (active, draining, maintenance): 1 for the one it is in" },
		{ "vdi_host_sessions", "gauge", "Sessions on the host that are not ended (they hold its capacity)" },
		{ "vdi_host_sessions_limit", "gauge", "The host's max_sessions, where one is set" },
		{ "vdi_host_memory_bytes", "gauge",
		  "Memory the host may give to sessions: its RAM times ram_ratio, less reserve_mem" },
		{ "vdi_host_memory_used_bytes", "gauge", "Memory reserved by the host's sessions" },
		{ "vdi_host_memory_free_bytes", "gauge", "Memory the host may still give (never below 0)" },
		{ "vdi_host_vcpus", "gauge", "vCPUs the host may give: its CPUs times cpu_ratio" },
		{ "vdi_host_vcpus_used", "gauge", "vCPUs reserved by the host's sessions" },
		{ "vdi_host_crashes_total", "counter", "Sessions of the host whose domain crashed" },
	};
	struct vdi_stmt *st = NULL;
	int rc, ret = -1;

	if (vdi_db_prepare(db, &st, "SELECT name, health, admin, sessions, max_sessions, "
			   "mem_total * ram_ratio - reserve_mem, mem_used, vcpus * cpu_ratio, vcpus_used, crashes "
			   "FROM hosts ORDER BY name", err) < 0)
		return -1;
	for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
		family(fp, fams[f].name, fams[f].type, fams[f].help);
		vdi_stmt_reset(st);
		while ((rc = vdi_stmt_step(st)) == VDI_DB_ROW) {
			const char *h = vdi_stmt_text(st, 0), *health = vdi_stmt_text(st, 1);
			double cap = vdi_stmt_double(st, 5), used = (double)vdi_stmt_int64(st, 6);

			switch (f) {
			case 0:
				if (strcmp(health, "unknown") != 0)
					sample(fp, fams[f].name, "host", h, NULL, NULL, strcmp(health, "up") == 0);
				break;
			case 1:
				sample(fp, fams[f].name, "host", h, "state", vdi_stmt_text(st, 2), 1);
				break;
			case 2:
				sample(fp, fams[f].name, "host", h, NULL, NULL, (double)vdi_stmt_int64(st, 3));
				break;
			case 3:
				if (!vdi_stmt_null(st, 4))
					sample(fp, fams[f].name, "host", h, NULL, NULL, (double)vdi_stmt_int64(st, 4));
				break;
			case 4:
				sample(fp, fams[f].name, "host", h, NULL, NULL, floor(cap > 0 ? cap : 0));
				break;
			case 5:
				sample(fp, fams[f].name, "host", h, NULL, NULL, used);
				break;
			case 6:
				sample(fp, fams[f].name, "host", h, NULL, NULL, cap - used > 0 ? floor(cap - used) : 0);
				break;
			case 7:
				sample(fp, fams[f].name, "host", h, NULL, NULL, floor(vdi_stmt_double(st, 7)));
				break;
			case 8:
				sample(fp, fams[f].name, "host", h, NULL, NULL, (double)vdi_stmt_int64(st, 8));
				break;
			default:
				sample(fp, fams[f].name, "host", h, NULL, NULL, (double)vdi_stmt_int64(st, 9));
				break;
			}
		}
		if (rc != VDI_DB_DONE) {
			vdi_db_fail(db, "reading hosts", err);
			goto out;
		}
	}
	ret = 0;
out:
	vdi_stmt_finalize(st);
	return ret;
}

/* A gauge counted by a GROUP BY: rows of (label 1[, label 2[, label 3]], count). */
static int
grouped(struct vdi_db *db, FILE *fp, const char *name, const char *help, const char *sql, const char *k1,
	const char *k2, const char *k3, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int rc, ncol = 1 + (k2 != NULL) + (k3 != NULL);

	family(fp, name, "gauge", help);
	if (vdi_db_prepare(db, &st, sql, err) < 0)
		return -1;
	while ((rc = vdi_stmt_step(st)) == VDI_DB_ROW) {
		const char *keys[3] = { k1, k2, k3 };
		fputs(name, fp);
		fputc('{', fp);
		for (int i = 0; i < ncol; i++) {
			fprintf(fp, "%s%s=\"", i ? "," : "", keys[i]);
			label_value(fp, vdi_stmt_text(st, i));
			fputc('"', fp);
		}
		fputc('}', fp);
		value(fp, (double)vdi_stmt_int64(st, ncol));
	}
	vdi_stmt_finalize(st);
	return rc == VDI_DB_DONE ? 0 : vdi_db_fail(db, name, err);
}

/*
 * The counters the triggers keep, by family.  Some events are worth a
 * family of their own; they are read from vdi_events_total's rows.
 */
static const struct counter_family {
	const char *name, *help;
	const char *action; /* read from vdi_events_total{action=...} (NULL: its own rows) */
	const char *key, *val; /* the label it gets then */
} counter_families[] = {
	{ "vdi_session_starts_total", "Sessions that came to run, by kind (desktop, or prepare: a first boot)",
	  NULL, NULL, NULL },
	{ "vdi_session_ends_total", "Sessions that ended, by kind and reason", NULL, NULL, NULL },
	{ "vdi_placement_refusals_total", "Placements refused for want of a host, by reason", NULL, NULL, NULL },
	{ "vdi_watch_connects_total", "Times a watcher (vm-watch) connected to a host, by host", NULL, NULL, NULL },
	{ "vdi_placements_total", "Sessions placed on a host", "session-assign", "how", "policy" },
	{ "vdi_placements_total", NULL, "session-assign-forced", "how", "forced" },
	{ "vdi_placements_total", NULL, "prepare-assign", "how", "prepare" },
	{ "vdi_placements_total", NULL, "warm-assign", "how", "warm" },
	{ "vdi_warm_fallbacks_total", "Desktops that booted because their warm image would not restore",
	  "session-warm-fallback", NULL, NULL },
	{ "vdi_viewer_connects_total", "Viewers that connected to a desktop (after none)", "viewer-connected",
	  NULL, NULL },
	{ "vdi_viewer_disconnects_total", "Desktops whose last viewer went away", "viewer-disconnected", NULL,
	  NULL },
	{ "vdi_browser_consoles_total", "Browser consoles opened (vm-console)", "console-opened", NULL, NULL },
	{ "vdi_migrations_total", "Live migrations, by outcome", "session-migrate", "outcome", "moved" },
	{ "vdi_migrations_total", NULL, "session-migrate-undone", "outcome", "undone" },
	{ "vdi_events_total", "Events of the audit trail (vm-log), by action", NULL, NULL, NULL },
};

static int
counters(struct vdi_db *db, FILE *fp, struct vdi_err *err)
{
	struct vdi_stmt *own = NULL, *ev = NULL;
	int rc, ret = -1;

	if (vdi_db_prepare(db, &own, "SELECT labels, value FROM counters WHERE name = ?1 ORDER BY labels", err) < 0 ||
	    vdi_db_prepare(db, &ev, "SELECT coalesce(sum(value), 0) FROM counters WHERE name = 'vdi_events_total' "
			   "AND labels = ?1", err) < 0)
		goto out;
	for (size_t f = 0; f < sizeof(counter_families) / sizeof(counter_families[0]); f++) {
		const struct counter_family *c = &counter_families[f];
		char labels[96];

		if (c->help)
			family(fp, c->name, "counter", c->help);
		if (c->action) {
			snprintf(labels, sizeof(labels), "action=\"%s\"", c->action);
			vdi_stmt_reset(ev);
			vdi_stmt_bind_text(ev, 1, labels);
			if (vdi_stmt_step(ev) != VDI_DB_ROW) {
				vdi_db_fail(db, c->name, err);
				goto out;
			}
			sample(fp, c->name, c->key, c->val, NULL, NULL, vdi_stmt_double(ev, 0));
			continue;
		}
		vdi_stmt_reset(own);
		vdi_stmt_bind_text(own, 1, c->name);
		while ((rc = vdi_stmt_step(own)) == VDI_DB_ROW) {
			const char *l = vdi_stmt_text(own, 0);
			/* The labels were escaped when they were counted (by a trigger: constants and checked names). */
			fprintf(fp, "%s%s%s%s", c->name, *l ? "{" : "", l, *l ? "}" : "");
			value(fp, vdi_stmt_double(own, 1));
		}
		if (rc != VDI_DB_DONE) {
			vdi_db_fail(db, c->name, err);
			goto out;
		}
	}
	ret = 0;
out:
	vdi_stmt_finalize(own);
	vdi_stmt_finalize(ev);
	return ret;
}

/* The time from placement to a running desktop, as a histogram. */
static int
start_histogram(struct vdi_db *db, FILE *fp, struct vdi_err *err)
{
	static const char name[] = "vdi_session_start_seconds";
	struct vdi_stmt *st = NULL;
	double count = 0, sum = 0;
	int rc, ret = -1;

	family(fp, name, "histogram", "Seconds from a desktop's placement (vm-assign) to its domain running (vm-start)");
	if (vdi_db_prepare(db, &st, "SELECT name, labels, value FROM counters WHERE name IN "
			   "('vdi_session_start_seconds_count', 'vdi_session_start_seconds_sum')", err) < 0)
		goto out;
	while ((rc = vdi_stmt_step(st)) == VDI_DB_ROW) {
		if (strcmp(vdi_stmt_text(st, 0), "vdi_session_start_seconds_count") == 0)
			count = vdi_stmt_double(st, 2);
		else
			sum = vdi_stmt_double(st, 2);
	}
	vdi_stmt_finalize(st);
	st = NULL;
	if (rc != VDI_DB_DONE) {
		vdi_db_fail(db, name, err);
		goto out;
	}
	/* Every bucket, the ones nothing fell in too: a histogram's buckets are cumulative. */
	if (vdi_db_prepare(db, &st, "SELECT b.label, coalesce(c.value, 0) FROM start_buckets b LEFT JOIN counters c "
			   "ON c.name = 'vdi_session_start_seconds_bucket' AND c.labels = 'le=\"' || b.label || '\"' "
			   "ORDER BY b.le", err) < 0)
		goto out;
	while ((rc = vdi_stmt_step(st)) == VDI_DB_ROW)
		sample(fp, "vdi_session_start_seconds_bucket", "le", vdi_stmt_text(st, 0), NULL, NULL,
		       vdi_stmt_double(st, 1));
	if (rc != VDI_DB_DONE) {
		vdi_db_fail(db, name, err);
		goto out;
	}
	sample(fp, "vdi_session_start_seconds_bucket", "le", "+Inf", NULL, NULL, count);
	sample(fp, "vdi_session_start_seconds_sum", NULL, NULL, NULL, NULL, sum);
	sample(fp, "vdi_session_start_seconds_count", NULL, NULL, NULL, NULL, count);
	ret = 0;
out:
	vdi_stmt_finalize(st);
	return ret;
}

int
vdi_metrics_render(struct vdi_db *db, FILE *fp, int64_t now, struct vdi_err *err)
{
	bool began;
	int ret = -1;

	if (vdi_db_read_begin(db, &began, err) < 0)
		return -1;
	if (hosts(db, fp, err) < 0 ||
	    grouped(db, fp, "vdi_sessions", "Sessions that are not ended, by state, host and kind",
		    "SELECT s.state, coalesce(h.name, ''), s.kind, count(*) FROM sessions s "
		    "LEFT JOIN hosts h ON h.id = s.host_id WHERE s.state <> 'ended' "
		    "GROUP BY s.state, h.name, s.kind ORDER BY s.state, h.name, s.kind",
		    "state", "host", "kind", err) < 0 ||
	    grouped(db, fp, "vdi_uservms", "User VMs, by state",
		    "SELECT state, count(*) FROM uservms GROUP BY state ORDER BY state", "state", NULL, NULL, err) < 0 ||
	    grouped(db, fp, "vdi_masters", "Masters, by state",
		    "SELECT state, count(*) FROM masters GROUP BY state ORDER BY state", "state", NULL, NULL, err) < 0 ||
	    grouped(db, fp, "vdi_requests", "Desktop requests from the page, by state",
		    "SELECT state, count(*) FROM requests GROUP BY state ORDER BY state", "state", NULL, NULL, err) < 0 ||
	    counters(db, fp, err) < 0 || start_histogram(db, fp, err) < 0)
		goto out;
	family(fp, "vdi_metrics_timestamp_seconds", "gauge", "When these figures were read from the VMDB");
	sample(fp, "vdi_metrics_timestamp_seconds", NULL, NULL, NULL, NULL, (double)now);
	ret = 0;
out:
	vdi_db_read_end(db, began);
	return ret;
}
