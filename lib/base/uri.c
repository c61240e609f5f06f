/*
 * uri.c - checking libvirt host URIs (see names.h).  Apart from names.c so
 * that programs which never see a URI do not link libxml2.
 */
#include <stdio.h>
#include <string.h>

#include <libxml/uri.h>

#include "names.h"
#include "xml.h"

static const char *const uri_schemes[] = {
	"qemu", "qemu+unix", "qemu+ssh", "qemu+tls", "qemu+tcp", "qemu+libssh2", "qemu+libssh", NULL,
};

int
vdi_uri_check(const char *uri, struct vdi_err *err)
{
	xmlURIPtr u = NULL;
	const char *p;
	int i, ret = -1;

	if (!uri || !*uri)
		return vdi_err_set(err, VDI_R_USAGE, "empty host URI");
	if (strlen(uri) > 1024)
		return vdi_err_set(err, VDI_R_USAGE, "host URI is too long");
	for (p = uri; *p; p++) {
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '"' || *p == '\'' ||
		    *p == '\\' || *p == '<' || *p == '>' || *p == '`')
			return vdi_err_set(err, VDI_R_USAGE,
					   "invalid host URI '%.80s': white space, quotes or control characters", uri);
	}
	vdi_xml_init();
	u = xmlParseURI(uri);
	if (!u || !u->scheme) {
		vdi_err_set(err, VDI_R_USAGE, "invalid host URI '%.80s': expected qemu+TRANSPORT://[HOST]/system", uri);
		goto out;
	}
	for (i = 0; uri_schemes[i]; i++)
		if (strcmp(u->scheme, uri_schemes[i]) == 0)
			break;
	if (!uri_schemes[i]) {
		vdi_err_set(err, VDI_R_USAGE, "invalid host URI '%.80s': scheme '%s' is not a QEMU driver URI "
			    "(qemu, qemu+unix, qemu+ssh, qemu+tls, qemu+tcp)", uri, u->scheme);
		goto out;
	}
	if (!u->path || (strcmp(u->path, "/system") != 0 && strcmp(u->path, "/session") != 0)) {
		vdi_err_set(err, VDI_R_USAGE, "invalid host URI '%.80s': path must be /system or /session", uri);
		goto out;
	}
	ret = 0;
out:
	if (u)
		xmlFreeURI(u);
	return ret;
}

void
vdi_uri_host(const char *uri, char *buf, size_t len)
{
	xmlURIPtr u;

	vdi_xml_init();
	u = xmlParseURI(uri);
	buf[0] = '\0';
	if (u && u->server)
		snprintf(buf, len, "%s", u->server);
	if (u)
		xmlFreeURI(u);
}
