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
#include "xml.h"

/* Once per process, before any connection: silence libvirt's stderr printing, start the event loop. */
int vdi_virt_init(struct vdi_err *err);

/* Connect to uri within timeout_ms; NULL with err (75: unreachable) on failure. */
virConnectPtr vdi_virt_connect(const char *uri, int64_t timeout_ms, struct vdi_err *err);

/* Fill err from libvirt's last error in this thread. Returns -1. */
int vdi_virt_fail(enum vdi_reason why, const char *what, struct vdi_err *err);
/*
 * The same from an error saved with virSaveLastError() (virXxxFree() and
 * most other calls reset the last error, so save it before freeing).
 */
int vdi_virt_fail_saved(enum vdi_reason why, const char *what, const virError *e, struct vdi_err *err);

/*
 * The SPICE clients of a running domain that got past authentication, as
 * "HOST PORT" strings (QEMU's query-spice through libvirt's QEMU monitor
 * passthrough: read-only, though libvirt marks the domain tainted
 * "custom-monitor" in its log).  NULL-terminated; caller frees.
 */
char **vdi_domain_clients(virDomainPtr dom, struct vdi_err *err);

struct vdi_probe_req {
	const char *uri;
	const char *pool;    /* must exist and be active; NULL: not checked */
	bool domains;        /* also list running domains */
	bool load;           /* also sample CPU load */
	bool networks;       /* also look for the libvirt network "default" (vdi_node_report.default_network) */
};

/*
 * Probe n hosts, at most `parallel` at once, each within timeout_ms
 * (connect and calls together).  out[i] answers reqs[i]; a host that does
 * not answer in time gets err.code 75 and is left behind, never waited for.
 */
void vdi_virt_probe_many(const struct vdi_probe_req *reqs, size_t n, int64_t timeout_ms,
			 int parallel, struct vdi_node_report *out);

/*
 * Storage, by pool and volume name.  Volumes are named deterministically
 * from VMDB names (master-NAME, user-USER.qcow2, ...), so a rerun or a
 * reaper can find and finish or undo any half-done step.
 */
int vdi_pool_refresh(virConnectPtr c, const char *pool, struct vdi_err *err);
/* The volume's path (new string); NULL with code 3 if it does not exist. */
char *vdi_vol_path(virConnectPtr c, const char *pool, const char *name, struct vdi_err *err);
/* Capacity and allocation in bytes; code 3 if the volume does not exist. */
int vdi_vol_info(virConnectPtr c, const char *pool, const char *name, int64_t *capacity,
		 int64_t *allocation, struct vdi_err *err);
/* Grow a volume to capacity bytes (libvirt refuses to shrink without a flag we never give). */
int vdi_vol_resize(virConnectPtr c, const char *pool, const char *name, int64_t capacity, struct vdi_err *err);
/* Delete a volume: 1 deleted, 0 there was none, -1 error. */
int vdi_vol_delete(virConnectPtr c, const char *pool, const char *name, struct vdi_err *err);
/*
 * The same for a file libvirt wrote into the pool outside the storage API
 * (a saved image): when the pool does not list it, its view is refreshed
 * and it is looked for again.  1 deleted, 0 there is none, -1 error.
 */
int vdi_vol_delete_unlisted(virConnectPtr c, const char *pool, const char *name, struct vdi_err *err);
/* Create a volume (a thin overlay when spec->backing_path is set); code 5 if it exists. */
int vdi_vol_create(virConnectPtr c, const char *pool, const struct vdi_volume_spec *spec,
		   struct vdi_err *err);

/* Upload a new volume's bytes as a libvirt stream (works the same on a remote host). */
struct vdi_upload;
struct vdi_upload *vdi_upload_begin(virConnectPtr c, const char *pool, const struct vdi_volume_spec *spec,
				    struct vdi_err *err);
/*
 * The same into an existing volume of exactly len bytes, overwritten in
 * place (a seed made again: no delete, no create).  NULL with code 3 when
 * there is none, 5 when its size differs: then make a new one.  On a
 * failed transfer vdi_upload_abort deletes it, as for a new one.
 */
struct vdi_upload *vdi_upload_over(virConnectPtr c, const char *pool, const char *name, int64_t len,
				   struct vdi_err *err);
int vdi_upload_send(struct vdi_upload *u, const void *buf, size_t len, struct vdi_err *err);
/* Finish the stream; frees u. On failure the volume is deleted. */
int vdi_upload_finish(struct vdi_upload *u, struct vdi_err *err);
/* Abort the stream and delete the volume; frees u. */
void vdi_upload_abort(struct vdi_upload *u);

/* The names of the volumes in a pool (after a refresh); NULL-terminated, caller frees each and the array. */
char **vdi_pool_volumes(virConnectPtr c, const char *pool, struct vdi_err *err);

/* Domains. */
/* "kvm" when the host can, else "qemu" (TCG). */
/* The domain type to run: want (kvm, qemu), or with auto (or NULL) kvm when the host has it. */
const char *vdi_domain_type(virConnectPtr c, const char *want);
/* Start a transient domain from xml; *port gets its display ports (xml.h). */
int vdi_domain_start(virConnectPtr c, const char *xml, struct vdi_ports *port, struct vdi_err *err);
/*
 * The display ports of running domain name if it is session's (our metadata
 * says so): 0; code 3 if there is no such running domain; code 5 if a
 * domain of that name is not that session's.
 */
int vdi_domain_port(virConnectPtr c, const char *name, int64_t session, struct vdi_ports *port, struct vdi_err *err);
/*
 * Save running domain name's memory and device state into path (a file on
 * the host, written by libvirt); the domain is gone after.
 */
int vdi_domain_save(virConnectPtr c, const char *name, const char *path, struct vdi_err *err);
/*
 * Run domain name again from the image at path, saved under that name,
 * with e's changes to its XML (xml.h: the disk, the display, the session);
 * *port gets its display ports.  An image that is missing, unreadable, of
 * another domain or refused by this host's QEMU is an error (code 1).
 */
int vdi_domain_restore(virConnectPtr c, const char *path, const char *name, const struct vdi_xml_edit *e,
		       struct vdi_ports *port, struct vdi_err *err);
/* Destroy a domain: 1 destroyed, 0 there was none, -1 error. */
int vdi_domain_destroy(virConnectPtr c, const char *name, struct vdi_err *err);
/* Does domain name run? 1 yes, 0 it is gone (or shut off), -1 libvirt did not say. */
int vdi_domain_alive(virConnectPtr c, const char *name, struct vdi_err *err);
/*
 * Has domain name stopped running on its own while it still exists: paused
 * on an error (an I/O error, a watchdog, a guest panic, QEMU stopping it
 * for a reason libvirt does not know, as after a KVM emulation failure),
 * crashed, or suspended?  1 with what libvirt says in why ("paused: I/O
 * error"), 0 it runs (or is paused by an admin, or for a migration or a
 * save), -1 libvirt did not say.  A gone domain is 0: see vdi_domain_alive.
 */
int vdi_domain_stuck(virConnectPtr c, const char *name, char *why, size_t len, struct vdi_err *err);
/*
 * The guest's IPv4 address, agentless: the DHCP lease on a libvirt
 * network, else the host's ARP table.  1 found (in buf), 0 not yet, -1
 * error (3: no such domain).
 */
int vdi_domain_address(virConnectPtr c, const char *name, char *buf, size_t len, struct vdi_err *err);

#endif
