/*
 * watch.h - vm-watch's workflow: libvirt events of every host in the
 * VMDB, no agent in any guest.
 *
 * vdi_watch_run() keeps one connection per host (keepalive on; the
 * default event loop is registered before any connection by
 * vdi_virt_init), registers lifecycle and graphics callbacks on it and a
 * close callback, then reconciles (events sent while it was not
 * connected are lost): sessions whose domain is gone end "poweroff",
 * and each running desktop's SPICE clients are read from QEMU
 * (query-spice), so connected/disconnected is true again.  Only then is
 * the host's watch begun in the VMDB (host.h), which is what lets
 * vm-reap apply disconnect_timeout and connect_timeout.
 *
 * The callbacks run in libvirt's event thread and only queue what they
 * saw; everything else (the VMDB, ending sessions, reconnecting) runs in
 * the caller's thread, so no callback ever blocks the event loop.
 *
 *  - A domain of a running session stops (poweroff, crash, destroyed
 *    behind our back): the session ends at once, reason poweroff, through
 *    vdi_reaper_end(), the same call vm-reap uses.
 *  - SPICE opens one socket per channel and reports connect, initialize
 *    and disconnect per socket; a wrong or expired password gives connect
 *    and disconnect without initialize.  Per session the set of sockets
 *    that got past initialize is kept: the first one in is
 *    "connected", the last one out is "disconnected" (session.h).
 *  - A host whose connection closes is marked down; it is connected
 *    again with backoff (1 s doubling up to backoff_max_ms), registered
 *    again and reconciled again.  Hosts added to or removed from the VMDB
 *    are picked up at the next rescan.
 *
 * It prints nothing: each state change is one line told to o->log.
 */
#ifndef VDI_WATCH_H
#define VDI_WATCH_H

#include <signal.h>
#include <stdint.h>

#include <libvirt/libvirt.h>

#include "db.h"
#include "domlog.h"
#include "err.h"

struct vdi_watch_opts {
	int64_t connect_timeout_ms;  /* per connect */
	int64_t rescan_ms;           /* hosts reread and the watch affirmed this often (<= VDI_WATCH_STALE/3) */
	int64_t backoff_max_ms;      /* longest wait between connects to a host that is gone */
	const volatile sig_atomic_t *stop;  /* set by a signal handler: return within half a second */
	struct vdi_domlog_where logs;       /* where the hosts' QEMU logs are read, to quote a guest that froze */
	void (*log)(void *ctx, const char *line);
	void *ctx;
};

/*
 * Watch until *o->stop.  0 after a stop (every watch ended in the VMDB),
 * -1 with err when the VMDB fails.  Hosts failing are not errors: they
 * are logged and retried.
 */
int vdi_watch_run(struct vdi_db *db, const struct vdi_watch_opts *o, struct vdi_err *err);

/*
 * One vm-watch per VMDB (vdi_db_lock "watch": DB.watch.lock beside an SQLite VMDB, an
 * advisory lock on PostgreSQL).  1 locked (*fd, if not -1, holds it), 0 another holds it.
 */
int vdi_watch_lock(struct vdi_db *db, int *fd, struct vdi_err *err);
/*
 * A standby's wait (vm-watch --standby): try the lock every half second
 * until it is free (the watcher that held it stopped, was killed, or its
 * machine's connection to the VMDB closed) or *stop is set.  1 locked, 0
 * stopped, -1 error.
 */
int vdi_watch_lock_wait(struct vdi_db *db, const volatile sig_atomic_t *stop, int *fd, struct vdi_err *err);


#endif
