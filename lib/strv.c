/* strv.c - growable arrays (see strv.h). */
#include <stdlib.h>

#include "strv.h"

void *
vdi_grow(void *p, size_t n, size_t size)
{
	void *t = realloc(p, (n + 1) * size);

	if (!t)
		abort();
	return t;
}

void
vdi_strv_push(char ***v, size_t *n, char *s)
{
	*v = vdi_grow(*v, *n, sizeof(**v));
	(*v)[(*n)++] = s;
}

void
vdi_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}
