/* console.c - browser consoles in the VMDB: tickets and the record of each (see console.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "console.h"
#include "event.h"
#include "mem.h"
#include "proc.h"

static void
action_of(int64_t session_id, char *buf, size_t len)
{
	snprintf(buf, len, "console:%lld", (long long)session_id);
}

int
vdi_console_ticket(struct vdi_db *db, const char *user, int64_t session_id, int64_t ttl, int64_t now,
		   char out[VDI_TOKEN_MAX], struct vdi_err *err)
{
	unsigned char key[VDI_TOKEN_KEY];
	char action[48];
	int ret;

	action_of(session_id, action, sizeof(action));
	if (vdi_token_key(db, key, err) < 0)
		return -1;
	ret = vdi_token_make(key, user, action, now + ttl, out, err);
	explicit_bzero(key, sizeof(key));
	return ret;
}

/* The ticket: the user's, for this session, in time, and spent now; the errors in a console's words. */
static int
spend_ticket(struct vdi_db *db, const struct vdi_console_req *q, struct vdi_err *err)
{
	unsigned char key[VDI_TOKEN_KEY];
	char action[48];
	int rc;

	action_of(q->session_id, action, sizeof(action));
	if (!q->ticket || !*q->ticket)
		return vdi_err_set(err, VDI_R_USAGE, "no console ticket");
	if (vdi_token_key(db, key, err) < 0)
		return -1;
	rc = vdi_token_check(key, q->user, action, q->ticket, q->now, err);
	explicit_bzero(key, sizeof(key));
	if (rc < 0) {
		if (err->reason == VDI_R_TOKEN_EXPIRED)
			return vdi_err_set(err, VDI_R_TOKEN_EXPIRED, "the console ticket has expired");
		if (err->reason == VDI_R_USAGE)
			return vdi_err_set(err, VDI_R_USAGE, "a malformed console ticket");
		return vdi_err_set(err, VDI_R_CONFLICT, "the console ticket is not %s's for session %lld",
				   q->user, (long long)q->session_id);
	}
	if (vdi_token_spend(db, q->ticket, q->now, err) < 0) {
		if (err->reason == VDI_R_TOKEN_SPENT)
			return vdi_err_set(err, VDI_R_TOKEN_SPENT, "the console ticket was used before");
		return -1;
	}
	return 0;
}

int
vdi_console_open(struct vdi_db *db, const struct vdi_console_req *q, struct vdi_console_target *t,
		 struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	char detail[256];
	int rc, ret = -1;

	memset(t, 0, sizeof(*t));
	/* First the ticket, spent even if what follows refuses: it is one use, whatever the use. */
	if (spend_ticket(db, q, err) < 0)
		return -1;
	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	if (vdi_db_prepare(db, &st, "SELECT s.state, u.username, coalesce(s.console_port, 0), s.console_password, "
			   "h.name, s.display_address FROM sessions s JOIN uservms u ON u.id = s.uservm_id "
			   "LEFT JOIN hosts h ON h.id = s.host_id WHERE s.id = ?1 AND s.state <> 'ended' "
			   "AND s.kind = 'desktop'", err) < 0)
		goto out;
	vdi_stmt_bind_int64(st, 1, q->session_id);
	rc = vdi_db_step_row(db, st, "reading the console's session", err);
	if (rc < 0)
		goto out;
	if (rc == 0) {
		vdi_err_set(err, VDI_R_NOTFOUND, "session %lld has ended", (long long)q->session_id);
		goto out;
	}
	if (strcmp(vdi_stmt_text(st, 1), q->user) != 0) {
		/* The ticket was the user's, so this is a session id reused meanwhile: never another's desktop. */
		vdi_err_set(err, VDI_R_CONFLICT, "session %lld is not %s's", (long long)q->session_id, q->user);
		goto out;
	}
	if (strcmp(vdi_stmt_text(st, 0), "running") != 0) {
		vdi_err_set(err, VDI_R_CONFLICT, "session %lld is %s, not running", (long long)q->session_id,
			    vdi_stmt_text(st, 0));
		goto out;
	}
	if (vdi_stmt_int64(st, 2) <= 0 || vdi_stmt_null(st, 3) || vdi_stmt_null(st, 4) || vdi_stmt_null(st, 5)) {
		vdi_err_set(err, VDI_R_NOTFOUND, "session %lld has no browser console (it started with console = no, "
			    "or from a warm image made without one)", (long long)q->session_id);
		goto out;
	}
	t->port = vdi_stmt_int64(st, 2);
	t->password = vdi_stmt_strdup(st, 3);
	t->host = vdi_stmt_strdup(st, 4);
	t->address = vdi_stmt_strdup(st, 5);
	vdi_stmt_finalize(st);
	st = NULL;
	if (q->per_user > 0) {
		if (vdi_db_prepare(db, &st, "SELECT count(*) FROM consoles WHERE username = ?1 AND closed IS NULL",
				   err) < 0)
			goto out;
		vdi_stmt_bind_text(st, 1, q->user);
		if (vdi_db_step_row(db, st, "counting the user's consoles", err) != 1)
			goto out;
		if (vdi_stmt_int64(st, 0) >= q->per_user) {
			vdi_err_set(err, VDI_R_LIMIT, "%s has %lld browser consoles open already (console_per_user)",
				    q->user, (long long)vdi_stmt_int64(st, 0));
			goto out;
		}
		vdi_stmt_finalize(st);
		st = NULL;
	}
	if (vdi_db_prepare(db, &st, "INSERT INTO consoles (session_id, username, instance, peer, opened) "
			   "VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id", err) < 0)
		goto out;
	vdi_stmt_bind_int64(st, 1, q->session_id);
	vdi_stmt_bind_text(st, 2, q->user);
	vdi_stmt_bind_text(st, 3, q->instance);
	vdi_stmt_bind_text(st, 4, q->peer);
	vdi_stmt_bind_int64(st, 5, q->now);
	if (vdi_db_step_row(db, st, "recording the console", err) != 1)
		goto out;
	t->id = vdi_stmt_int64(st, 0);
	vdi_stmt_finalize(st);
	st = NULL;
	snprintf(detail, sizeof(detail), "session=%lld console=%lld from=%.64s", (long long)q->session_id,
		 (long long)t->id, q->peer ? q->peer : "unknown");
	if (vdi_event_add_session(db, q->user, q->session_id, "console-opened", detail, err) < 0)
		goto out;
	ret = 0;
out:
	vdi_stmt_finalize(st);
	ret = vdi_db_finish(db, ret, err);
	if (ret < 0)
		vdi_console_target_clear(t);
	return ret;
}

