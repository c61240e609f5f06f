/*
 * names.h - the one strict pattern every name must match before use.
 *
 * Users, hosts, masters, apps, tags, OS names and pools all reach file
 * names, libvirt object names, XML and URIs, so they are checked here
 * once: 1-64 characters of [A-Za-z0-9._-], starting with a letter or a
 * digit, and never "." or "..".  Host URIs are checked by vdi_uri_check.
 */
#ifndef VDI_NAMES_H
#define VDI_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define VDI_NAME_MAX 64

bool vdi_name_valid(const char *name);

/* Check name; on failure fill err (exit 2) naming what kind of name it is. */
int vdi_name_check(const char *kind, const char *name, struct vdi_err *err);

/*
 * Check a libvirt URI for a host: one of the qemu transports (qemu,
 * qemu+unix, qemu+ssh, qemu+tls, qemu+tcp, qemu+libssh2, qemu+libssh),
 * path /system or /session, no white space or control characters.
 */
int vdi_uri_check(const char *uri, struct vdi_err *err);

/* The host part of a URI (qemu+ssh://root@hv1/system -> hv1), or "" when it has none. */
void vdi_uri_host(const char *uri, char *buf, size_t len);

#endif
