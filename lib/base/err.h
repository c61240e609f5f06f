/*
 * err.h - the error struct libvdi fills and a command prints once.
 *
 * Every libvdi function that can fail takes a `struct vdi_err *` as its
 * last argument, returns -1 (or NULL) on failure and leaves one message
 * and one exit code in it.  The library never prints and never exits;
 * the command maps err->code straight to its exit status.
 *
 * The contract, everywhere: err is never NULL.  A caller that does not
 * care why (an undo path) passes a scratch one, VDI_ERR_SCRATCH, so a
 * function may always read what a callee left in err.  The functions below
 * are declared nonnull, and UBSan (make SANITIZE=1) stops any NULL that
 * reaches them at run time.
 *
 * err->reason says why, for a program to act on (an exit code, an HTTP
 * status, a page's words): it is set with the message, and err->code, the
 * exit code, follows from it (vdi_reason_code).  No program tells errors
 * apart by their text.  The coarse reasons have the values of the exit
 * codes they mean, so VDI_EFAIL and VDI_R_FAIL are one thing.
 *
 * err->object names what failed in a batch (a user, a host, a master),
 * set by the workflow that knows it; the command prints it in front of the
 * message.  Messages never need to be searched for a name.
 *
 * Ownership: the caller owns the struct (usually on its stack); nothing in
 * it is allocated.
 */
#ifndef VDI_ERR_H
#define VDI_ERR_H

/* Exit codes, the same in every program (see vdi-tools(7) and the man pages). */
enum vdi_code {
	VDI_OK = 0,
	VDI_EFAIL = 1,     /* failure */
	VDI_EUSAGE = 2,    /* bad usage, bad value */
	VDI_ENOTFOUND = 3, /* no such object */
	VDI_ENOHOST = 4,   /* no eligible host, no capacity */
	VDI_ECONFLICT = 5, /* exists already, busy */
	VDI_ETEMP = 75,    /* temporary: host unreachable, VMDB busy */
};

/*
 * Why an error happened.  The first seven are the exit codes themselves
 * (a failure with no finer reason); the finer ones map to one of them.
 */
enum vdi_reason {
	VDI_R_NONE = 0,
	VDI_R_FAIL = VDI_EFAIL,         /* 1: failed, no finer reason */
	VDI_R_USAGE = VDI_EUSAGE,       /* 2: bad usage or value */
	VDI_R_NOTFOUND = VDI_ENOTFOUND, /* 3: no such object */
	VDI_R_NOHOST = VDI_ENOHOST,     /* 4: no eligible host, no capacity now */
	VDI_R_CONFLICT = VDI_ECONFLICT, /* 5: exists, busy, in the wrong state */
	VDI_R_TEMP = VDI_ETEMP,         /* 75: temporary, worth retrying */
	VDI_R_IO = 100,        /* 1: a read or write failed (disk full, I/O error) */
	VDI_R_NO_USER,         /* 3: no such user VM */
	VDI_R_NO_MASTER,       /* 3: no such master */
	VDI_R_NEVER_FITS,      /* 4: no host could ever hold it, as sized */
	VDI_R_PREPARING,       /* 5: the user VM is being prepared (its first boot) */
	VDI_R_PREPARE_FAILED,  /* 5: the user VM's first boot failed (it waits for vm-copy again) */
	VDI_R_EXISTS,          /* 5: made already */
	VDI_R_BUSY,            /* 5: another process works on it now */
	VDI_R_CLAIM_LOST,      /* 5: another process took over our claim */
	VDI_R_TOKEN_EXPIRED,   /* 5: a form or ticket token past its time */
	VDI_R_TOKEN_SPENT,     /* 5: a token used before */
	VDI_R_HOST_DOWN,       /* 75: a host does not answer */
	VDI_R_DB_BUSY,         /* 75: the VMDB stayed locked past the busy timeout */
	VDI_R_DB_DOWN,         /* 75: the VMDB's server cannot be reached, or went away */
	VDI_R_NOT_ENTITLED,    /* 5: none of the user's groups may use that master (vm-group) */
	VDI_R_GROUP_FULL,      /* 4: the user's groups hold all the sessions or memory they may, now */
	VDI_R_LIMIT,           /* 5: a per-user limit is reached (console_per_user) */
	VDI_R_UPDATING,        /* 75: the user VM waits for, or is in, its update to a new master */
	VDI_R_MAX
};

struct vdi_err {
	int code;                /* the exit code, from reason */
	enum vdi_reason reason;  /* why */
	char msg[1024];
	char object[96]; /* "" or what the error is about, for "OBJECT: msg" */
};

/* A scratch err for a caller that does not care why; it lives in the enclosing block. */
#define VDI_ERR_SCRATCH (&(struct vdi_err){ 0 })

/* Fill err with a reason and a message and return -1, so callers can `return vdi_err_set(...)`. */
int vdi_err_set(struct vdi_err *err, enum vdi_reason why, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), nonnull(1)));

/* Prefix the message already in err: "what: old message". Returns -1. */
int vdi_err_prefix(struct vdi_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), nonnull(1)));

/* Name the object the error is about (kept by later vdi_err_set calls). Returns -1. */
int vdi_err_object(struct vdi_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), nonnull(1)));

/* Copy src into dst, keeping dst's object unless src names one. Returns -1. */
int vdi_err_copy(struct vdi_err *dst, const struct vdi_err *src) __attribute__((nonnull));

/* Forget the error (reason and message); the object it was about stays, as the work on it goes on. */
void vdi_err_clear(struct vdi_err *err) __attribute__((nonnull));
/* Forget everything, the object too: before the next object of a batch. */
void vdi_err_reset(struct vdi_err *err) __attribute__((nonnull));

/* The exit code a reason means. */
int vdi_reason_code(enum vdi_reason why);
/* A reason's stable name ("no-capacity"), for logs and JSON; never translated. */
const char *vdi_reason_name(enum vdi_reason why);

/* The worse of two exit codes for a batch: failures beat partial results. */
int vdi_code_worst(int a, int b);

#endif
