/*
 * start.h - vm-start's workflow: a user's session as a running desktop.
 *
 * vdi_start() takes one user (or one session, by id) to running:
 *   1. no session that is not ended: assign one (assign.h);
 *   2. claim it: state starting, with this pid, the names of what will be
 *      made and a fresh display password, committed before any libvirt
 *      call (rule 2);
 *   3. adopt a domain of ours by that name (a starter killed after it
 *      started the domain), else make the overlay and the transient
 *      domain;
 *   4. record it running, only while the claim is still ours (a vm-reap
 *      that ended it meanwhile wins, and what was made is undone).
 * When the host fails, what was made is undone, the session ends
 * "failed" (its capacity is freed) and the next-best host is tried, up to
 * retries more hosts.  When no other host fits, the host's own failure is
 * returned (exit 1), not "no host" (exit 4).
 *
 * Callable from a CLI, a CGI or a daemon: it prints nothing; each failed
 * host that is retried is told to o->host_failed.
 */
#ifndef VDI_START_H
#define VDI_START_H

#include <stdbool.h>
#include <stdint.h>

#include "assign.h"
#include "conns.h"
#include "db.h"
#include "err.h"
#include "session.h"

struct vdi_start_opts {
	struct vdi_assign_opts assign;  /* how a host is picked (exclude is the workflow's) */
	int64_t retries;                /* other hosts to try after one fails */
	struct vdi_conns *conns;        /* borrowed */
	/* Told each host failure after which another host is tried (may be NULL). */
	void (*host_failed)(void *ctx, const struct vdi_err *e);
	void *ctx;
};

/*
 * Start user's session (user != NULL), or session id (user == NULL).
 * On success *s (cleared first; the caller clears it) is the running
 * session, with its display address, port and password.
 */
int vdi_start(struct vdi_db *db, const char *user, int64_t id, const struct vdi_start_opts *o,
	      struct vdi_session *s, struct vdi_err *err);

/* The virt-viewer file for a running session (new string): SPICE, host, port, password. */
char *vdi_start_vv(const struct vdi_session *s);
/* Write DIR/USER.vv privately (file.h): 5 when something not ours is in the way. */
int vdi_start_write_vv(const struct vdi_session *s, const char *dir, struct vdi_err *err);

#endif
