/*
 * form.h - the body of an HTML form as a browser sends it
 * (application/x-www-form-urlencoded): name=value pairs joined by '&',
 * values percent-encoded, '+' for a space.
 *
 * vdi_form_parse() decodes the body in place and points the fields it
 * knows at their values: the strings belong to the caller's body, which
 * must outlive the form.  It refuses, with VDI_R_USAGE and a message a
 * user may read, a field it does not know, a field given twice, a pair
 * with no '=', a bad or partial %XX escape, and any control character or
 * NUL once decoded, so no value carries a line break into a log or a page.
 */
#ifndef VDI_FORM_H
#define VDI_FORM_H

#include "err.h"

struct vdi_form {
	char *action, *token, *master, *mem, *disk, *home; /* NULL: not sent */
};

/* Parse body (changed in place) into f.  -1 with err when the form is not one vm-connect sends. */
int vdi_form_parse(char *body, struct vdi_form *f, struct vdi_err *err);

#endif
