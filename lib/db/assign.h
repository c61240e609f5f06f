/*
 * assign.h - vm-assign's work in the VMDB: pick a host for a user's next
 * session and reserve its memory and vCPUs there, in one BEGIN IMMEDIATE
 * transaction, so concurrent assigners never overcommit a host and never
 * give one user two sessions.  Reads and writes the VMDB only.
 */
#ifndef VDI_ASSIGN_H
#define VDI_ASSIGN_H

#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "err.h"
#include "sched.h"

struct vdi_assign_opts {
	enum vdi_policy policy;
	enum vdi_policy fallback;  /* sticky's */
	const char *host;          /* chosen by hand (the helpdesk) */
	bool force;                /* with host: skip the filters */
	int64_t max_age;           /* poll_max_age, seconds */
	uint64_t *rng;             /* random2 */
	bool explain;              /* rank every host and fill each one's detail */
	const int64_t *exclude;    /* hosts not to pick (vm-start's retries after a failure) */
	size_t nexclude;
	bool prepare;              /* reserve for the user VM's first boot (it must be preparing), not a desktop */
	bool warm;                 /* reserve for a warm build of the user VM (warm.h), not a desktop */
	/*
	 * Move this running desktop session of the user (vm-migrate): reserve
	 * room for it on another host (its own fails filter "source"), and
	 * commit it migrating there, with this process's pid.
	 */
	int64_t move;
};

struct vdi_assign_result {
	char *host;
	int64_t session_id;        /* 0 with -n (vdi_db_dry_run) */
	bool existing;             /* the user's session that was not ended */
	char *from;                /* with move: the host it runs on */
	bool forced;
	char why[256];             /* why the winner won, in words */
	char why_short[256];       /* the policy, the winner's score and the runner-up's: recorded in the event */
	char entitled[512];        /* why the user may use the master (vm-group), for --explain */
	/* every host as the decision saw it, for --explain */
	struct vdi_sched_host *hosts;
	size_t nhosts;
	bool full;                 /* hosts holds every host (else only the candidates the quick path kept) */
	int64_t mem, vcpus;
};

/*
 * On success clear res when done.  On failure res holds nothing (it is
 * cleared), except with explain when no host fits (4): then res->hosts
 * holds every host with its verdict, and the caller clears res.
 */
int vdi_assign(struct vdi_db *db, const char *user, const struct vdi_assign_opts *o,
	       struct vdi_assign_result *res, struct vdi_err *err);
void vdi_assign_result_clear(struct vdi_assign_result *res);
void vdi_assign_result_hosts_clear(struct vdi_assign_result *res);

#endif
