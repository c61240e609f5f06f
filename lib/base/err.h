/*
 * err.h - the error struct libvdi fills and a command prints once.
 *
 * Every libvdi function that can fail takes a `struct vdi_err *` as its
 * last argument, returns -1 (or NULL) on failure and leaves one message
 * and one exit code in it.  The library never prints and never exits;
 * the command maps err->code straight to its exit status.
 *
 * The contract, everywhere: err may be NULL (the caller does not care why,
 * as in undo paths); every function that fills it goes through
 * vdi_err_set() or copies a whole struct only after checking for NULL.
 *
 * err->object names what failed in a batch (a user, a host, a master),
 * set by the workflow that knows it; the command prints it in front of the
 * message.  Messages never need to be searched for a name.
 */
#ifndef VDI_ERR_H
#define VDI_ERR_H

/* Exit codes, the same in every program (see DESIGN.md and the man pages). */
enum vdi_code {
	VDI_OK = 0,
	VDI_EFAIL = 1,     /* failure */
	VDI_EUSAGE = 2,    /* bad usage, bad value */
	VDI_ENOTFOUND = 3, /* no such object */
	VDI_ENOHOST = 4,   /* no eligible host, no capacity */
	VDI_ECONFLICT = 5, /* exists already, busy */
	VDI_ETEMP = 75,    /* temporary: host unreachable, VMDB busy */
};

struct vdi_err {
	int code;
	char msg[1024];
	char object[96]; /* "" or what the error is about, for "OBJECT: msg" */
};

/* Fill err (if not NULL) and return -1, so callers can `return vdi_err_set(...)`. */
int vdi_err_set(struct vdi_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefix the message already in err: "what: old message". Returns -1. */
int vdi_err_prefix(struct vdi_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Name the object the error is about (kept by later vdi_err_set calls). Returns -1. */
int vdi_err_object(struct vdi_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Copy src into dst (if dst is not NULL), keeping dst's object unless src names one. Returns -1. */
int vdi_err_copy(struct vdi_err *dst, const struct vdi_err *src);

/* Forget the error (code and message); the object it was about stays, as the work on it goes on. */
void vdi_err_clear(struct vdi_err *err);
/* Forget everything, the object too: before the next object of a batch. */
void vdi_err_reset(struct vdi_err *err);

/* The worse of two exit codes for a batch: failures beat partial results. */
int vdi_code_worst(int a, int b);

#endif
