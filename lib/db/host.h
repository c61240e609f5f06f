/*
 * host.h - the host inventory in the VMDB.
 *
 * A host is a libvirt URI with its limits (session cap, CPU and memory
 * allocation ratios, memory kept back), tags, the pool it sees, what the
 * administrator wants of it (active, draining, maintenance) and what the
 * last poll saw (health, CPUs, memory, load, domains).  Capacity in use
 * comes from the host's sessions that are not ended (counters kept by
 * SQLite triggers on sessions, see schema/001-init.sql).
 *
 * Functions here only touch the VMDB; talking to the hosts is virt.h's.
 * A struct vdi_host owns its strings: vdi_host_clear() frees them.
 */
#ifndef VDI_HOST_H
#define VDI_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "err.h"

struct vdi_node_report;

struct vdi_host {
	int64_t id;
	char *name, *uri, *pool;
	char *admin;           /* active, draining, maintenance */
	char *health;          /* unknown, up, down */
	char *display_address; /* NULL: the URI's host name, else 127.0.0.1 */
	char *network, *bridge; /* what sessions' NIC joins (NULL both: no NIC) */
	char *migration_uri;   /* where its libvirtd takes migrations (NULL: libvirt's choice) */
	int64_t max_sessions;  /* -1: no limit */
	double cpu_ratio, ram_ratio;
	int64_t reserve_mem;
	int64_t vcpus, mem_total, mem_free;
	double load;
	bool load_known;
	int64_t domains_total, domains_ours;
	int64_t last_poll, last_ok, down_since, created;
	int64_t fenced;        /* when an administrator vouched it is off (vm-hosts fence); 0: not fenced */
	int64_t crashes;       /* sessions of it that ended 'crashed' (their QEMU died on its own) */
	char *last_error;
	char **tags;
	size_t ntags;
	/* from the sessions that are not ended */
	int64_t sessions, vcpus_used, mem_used;
};

/* What add and set change; a field is changed only when its has_ flag is set. */
struct vdi_host_spec {
	const char *pool;
	bool has_max_sessions;
	int64_t max_sessions; /* -1: no limit */
	bool has_cpu_ratio;
	double cpu_ratio;
	bool has_ram_ratio;
	double ram_ratio;
	bool has_reserve_mem;
	int64_t reserve_mem;
	bool has_tags;
	char **tags;
	size_t ntags;
	bool has_display_address;
	const char *display_address; /* NULL or "": back to the default */
	bool has_network;            /* set network or bridge (one of them; both NULL or "": no NIC) */
	const char *network, *bridge;
	bool has_migration_uri;
	const char *migration_uri;   /* NULL or "": libvirt's choice */
};

/* Check a migration URI: tcp://ADDRESS[:PORT] (or rdma://). */
int vdi_migration_uri_check(const char *uri, struct vdi_err *err);

/* Check a bridge's interface name: 1 to 15 of [A-Za-z0-9._-], as Linux takes it. */
int vdi_bridge_check(const char *name, struct vdi_err *err);

/* The one state people see: maintenance, down, draining, unknown or up. */
const char *vdi_host_state(const struct vdi_host *h);

/* Check a display address: a host name or an IPv4/IPv6 address. */
int vdi_display_address_check(const char *addr, struct vdi_err *err);

/* 1 if a host has this name, 0 if not. */
int vdi_host_exists(struct vdi_db *db, const char *name, struct vdi_err *err);

/*
 * Record a new host.  probe (may be NULL) is what a check of the host
 * found: it sets health up and the hardware figures.  A name or URI in
 * use already is a conflict (5).
 */
int vdi_host_add(struct vdi_db *db, const char *name, const char *uri,
		 const struct vdi_host_spec *spec, const struct vdi_node_report *probe,
		 struct vdi_err *err);
int vdi_host_update(struct vdi_db *db, const char *name, const struct vdi_host_spec *spec,
		    struct vdi_err *err);
