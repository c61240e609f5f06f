/*
 * strv.h - growable arrays of strings, the one way.
 *
 * Ownership is in the name: an array made with vdi_strv_push() holds
 * whatever pointers it is given.  Free it with vdi_strv_free() when it owns
 * its strings (each was allocated for it), or with plain free() when it
 * only borrows them (argv, strings owned elsewhere).  Every struct that
 * holds such an array says which it is.  Out of memory aborts (mem.h).
 */
#ifndef VDI_STRV_H
#define VDI_STRV_H

#include <stdbool.h>
#include <stddef.h>

#include "mem.h"

/* Append s (the pointer itself, not a copy) to the array *v of *n strings. */
void vdi_strv_push(char ***v, size_t *n, char *s);
/* Append a copy of s: for arrays that own their strings. */
void vdi_strv_push_copy(char ***v, size_t *n, const char *s);
/* Free an owning array: its n strings, and the array. */
void vdi_strv_free(char **v, size_t n);
/* Is s one of the n strings of v? */
bool vdi_strv_has(char *const *v, size_t n, const char *s);

#endif
