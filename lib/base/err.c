/* err.c - filling and combining struct vdi_err (see err.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

int
vdi_err_set(struct vdi_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return -1;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -1;
}

int
vdi_err_prefix(struct vdi_err *err, const char *fmt, ...)
{
	char pre[512], old[sizeof(err->msg)];
	va_list ap;

	if (!err)
		return -1;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	/* Truncation keeps the start of the message, which says the most. */
	{
		size_t n = strlen(pre), m = strlen(old), cap = sizeof(err->msg) - 1, k = 0;
		if (n > cap - 2)
			n = cap - 2;
		memcpy(err->msg, pre, n);
		k = n;
		err->msg[k++] = ':';
		err->msg[k++] = ' ';
		if (m > cap - k)
			m = cap - k;
		memcpy(err->msg + k, old, m);
		err->msg[k + m] = '\0';
	}
	return -1;
}

int
vdi_err_object(struct vdi_err *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err->object, sizeof(err->object), fmt, ap);
	va_end(ap);
	return -1;
}

int
vdi_err_copy(struct vdi_err *dst, const struct vdi_err *src)
{
	char object[sizeof(dst->object)];

	if (!dst || !src || dst == src)
		return -1;
	/* The object is the caller's unless src names one. */
	memcpy(object, dst->object, sizeof(object));
	*dst = *src;
	if (!dst->object[0])
		memcpy(dst->object, object, sizeof(object));
	return -1;
}

void
vdi_err_clear(struct vdi_err *err)
{
	if (!err)
		return;
	err->code = VDI_OK;
	err->msg[0] = '\0';
}

void
vdi_err_reset(struct vdi_err *err)
{
	vdi_err_clear(err);
	if (err)
		err->object[0] = '\0';
}

/*
 * Rank codes for a batch run (several users, several hosts): a plain
 * failure outranks the specific ones, and "retry later" ranks lowest,
 * so a script only retries when retrying could help.
 */
static int
rank(int code)
{
	switch (code) {
	case VDI_OK: return 0;
	case VDI_ETEMP: return 1;
	case VDI_ECONFLICT: return 2;
	case VDI_ENOHOST: return 3;
	case VDI_ENOTFOUND: return 4;
	case VDI_EUSAGE: return 5;
	default: return 6;
	}
}

int
vdi_code_worst(int a, int b)
{
	return rank(a) >= rank(b) ? a : b;
}
