/*
 * request.h - desktops users asked for on the web page (the paper's step
 * 1), waiting for an administrator: vm-connect adds them, vm-copy
 * --requests lists them and makes (done) or rejects them.
 *
 * A request names a master (the OS and apps the user chose) and the
 * sizes; each is checked when it is added.  A user has at most one
 * pending request: asking again replaces it.  Only the VMDB is touched.
 */
#ifndef VDI_REQUEST_H
#define VDI_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "err.h"

struct vdi_request {
	int64_t id;
	char *user, *master, *state, *detail;  /* state: pending, done, rejected, failed */
	int64_t mem, vcpus, disk, created, changed;
	int64_t home;                          /* a home disk of this size (0: none) */
};

/*
 * Record r (its user, master and sizes; <= 0: the master's) as pending.
 * 3: no such master (or it is not active); 5: the user has a user VM
 * already; 4 (VDI_R_NEVER_FITS): no host of the master's pool could ever
 * hold its memory or vCPUs.  *id gets the request's id.
 */
int vdi_request_add(struct vdi_db *db, const struct vdi_request *r, int64_t *id, struct vdi_err *err);
/* Requests in state (NULL: any) of user (NULL: any), oldest first. */
int vdi_request_list(struct vdi_db *db, const char *state, const char *user, struct vdi_request **out, size_t *n,
		     struct vdi_err *err);
/* pending -> state (done, rejected, failed) with detail; 3 if id is not pending. */
int vdi_request_finish(struct vdi_db *db, int64_t id, const char *state, const char *detail, struct vdi_err *err);
void vdi_requests_free(struct vdi_request *r, size_t n);

#endif
