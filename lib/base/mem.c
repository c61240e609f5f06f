/* mem.c - allocations that never fail: out of memory aborts (see mem.h). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mem.h"

void
vdi_oom(void)
{
	static const char msg[] = "vdi-tools: out of memory\n";

	/* write(2), not stdio: stdio may itself need memory. */
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
		/* nothing more can be done */
	}
	abort();
}

void *
vdi_xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);

	if (!p)
		vdi_oom();
	return p;
}

void *
vdi_xrealloc(void *p, size_t size)
{
	void *q = realloc(p, size ? size : 1);

	if (!q)
		vdi_oom();
	return q;
}

void *
vdi_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		vdi_oom();
	return p;
}

char *
vdi_xstrdup(const char *s)
{
	char *p;

	if (!s)
		return NULL;
	p = strdup(s);
	if (!p)
		vdi_oom();
	return p;
}

char *
vdi_xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);

	if (!p)
		vdi_oom();
	return p;
}

void *
vdi_grow(void *p, size_t n, size_t size)
{
	void *t;

	if (n + 1 > (size_t)-1 / size)
		vdi_oom();
	t = realloc(p, (n + 1) * size);
	if (!t)
		vdi_oom();
	return t;
}
