/*
 * strv.h - growable arrays of strings (and of anything), the one way.
 *
 * These programs can do nothing useful without memory: the helpers abort
 * on out-of-memory rather than make every caller handle it.
 */
#ifndef VDI_STRV_H
#define VDI_STRV_H

#include <stddef.h>

/* Append s (not copied) to the array *v of *n strings. */
void vdi_strv_push(char ***v, size_t *n, char *s);
/* Free the n strings of v, and v. */
void vdi_strv_free(char **v, size_t n);
/* realloc(p) to hold n + 1 elements of size bytes; aborts when out of memory. */
void *vdi_grow(void *p, size_t n, size_t size);

#endif
