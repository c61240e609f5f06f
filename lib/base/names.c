/* names.c - the one name pattern (see names.h; URIs are checked in uri.c). */
#include <string.h>

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
		return vdi_err_set(err, VDI_R_USAGE, "empty %s name", kind);
	return vdi_err_set(err, VDI_R_USAGE,
			   "invalid %s name '%.80s': use 1-%d letters, digits, '.', '_' or '-', "
			   "starting with a letter or digit", kind, name, VDI_NAME_MAX);
}
