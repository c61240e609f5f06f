/*
 * meta.h - the vdi <metadata> element that marks a libvirt domain as ours.
 *
 * Every domain vm-start creates carries, in its <metadata>,
 *   <vdi:session xmlns:vdi="VDI_XMLNS" id="42" user="u1" uservm="7"/>
 * which is how polling and reaping tell our domains from foreign ones and
 * map them back to sessions without any agent in the guest.  Built and
 * read with libxml2.
 */
#ifndef VDI_META_H
#define VDI_META_H

#include <stdint.h>

#include "err.h"

#define VDI_XMLNS "http://vdi-tools.org/xmlns/session/1"
#define VDI_XMLNS_PREFIX "vdi"

struct vdi_meta {
	int64_t session_id;
	int64_t uservm_id;
	char *user;
};

/* Parse the element libvirt returns for our namespace. */
int vdi_meta_parse(const char *xml, struct vdi_meta *m, struct vdi_err *err);
/* The element's XML (without namespace declaration), newly allocated. */
char *vdi_meta_format(const struct vdi_meta *m, struct vdi_err *err);
void vdi_meta_clear(struct vdi_meta *m);

#endif
