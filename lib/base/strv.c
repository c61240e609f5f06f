/* strv.c - growable arrays of strings (see strv.h). */
#include <stdlib.h>
#include <string.h>

#include "strv.h"

void
vdi_strv_push(char ***v, size_t *n, char *s)
{
	*v = vdi_grow(*v, *n, sizeof(**v));
	(*v)[(*n)++] = s;
}

void
vdi_strv_push_copy(char ***v, size_t *n, const char *s)
{
	vdi_strv_push(v, n, vdi_xstrdup(s));
}

void
vdi_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

bool
vdi_strv_has(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}
