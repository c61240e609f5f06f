/* poll.c - polling hosts and adding checked hosts (see poll.h). */
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "poll.h"
#include "virt.h"

int
vdi_poll_run(struct vdi_db *db, char *const *names, size_t nnames, const struct vdi_poll_opts *o,
	     struct vdi_host **hs, struct vdi_node_report **reps, size_t *n, struct vdi_err *err)
{
	struct vdi_probe_req *reqs;

	*reps = NULL;
	if (vdi_host_list(db, nnames ? names : NULL, nnames, hs, n, err) < 0)
		return -1;
	reqs = vdi_xcalloc(*n + 1, sizeof(*reqs));
	*reps = vdi_xcalloc(*n + 1, sizeof(**reps));
	for (size_t i = 0; i < *n; i++) {
		reqs[i].uri = (*hs)[i].uri;
		reqs[i].pool = (*hs)[i].pool;
		reqs[i].domains = true;
		reqs[i].load = true;
	}
	/* Rule 1: no VMDB transaction is open while the hosts are asked. */
	vdi_virt_probe_many(reqs, *n, o->timeout_ms, o->parallel, *reps);
	free(reqs);
	if (vdi_host_record_polls(db, *hs, *reps, *n, err) < 0) {
		vdi_poll_free(*hs, *reps, *n);
		*hs = NULL;
		*reps = NULL;
		*n = 0;
		return -1;
	}
	return 0;
}

void
vdi_poll_free(struct vdi_host *hs, struct vdi_node_report *reps, size_t n)
{
	for (size_t i = 0; reps && i < n; i++)
		vdi_node_report_clear(&reps[i]);
	free(reps);
	vdi_hosts_free(hs, n);
}

int
vdi_poll_add(struct vdi_db *db, const char *name, const char *uri, const struct vdi_host_spec *spec,
	     bool check, const struct vdi_poll_opts *o, struct vdi_node_report *rep, struct vdi_err *err)
{
	struct vdi_host_spec sp = *spec;
	int rc;

	memset(rep, 0, sizeof(*rep));
	vdi_err_object(err, "%s", name);
	/* Fail fast on a taken name, before talking to the host. */
	rc = vdi_host_exists(db, name, err);
	if (rc < 0)
		return -1;
	if (rc == 1)
		return vdi_err_set(err, VDI_R_CONFLICT, "host '%s' exists already", name);
	if (check) {
		struct vdi_probe_req req = { .uri = uri, .pool = spec->pool, .networks = !spec->has_network };
		vdi_virt_probe_many(&req, 1, o->timeout_ms, 1, rep);
		if (rep->err.code) {
			vdi_err_copy(err, &rep->err);
			return vdi_err_prefix(err, "host '%s' (%s)", name, uri);
		}
		/* No network named: the host's "default" when it has one, as virt-install does. */
		if (!sp.has_network && rep->default_network) {
			sp.has_network = true;
			sp.network = "default";
			sp.bridge = NULL;
		}
	}
	return vdi_host_add(db, name, uri, &sp, check ? rep : NULL, err);
}
