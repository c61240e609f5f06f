/* form.c - decoding an HTML form's body (see form.h). */
#include <string.h>

#include "form.h"

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode s in place: '+' is a space, %XX a byte.  -1 on a bad escape or a control character. */
static int
decode(char *s)
{
	char *o = s;

	for (; *s; s++, o++) {
		if (*s == '+') {
			*o = ' ';
		} else if (*s == '%') {
			int hi = hexval(s[1]), lo = hi < 0 ? -1 : hexval(s[2]);
			if (hi < 0 || lo < 0)
				return -1;
			*o = (char)(hi << 4 | lo);
			s += 2;
		} else {
			*o = *s;
		}
		if ((unsigned char)*o < 0x20 || *o == 0x7f)
			return -1; /* no control characters, no NUL */
	}
	*o = '\0';
	return 0;
}

int
vdi_form_parse(char *body, struct vdi_form *f, struct vdi_err *err)
{
	memset(f, 0, sizeof(*f));
	for (char *save = NULL, *kv = strtok_r(body, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
		char *v = strchr(kv, '='), **slot;

		if (!v || decode(v + 1) < 0)
			return vdi_err_set(err, VDI_R_USAGE, "a form field is malformed");
		*v++ = '\0';
		slot = strcmp(kv, "action") == 0 ? &f->action : strcmp(kv, "token") == 0 ? &f->token :
		       strcmp(kv, "master") == 0 ? &f->master : strcmp(kv, "mem") == 0 ? &f->mem :
		       strcmp(kv, "disk") == 0 ? &f->disk : strcmp(kv, "home") == 0 ? &f->home : NULL;
		if (!slot)
			return vdi_err_set(err, VDI_R_USAGE, "the form has a field it should not have");
		if (*slot)
			return vdi_err_set(err, VDI_R_USAGE, "a form field is given twice");
		*slot = v;
	}
	if (!f->action)
		return vdi_err_set(err, VDI_R_USAGE, "the form has no action");
	return 0;
}
