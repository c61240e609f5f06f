/*
 * virt.h - libvirt connections with bounded time, and agentless probing.
 *
 * The only part of libvdi that links libvirt (libvdi-virt.a), so programs
 * that only use the VMDB do not pay for loading it.
 *
 * vdi_virt_connect() bounds the connect: it runs in a thread of its own
 * and is given up after timeout_ms (an unreachable or hung host costs at
 * most that), then turns on keepalive so a host that dies mid-call is
 * noticed.  vdi_virt_probe_many() asks many hosts at once, each under its
 * own deadline, for what polling records: CPUs, memory, CPU load, the
 * pool, and the running domains with our <metadata> (see meta.h).
 */
#ifndef VDI_VIRT_H
#define VDI_VIRT_H

#include <stdbool.h>
#include <stdint.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "err.h"
#include "report.h"

/* Once per process, before any connection: silence libvirt's stderr printing, start the event loop. */
int vdi_virt_init(struct vdi_err *err);

/* Connect to uri within timeout_ms; NULL with err (75: unreachable) on failure. */
virConnectPtr vdi_virt_connect(const char *uri, int64_t timeout_ms, struct vdi_err *err);

/* Fill err from libvirt's last error in this thread. Returns -1. */
int vdi_virt_fail(int code, const char *what, struct vdi_err *err);

struct vdi_probe_req {
	const char *uri;
	const char *pool;    /* must exist and be active; NULL: not checked */
	bool domains;        /* also list running domains */
	bool load;           /* also sample CPU load */
};

/*
 * Probe n hosts, at most `parallel` at once, each within timeout_ms
 * (connect and calls together).  out[i] answers reqs[i]; a host that does
 * not answer in time gets err.code 75 and is left behind, never waited for.
 */
void vdi_virt_probe_many(const struct vdi_probe_req *reqs, size_t n, int64_t timeout_ms,
			 int parallel, struct vdi_node_report *out);

#endif
