/*
 * report.h - what probing a host found (filled by virt.c, stored by host.c).
 *
 * Kept apart from virt.h so that code that only stores or prints reports
 * does not need libvirt.  A report owns its strings; clear it when done.
 */
#ifndef VDI_REPORT_H
#define VDI_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct vdi_domain_info {
	char *name;
	char *uuid;
	const char *state;  /* static string: running, paused, ... */
	bool ours;
	int64_t session_id; /* ours only */
	int64_t uservm_id;
	char *user;
	int vcpus;
	int64_t mem;        /* bytes */
	char *address;      /* ours only: the guest's IPv4 address from its DHCP lease (NULL: none known) */
};

struct vdi_node_report {
	struct vdi_err err;  /* err.code != 0: the host failed (message says why) */
	int64_t vcpus;
	int64_t mem_total;   /* bytes */
	int64_t mem_free;    /* bytes */
	double load;         /* 0..1, busy share of all CPUs over the sample window */
	bool load_known;
	struct vdi_domain_info *doms;
	size_t ndoms;
	int64_t elapsed_ms;
	bool default_network; /* the host has an active libvirt network named "default" (when asked) */
};

void vdi_node_report_clear(struct vdi_node_report *r);

#endif
