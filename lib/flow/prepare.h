/*
 * prepare.h - a user VM's first boot: the user VM is made ready once.
 *
 * A user VM whose master prepares itself (cloud-init, cloudbase-init) is
 * left 'preparing' by vm-copy.  Its first boot runs on its own disk, not
 * on an overlay, with its seed, as a session of kind 'prepare': the
 * scheduler places it and reserves its capacity like a desktop, and it is
 * started by the same workflow (start.h).  The seed's user-data ends by
 * powering off; when the domain is gone, the session ends 'poweroff' and a
 * VMDB trigger makes the user VM 'ready' in the same transaction.  A first
 * boot past the timeout is destroyed and ends 'expired': the user VM is
 * 'failed', and the next vm-copy of that user makes its disk again from
 * the master and retries.  A process killed while it waits leaves nothing
 * vm-reap cannot finish: the session is in the VMDB with its domain.
 *
 * Callable from a CLI, a CGI or a daemon: nothing is printed.
 */
#ifndef VDI_PREPARE_H
#define VDI_PREPARE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "err.h"
#include "start.h"

struct vdi_prepare_opts {
	struct vdi_start_opts start;   /* placement and domain; its assign.prepare is set here */
	int64_t timeout;               /* prepare_timeout, seconds */
	int64_t poll_ms;               /* how often the running first boots are looked at */
	const volatile sig_atomic_t *interrupted; /* stop waiting (vm-reap finishes what runs) */
	/* Told each user's end, in the order they end (e NULL: ready). */
	void (*done)(void *ctx, size_t i, const struct vdi_err *e);
	/*
	 * Told after each look at the running first boots (NULL: not told):
	 * how many ended of n, and who runs and for how long ("ann 12s,
	 * bob 9s, and 3 more"), for a progress line.
	 */
	void (*waiting)(void *ctx, size_t ended, size_t n, const char *who);
	void *ctx;
};

/*
 * Prepare users[0..n), each 'preparing': their first boots run at once, as
 * far as the hosts take them (a user that finds no host waits for another's
 * first boot to end, then tries again).  Returns how many failed.
 */
size_t vdi_prepare_run(struct vdi_db *db, char *const *users, size_t n, const struct vdi_prepare_opts *o);

#endif
