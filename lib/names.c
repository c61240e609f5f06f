/* names.c - name and URI validation (see names.h). */
#include <string.h>

#include <libxml/uri.h>

#include "names.h"

static bool
name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

bool
vdi_name_valid(const char *name)
{
	size_t i, len;

	if (!name)
		return false;
	len = strlen(name);
	if (len == 0 || len > VDI_NAME_MAX)
		return false;
	if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z') ||
	      (name[0] >= '0' && name[0] <= '9')))
		return false;
	for (i = 0; i < len; i++)
		if (!name_char(name[i]))
			return false;
	return true;
}

int
vdi_name_check(const char *kind, const char *name, struct vdi_err *err)
{
	if (vdi_name_valid(name))
		return 0;
	if (!name || !*name)
		return vdi_err_set(err, VDI_EUSAGE, "empty %s name", kind);
	return vdi_err_set(err, VDI_EUSAGE,
			   "invalid %s name '%.80s': use 1-%d letters, digits, '.', '_' or '-', "
			   "starting with a letter or digit", kind, name, VDI_NAME_MAX);
}

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
		return vdi_err_set(err, VDI_EUSAGE, "empty host URI");
	if (strlen(uri) > 1024)
		return vdi_err_set(err, VDI_EUSAGE, "host URI is too long");
	for (p = uri; *p; p++) {
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '"' || *p == '\'' ||
		    *p == '\\' || *p == '<' || *p == '>' || *p == '`')
			return vdi_err_set(err, VDI_EUSAGE,
					   "invalid host URI '%.80s': white space, quotes or control characters", uri);
	}
	u = xmlParseURI(uri);
	if (!u || !u->scheme) {
		vdi_err_set(err, VDI_EUSAGE, "invalid host URI '%.80s': expected qemu+TRANSPORT://[HOST]/system", uri);
		goto out;
	}
	for (i = 0; uri_schemes[i]; i++)
		if (strcmp(u->scheme, uri_schemes[i]) == 0)
			break;
	if (!uri_schemes[i]) {
		vdi_err_set(err, VDI_EUSAGE, "invalid host URI '%.80s': scheme '%s' is not a QEMU driver URI "
			    "(qemu, qemu+unix, qemu+ssh, qemu+tls, qemu+tcp)", uri, u->scheme);
		goto out;
	}
	if (!u->path || (strcmp(u->path, "/system") != 0 && strcmp(u->path, "/session") != 0)) {
		vdi_err_set(err, VDI_EUSAGE, "invalid host URI '%.80s': path must be /system or /session", uri);
		goto out;
	}
	ret = 0;
out:
	if (u)
		xmlFreeURI(u);
	return ret;
}