int vdi_host_get(struct vdi_db *db, const char *name, struct vdi_host *h, struct vdi_err *err);
/* All hosts (names == NULL) or the named ones (each must exist: else 3), by name. */
int vdi_host_list(struct vdi_db *db, char *const *names, size_t nnames,
		  struct vdi_host **out, size_t *nout, struct vdi_err *err);
void vdi_host_clear(struct vdi_host *h);
void vdi_hosts_free(struct vdi_host *hs, size_t n);

/*
 * A host to reach a storage pool through, for work on shared volumes
 * (imports, copies): the named one (3 if unknown; it may see more pools
 * than its default), else the first by name
 * that sees the pool and is not down or in maintenance, up ones first.
 * No such host: 4.  *name and *uri are new strings.
 */
int vdi_host_for_pool(struct vdi_db *db, const char *pool, const char *want, char **name, char **uri,
		      struct vdi_err *err);

/*
 * admin: "active", "draining" or "maintenance".  Maintenance is refused (5)
 * while sessions that are not ended are there (or moving there), unless
 * force.
 */
int vdi_host_set_admin(struct vdi_db *db, const char *name, const char *admin, bool force, struct vdi_err *err);

/* Remove a host; refused (5) while it has sessions that are not ended, unless force. */
int vdi_host_rm(struct vdi_db *db, const char *name, bool force, struct vdi_err *err);

/*
 * Record that host name is off, as its administrator vouches (vm-hosts
 * fence), in one transaction: fenced now and out of placement
 * (maintenance); its sessions that are not ended end host-lost, so their
 * capacity comes back (a session moving away is left for vm-reap to
 * settle, as its domain may run on the destination); its domains are
 * forgotten; an event names how (detail).  *ended: how many sessions ended.
 */
/*
 * Could any host that sees pool ever hold a session of mem bytes and vcpus
 * vCPUs, empty, under its allocation ratios and reserve?  0: yes, or not
 * known yet (no host of the pool has been polled).  -1 with
 * VDI_R_NEVER_FITS and what the largest can give: no host ever could, so
 * the user VM would wait for room for ever.
 */
int vdi_host_fits_ever(struct vdi_db *db, const char *pool, int64_t mem, int64_t vcpus, struct vdi_err *err);

int vdi_host_fence(struct vdi_db *db, const char *name, const char *detail, int64_t *ended, struct vdi_err *err);

/*
 * Store a poll of n hosts, one short transaction per host (a login waits
 * for one host's write at most, not for all of them): health, figures,
 * domains, transitions as events.  On an error the hosts before it stay
 * recorded.
 */
int vdi_host_record_polls(struct vdi_db *db, const struct vdi_host *hs,
			  const struct vdi_node_report *reps, size_t n, struct vdi_err *err);

/* The domains a host's last successful poll saw. */
/*
 * vm-watch's view of a host (schema 3).  begin: every event of the host
 * is seen from now on (its callbacks are registered and it was
 * reconciled); the host is up.  seen: the watch of these hosts is still
 * live (a heartbeat; a watch not affirmed for VDI_WATCH_STALE seconds is
 * no watch, e.g. after kill -9 of vm-watch).  end: the watch stopped;
 * with down, the connection broke and the host is marked down with why.
 */
#define VDI_WATCH_STALE 30
int vdi_host_watch_begin(struct vdi_db *db, int64_t id, int64_t now, struct vdi_err *err);
int vdi_host_watch_seen(struct vdi_db *db, const int64_t *ids, size_t n, int64_t now, struct vdi_err *err);
int vdi_host_watch_end(struct vdi_db *db, int64_t id, int64_t since, bool down, const char *why, struct vdi_err *err);

struct vdi_host_domain {
	char *name, *uuid, *state, *user, *session_state;
	bool ours;
	int64_t session_id, vcpus, mem;
};
int vdi_host_domains(struct vdi_db *db, int64_t host_id, struct vdi_host_domain **out,
		     size_t *nout, struct vdi_err *err);
void vdi_host_domains_free(struct vdi_host_domain *d, size_t n);

#endif
