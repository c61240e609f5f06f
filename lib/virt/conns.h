/*
 * conns.h - one libvirt connection per host per process, made on first use.
 *
 * Every workflow that talks to hosts (copy, import, start, reap, remove)
 * asks the cache for a host's connection by name, so a batch of a hundred
 * users opens each host once.  A host that failed to connect fails again
 * at once with its first error: an unreachable host costs one bounded
 * connect per run, not one per user.  The cache owns the connections;
 * callers never close them.  Not thread-safe: one cache per thread.
 */
#ifndef VDI_CONNS_H
#define VDI_CONNS_H

#include <stdbool.h>
#include <stdint.h>

#include <libvirt/libvirt.h>

#include "err.h"

struct vdi_conns;

/* A cache whose connects are bounded by timeout_ms each (vdi_virt_connect). */
struct vdi_conns *vdi_conns_new(int64_t timeout_ms);
/* The connection to host name at uri; NULL with err (75: unreachable) naming the host. */
virConnectPtr vdi_conns_get(struct vdi_conns *cs, const char *name, const char *uri, struct vdi_err *err);
struct vdi_db;
/*
 * The connection to a host that sees pool: the one named want (3 if
 * unknown), else the first that is up (host.h: vdi_host_for_pool).
 */
virConnectPtr vdi_conns_for_pool(struct vdi_conns *cs, struct vdi_db *db, const char *pool, const char *want,
				 struct vdi_err *err);

/* Forget a host's connection (it broke mid-call): the next get connects again. */
void vdi_conns_drop(struct vdi_conns *cs, const char *name);
/* Close every connection and free the cache (NULL is fine). */
void vdi_conns_free(struct vdi_conns *cs);

/*
 * What each worker thread of a batch (batch.h) owns: a VMDB handle, opened
 * on its first job, and a connection cache, as neither may be shared
 * between threads.  vdi_workers_get() gives worker w its pair (the VMDB
 * reopened from the caller's handle db on first use: the same VMDB, busy
 * timeout and -n); -1 with err if it does not open.  vdi_workers_free()
 * closes them all.
 */
struct vdi_workers {
	struct vdi_db *db;               /* the caller's, borrowed */
	int64_t timeout_ms;              /* per host connect */
	int n;
	struct vdi_db **dbs;
	struct vdi_conns **conns;
};
void vdi_workers_init(struct vdi_workers *w, int n);
int vdi_workers_get(struct vdi_workers *w, int worker, struct vdi_db **db, struct vdi_conns **cs,
		    struct vdi_err *err);
void vdi_workers_free(struct vdi_workers *w);

#endif