void
vdi_console_target_clear(struct vdi_console_target *t)
{
	free(t->host);
	free(t->address);
	if (t->password)
		explicit_bzero(t->password, strlen(t->password));
	free(t->password);
	memset(t, 0, sizeof(*t));
}

int
vdi_console_close(struct vdi_db *db, int64_t id, const char *reason, int64_t bytes_in, int64_t bytes_out,
		  struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	char detail[200], user[128] = "";
	int64_t sid = 0;
	int rc, ret = -1;

	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	if (vdi_db_prepare(db, &st, "UPDATE consoles SET closed = ?2, reason = ?3, bytes_in = ?4, bytes_out = ?5 "
			   "WHERE id = ?1 AND closed IS NULL RETURNING session_id, username", err) < 0)
		goto out;
	vdi_stmt_bind_int64(st, 1, id);
	vdi_stmt_bind_int64(st, 2, vdi_clock_now());
	vdi_stmt_bind_text(st, 3, reason);
	vdi_stmt_bind_int64(st, 4, bytes_in);
	vdi_stmt_bind_int64(st, 5, bytes_out);
	rc = vdi_db_step_row(db, st, "recording the console closed", err);
	if (rc < 0)
		goto out;
	if (rc == 1) {
		sid = vdi_stmt_int64(st, 0);
		snprintf(user, sizeof(user), "%s", vdi_stmt_text(st, 1));
	}
	vdi_stmt_finalize(st);
	st = NULL;
	if (rc == 1) {
		snprintf(detail, sizeof(detail), "session=%lld console=%lld reason=%s in=%lld out=%lld", (long long)sid,
			 (long long)id, reason, (long long)bytes_in, (long long)bytes_out);
		if (vdi_event_add_session(db, user, sid, "console-closed", detail, err) < 0)
			goto out;
	}
	ret = 0;
out:
	vdi_stmt_finalize(st);
	return vdi_db_finish(db, ret, err);
}

int
vdi_console_restart(struct vdi_db *db, int64_t *closed, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int64_t *ids = NULL;
	size_t n = 0, cap = 0;
	int rc, ret = -1;

	*closed = 0;
	if (vdi_db_prepare(db, &st, "SELECT id, instance FROM consoles WHERE closed IS NULL", err) < 0)
		return -1;
	while ((rc = vdi_stmt_step(st)) == VDI_DB_ROW) {
		/* This machine's relays only: another machine's may be running. */
		if (vdi_proc_owner_alive(vdi_stmt_text(st, 1)) != 0)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			ids = vdi_xrealloc(ids, cap * sizeof(*ids));
		}
		ids[n++] = vdi_stmt_int64(st, 0);
	}
	if (rc != VDI_DB_DONE) {
		vdi_db_fail(db, "reading open consoles", err);
		goto out;
	}
	vdi_stmt_finalize(st);
	st = NULL;
	for (size_t i = 0; i < n; i++)
		if (vdi_console_close(db, ids[i], "restart", 0, 0, err) < 0)
			goto out;
	*closed = (int64_t)n;
	ret = 0;
out:
	vdi_stmt_finalize(st);
	free(ids);
	return ret;
}
