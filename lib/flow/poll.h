/*
 * poll.h - agentless host status: ask hosts through libvirt, record in the VMDB.
 *
 * vdi_poll_run() asks the hosts in parallel, each under its own deadline
 * (virt.h), with no VMDB transaction open, then records every answer (and
 * every silence) in one transaction: health, hardware, load, domains, and
 * health changes as events.  With -n (vdi_db_dry_run) the hosts are asked and the
 * recording is rolled back.  vdi_poll_add() is vm-hosts add: a host is
 * checked (reachable, its pool active) before it is recorded.
 */
#ifndef VDI_POLL_H
#define VDI_POLL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "err.h"
#include "host.h"
#include "report.h"

struct vdi_poll_opts {
	int64_t timeout_ms;   /* per host: connect and every call */
	int parallel;         /* hosts asked at once */
};

/*
 * Poll the named hosts (all hosts when nnames is 0).  *hs and *reps (n
 * each, reps[i] answering hs[i]) are the caller's: vdi_poll_free().
 * -1 only when the VMDB failed or a named host does not exist (3).
 */
int vdi_poll_run(struct vdi_db *db, char *const *names, size_t nnames, const struct vdi_poll_opts *o,
		 struct vdi_host **hs, struct vdi_node_report **reps, size_t *n, struct vdi_err *err);
void vdi_poll_free(struct vdi_host *hs, struct vdi_node_report *reps, size_t n);

/*
 * Add a host.  With check, it is probed first (its pool must be active);
 * *rep (cleared by the caller with vdi_node_report_clear) is what was seen.
 * A checked host with no network or bridge in spec gives its sessions its
 * libvirt network "default" when that is active (rep->default_network), as
 * virt-install does: a desktop without a NIC surprises everyone.
 * 5 when the name or URI is taken, 75 when the host does not answer.
 */
int vdi_poll_add(struct vdi_db *db, const char *name, const char *uri, const struct vdi_host_spec *spec,
		 bool check, const struct vdi_poll_opts *o, struct vdi_node_report *rep, struct vdi_err *err);

#endif
