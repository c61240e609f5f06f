/* err.c - filling and combining struct vdi_err (see err.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

static const struct {
	const char *name;
	int code;
} reasons[VDI_R_MAX] = {
	[VDI_R_NONE] = { "ok", VDI_OK },
	[VDI_R_FAIL] = { "failed", VDI_EFAIL },
	[VDI_R_USAGE] = { "usage", VDI_EUSAGE },
	[VDI_R_NOTFOUND] = { "not-found", VDI_ENOTFOUND },
	[VDI_R_NOHOST] = { "no-capacity", VDI_ENOHOST },
	[VDI_R_CONFLICT] = { "conflict", VDI_ECONFLICT },
	[VDI_R_TEMP] = { "temporary", VDI_ETEMP },
	[VDI_R_IO] = { "io", VDI_EFAIL },
	[VDI_R_NO_USER] = { "no-user", VDI_ENOTFOUND },
	[VDI_R_NO_MASTER] = { "no-master", VDI_ENOTFOUND },
	[VDI_R_NEVER_FITS] = { "never-fits", VDI_ENOHOST },
	[VDI_R_PREPARING] = { "preparing", VDI_ECONFLICT },
	[VDI_R_PREPARE_FAILED] = { "prepare-failed", VDI_ECONFLICT },
	[VDI_R_EXISTS] = { "exists", VDI_ECONFLICT },
	[VDI_R_BUSY] = { "busy", VDI_ECONFLICT },
	[VDI_R_CLAIM_LOST] = { "claim-lost", VDI_ECONFLICT },
	[VDI_R_TOKEN_EXPIRED] = { "token-expired", VDI_ECONFLICT },
	[VDI_R_TOKEN_SPENT] = { "token-spent", VDI_ECONFLICT },
	[VDI_R_HOST_DOWN] = { "host-down", VDI_ETEMP },
	[VDI_R_DB_BUSY] = { "db-busy", VDI_ETEMP },
	[VDI_R_DB_DOWN] = { "db-down", VDI_ETEMP },
	[VDI_R_NOT_ENTITLED] = { "not-entitled", VDI_ECONFLICT },
	[VDI_R_GROUP_FULL] = { "group-limit", VDI_ENOHOST },
	[VDI_R_LIMIT] = { "limit", VDI_ECONFLICT },
	[VDI_R_UPDATING] = { "updating", VDI_ETEMP },
};

int
vdi_reason_code(enum vdi_reason why)
{
	if ((unsigned)why >= VDI_R_MAX || !reasons[why].name)
		return VDI_EFAIL;
	return reasons[why].code;
}

const char *
vdi_reason_name(enum vdi_reason why)
{
	if ((unsigned)why >= VDI_R_MAX || !reasons[why].name)
		return "failed";
	return reasons[why].name;
}

int
vdi_err_set(struct vdi_err *err, enum vdi_reason why, const char *fmt, ...)
{
	va_list ap;

	err->reason = why;
	err->code = vdi_reason_code(why);
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

	va_start(ap, fmt);
	vsnprintf(err->object, sizeof(err->object), fmt, ap);
	va_end(ap);
	return -1;
}

int
vdi_err_copy(struct vdi_err *dst, const struct vdi_err *src)
{
	char object[sizeof(dst->object)];

	if (dst == src)
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
	err->code = VDI_OK;
	err->reason = VDI_R_NONE;
	err->msg[0] = '\0';
}

void
vdi_err_reset(struct vdi_err *err)
{
	vdi_err_clear(err);
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
