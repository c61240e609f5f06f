/*
 * warm.h - warm desktops: a user VM's booted memory saved once, and each
 * session restored from it in about a second instead of booting.
 *
 * A warm build is a session of kind 'warm', placed and reserved like a
 * desktop and started by the same workflow (start.h): the user VM boots
 * on a layer of its own (wID-USER.qcow2, a thin overlay on its disk, kept),
 * as domain vdi-wID-USER.  When the desktop is up (o->ready: a line its
 * serial console prints; else its first address, the DHCP lease or ARP)
 * and o->settle seconds more have passed, the session is committed
 * stopping (rule 2) and libvirt saves the domain's memory and devices
 * into wID-USER.save beside the layer; the session ends 'saved', and a
 * VMDB trigger makes that build the user VM's warm image in the same
 * transaction.  The layer is never written again: every desktop session
 * stands its own overlay on it, so the disk holds what it held when the
 * memory was saved (start.h restores).  The previous build's files are
 * deleted when no live session stands on them (else vm-reap --orphans does).
 *
 * A build that fails, times out or is interrupted is ended and its files
 * deleted (reaper.h); one whose builder is killed is ended by vm-reap
 * after start_ttl.  Either way the user VM stays as it was (cold, or warm
 * from its previous image), and the failure is recorded (warm_failed), so
 * vdi_warm_due() waits o->retry before it offers the user VM again.
 *
 * Callable from a CLI, a CGI or a daemon: nothing is printed.
 */
#ifndef VDI_WARM_H
#define VDI_WARM_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "db.h"
#include "err.h"
#include "start.h"

struct vdi_warm_opts {
	struct vdi_start_opts start;   /* placement and domain; its assign.warm is set here */
	const char *ready;             /* warm_ready: the console line that says the desktop is up ("": address) */
	int64_t settle;                /* warm_settle, seconds after that, before the save */
	int64_t timeout;               /* warm_timeout, seconds: up within it, or the build fails */
	int64_t poll_ms;               /* how often the running builds are looked at */
	const volatile sig_atomic_t *interrupted; /* stop: the running builds are ended */
	/* Told each user's end, in the order they end (e NULL: warm; size: the image's bytes). */
	void (*done)(void *ctx, size_t i, const struct vdi_err *e, int64_t size, int64_t ms);
	void *ctx;
};

/* o->start and the warm_ keys from the configuration (o->start.conns and the callbacks are the caller's). */
void vdi_warm_opts_config(struct vdi_warm_opts *o, const struct vdi_config *cfg);

/*
 * Build the warm images of users[0..n), whose user VMs must be ready with
 * no session: at once, as far as the hosts take them (a user that finds
 * no host waits for another's build to end).  Returns how many failed.
 */
size_t vdi_warm_run(struct vdi_db *db, char *const *users, size_t n, const struct vdi_warm_opts *o);

/*
 * The users whose user VM is due a warm build: ready, cold, with no
 * session, and no build failed within retry seconds (a new list: the
 * caller frees it with vdi_strv_free).
 */
int vdi_warm_due(struct vdi_db *db, int64_t retry, char ***users, size_t *n, struct vdi_err *err);

#endif
