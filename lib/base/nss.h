/*
 * nss.h - a user's groups as the system knows them: NSS, so /etc/group,
 * LDAP, AD or FreeIPA groups through sssd arrive with no directory code of
 * vdi-tools' own (getpwnam_r, getgrouplist, getgrgid_r).
 *
 * Ownership: *groups is the caller's, an owning strv (vdi_strv_free).
 */
#ifndef VDI_NSS_H
#define VDI_NSS_H

#include <stddef.h>

#include "err.h"

/*
 * The names of user's groups, the primary one included, sorted, each once.
 * A user the system does not know has none: 0 with *n 0, not an error
 * (who is in no group may use nothing).  -1 only when the lookup itself
 * failed (a directory that does not answer: VDI_R_TEMP).
 */
int vdi_nss_groups(const char *user, char ***groups, size_t *n, struct vdi_err *err);

#endif
