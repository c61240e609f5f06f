/*
 * file.h - files vdi-tools writes: never through a symlink, secrets private.
 *
 * Rule 10 of vdi-tools(7): every file written is opened with O_NOFOLLOW;
 * a file holding a secret (a .vv with a display password) is made under a
 * temporary name with O_CREAT|O_EXCL, mode 0600, then renamed into place,
 * so a file or FIFO planted under the final name in a shared folder never
 * receives the secret and never blocks the writer.
 */
#ifndef VDI_FILE_H
#define VDI_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "err.h"

/*
 * Write data (len bytes) as DIR/NAME, mode 0600, atomically.  An existing
 * DIR/NAME that is not a regular file owned by this user (a symlink, a
 * FIFO, another user's file) is refused with 5 and left alone.
 */
int vdi_file_write_private(const char *dir, const char *name, const char *data, size_t len,
			   struct vdi_err *err);
/* The same with another mode (a metrics file others read: 0644); the checks are the same. */
int vdi_file_write_atomic(const char *dir, const char *name, const char *data, size_t len, mode_t mode,
			  struct vdi_err *err);

/*
 * Take an exclusive lock on path (created 0600 if missing, never through a
 * symlink, refused unless a regular file).  1: locked, *fd holds it (close
 * it to unlock); 0: another process holds it; -1: error.
 */
int vdi_file_lock(const char *path, int *fd, struct vdi_err *err);
/*
 * The same for a lock beside file: FILE.SUFFIX, where FILE is file's real
 * path (every symlink and "..", resolved), so that every name of one VMDB
 * meets the same lock.  With wait, a lock another process holds is waited
 * for (the answer is then 1, or -1), else it is 0 at once.
 */
int vdi_file_lock_beside(const char *file, const char *suffix, bool wait, int *fd, struct vdi_err *err);

/*
 * Read a small regular file whole (a config file): refused when it is not
 * a regular file (/dev/null reads as empty) or is larger than max bytes.  *buf is NUL-terminated and
 * the caller's to free; *len excludes the NUL.
 */
int vdi_file_read_small(const char *path, size_t max, char **buf, size_t *len, struct vdi_err *err);

/* Into buf: the path of name in the folder of path ("/pool/a.qcow2", "a.save" -> "/pool/a.save"). */
void vdi_file_beside(const char *path, const char *name, char *buf, size_t len);

/* VDI_TEST_STOP_AT=STEP kills the process by SIGKILL at a named step (fault tests only). */
void vdi_file_test_stop(const char *step);

/*
 * The last `lines` lines of a log file that hold one of words (any case;
 * NULL: every line; when none does, the last lines) into buf, joined by " | ", with
 * control characters and bytes outside printable ASCII as '?' (a guest
 * writes its console: its text is hostile).  Never blocks on a planted
 * FIFO; only a regular file is read, and only its last 16 KiB.  0, or -1
 * (buf empty) when it cannot be read.
 */
int vdi_file_tail(const char *path, int lines, const char *const *words, char *buf, size_t len);

#endif
