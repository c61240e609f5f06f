/*
 * mem.h - the one out-of-memory policy of vdi-tools: abort, in one place.
 *
 * These programs can do nothing useful without memory, and an error path
 * for every allocation is an error path nobody tests.  So every
 * allocation in libvdi and cmd/ goes through these helpers, which never
 * return NULL: on failure vdi_oom() writes one line to stderr and calls
 * abort().  That line is the only thing libvdi ever prints.
 */
#ifndef VDI_MEM_H
#define VDI_MEM_H

#include <stddef.h>

void vdi_oom(void) __attribute__((noreturn));

void *vdi_xmalloc(size_t size);
void *vdi_xcalloc(size_t n, size_t size);
void *vdi_xrealloc(void *p, size_t size);
/* s may be NULL: then NULL is returned. */
char *vdi_xstrdup(const char *s);
char *vdi_xstrndup(const char *s, size_t n);
/* realloc(p) to hold n + 1 elements of size bytes (for arrays grown one at a time). */
void *vdi_grow(void *p, size_t n, size_t size);

#endif
