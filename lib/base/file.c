/* file.c - writing files safely: no symlinks followed, secrets private (see file.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "file.h"
#include "mem.h"

int
vdi_file_write_private(const char *dir, const char *name, const char *data, size_t len, struct vdi_err *err)
{
	return vdi_file_write_atomic(dir, name, data, len, 0600, err);
}

int
vdi_file_write_atomic(const char *dir, const char *name, const char *data, size_t len, mode_t mode,
		      struct vdi_err *err)
{
	char path[4096], tmp[4096];
	struct stat sb;
	size_t off = 0;
	int fd = -1, ret = -1;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path) ||
	    snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, name) >= (int)sizeof(tmp))
		return vdi_err_set(err, VDI_R_USAGE, "path too long: %s/%s", dir, name);
	if (lstat(path, &sb) == 0 && (!S_ISREG(sb.st_mode) || sb.st_uid != geteuid()))
		return vdi_err_set(err, VDI_R_CONFLICT, "%s exists and is not a regular file of ours "
				   "(%s, owner uid %u); not written", path,
				   S_ISLNK(sb.st_mode) ? "a symlink" : S_ISFIFO(sb.st_mode) ? "a FIFO" :
				   S_ISREG(sb.st_mode) ? "a file" : "not a file", (unsigned)sb.st_uid);
	/* mkostemp: O_CREAT|O_EXCL (never through a symlink), mode 0600, a name nobody can guess. */
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return vdi_err_set(err, VDI_R_FAIL, "cannot write in %s: %s", dir, strerror(errno));
	if (mode != 0600 && fchmod(fd, mode) < 0) {
		vdi_err_set(err, VDI_R_FAIL, "cannot set the mode of %s: %s", tmp, strerror(errno));
		goto out;
	}
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			vdi_err_set(err, VDI_R_FAIL, "cannot write %s: %s", tmp, strerror(errno));
			goto out;
		}
		off += (size_t)n;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		fd = -1;
		vdi_err_set(err, VDI_R_FAIL, "cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	/* rename() replaces the name, never writes through what it names. */
	if (rename(tmp, path) < 0) {
		vdi_err_set(err, VDI_R_FAIL, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	if (ret < 0)
		unlink(tmp);
	return ret;
}

int
vdi_file_lock(const char *path, int *fd, struct vdi_err *err)
{
	struct stat sb;

	*fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
	if (*fd < 0)
		return vdi_err_set(err, VDI_R_FAIL, "cannot open lock file %s: %s%s", path, strerror(errno),
				   errno == ELOOP ? " (a symlink: refused)" : "");
	if (fstat(*fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(*fd);
		*fd = -1;
		return vdi_err_set(err, VDI_R_FAIL, "lock file %s is not a regular file; refused", path);
	}
	if (flock(*fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		close(*fd);
		*fd = -1;
		if (e == EWOULDBLOCK)
			return 0;
		return vdi_err_set(err, VDI_R_FAIL, "cannot lock %s: %s", path, strerror(e));
	}
	return 1;
}

int
vdi_file_lock_beside(const char *file, const char *suffix, bool wait, int *fd, struct vdi_err *err)
{
	char *real = realpath(file, NULL), path[4096];
	int n, rc;

	*fd = -1;
	if (!real)
		return vdi_err_set(err, errno == ENOENT ? VDI_R_NOTFOUND : VDI_R_FAIL, "cannot resolve %s: %s", file,
				   strerror(errno));
	n = snprintf(path, sizeof(path), "%s%s", real, suffix);
	free(real);
	if (n < 0 || (size_t)n >= sizeof(path))
		return vdi_err_set(err, VDI_R_FAIL, "%s: path too long for its lock", file);
	rc = vdi_file_lock(path, fd, err);
	if (rc != 0 || !wait)
		return rc;
	/* Held by another process: wait for it (a file vdi_file_lock just checked). */
	*fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (*fd < 0)
		return vdi_err_set(err, VDI_R_FAIL, "cannot open lock file %s: %s", path, strerror(errno));
	while (flock(*fd, LOCK_EX) < 0) {
		if (errno == EINTR)
			continue;
		rc = errno;
		close(*fd);
		*fd = -1;
		return vdi_err_set(err, VDI_R_FAIL, "cannot lock %s: %s", path, strerror(rc));
	}
	return 1;
}

int
vdi_file_read_small(const char *path, size_t max, char **buf, size_t *len, struct vdi_err *err)
{
	struct stat sb;
	size_t off = 0;
	bool failed = false;
	int fd;

	*buf = NULL;
	*len = 0;
	/* O_NONBLOCK: a FIFO planted as the file must not block the open. */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return vdi_err_set(err, errno == ENOENT ? VDI_R_NOTFOUND : VDI_R_FAIL, "cannot read %s: %s",
				   path, strerror(errno));
	if (fstat(fd, &sb) == 0 && S_ISCHR(sb.st_mode) && sb.st_rdev == makedev(1, 3)) {
		/* /dev/null: the usual way to say "no such file here", read as empty. */
		close(fd);
		*buf = vdi_xstrdup("");
		return 0;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return vdi_err_set(err, VDI_R_USAGE, "%s is not a regular file", path);
	}
	if ((size_t)sb.st_size > max) {
		close(fd);
		return vdi_err_set(err, VDI_R_USAGE, "%s is too large (%lld bytes; at most %zu)", path,
				   (long long)sb.st_size, max);
	}
	*buf = vdi_xmalloc(max + 1);
	for (;;) {
		ssize_t n = read(fd, *buf + off, max + 1 - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			failed = vdi_err_set(err, VDI_R_FAIL, "cannot read %s: %s", path, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		off += (size_t)n;
		if (off > max) {
			failed = vdi_err_set(err, VDI_R_USAGE, "%s grew past %zu bytes while read", path, max);
			break;
		}
	}
	close(fd);
	if (failed) {
		free(*buf);
		*buf = NULL;
		return -1;
	}
	(*buf)[off] = '\0';
	*len = off;
	return 0;
}

void
vdi_file_test_stop(const char *step)
{
	const char *s = getenv("VDI_TEST_STOP_AT");

	if (s && strcmp(s, step) == 0)
		raise(SIGKILL);
}

/* Does line [p, e) hold one of words (any case)? */
static bool
line_has(const char *p, const char *e, const char *const *words)
{
	for (; *words; words++) {
		size_t n = strlen(*words);
		for (const char *q = p; q + n <= e; q++)
			if (strncasecmp(q, *words, n) == 0)
				return true;
	}
	return false;
}

int
vdi_file_tail(const char *path, int lines, const char *const *words, char *buf, size_t len)
{
	char raw[16384];
	struct stat sb;
	ssize_t got;
	off_t from;
	size_t o = 0, k = 0, first;
	int fd, ret = -1;
	char *starts[64], *p, *end;

	buf[0] = '\0';
	if (len == 0 || lines <= 0 || (fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return -1;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode))
		goto out;
	from = sb.st_size > (off_t)sizeof(raw) ? sb.st_size - (off_t)sizeof(raw) : 0;
	if ((got = pread(fd, raw, sizeof(raw), from)) < 0)
		goto out;
	if (lines > 64)
		lines = 64;
	/* The lines that are not blank, the last `lines` of them in a ring (the window's cut first line dropped). */
	end = raw + got;
again:
	p = raw;
	if (from > 0)
		p = (p = memchr(raw, '\n', (size_t)got)) ? p + 1 : end;
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *e = nl ? nl : end;
		if (e > p && !(e == p + 1 && *p == '\r') && (!words || line_has(p, e, words)))
			starts[k++ % (size_t)lines] = p;
		p = e + 1;
	}
	if (k == 0 && words) {
		words = NULL; /* no line has the words: the last lines, whatever they say */
		goto again;
	}
	first = k > (size_t)lines ? k - (size_t)lines : 0;
	for (size_t i = first; i < k; i++) {
		char *q = starts[i % (size_t)lines];
		if (o > 0 && o + 3 < len) {
			memcpy(buf + o, " | ", 3);
			o += 3;
		}
		for (; q < end && *q != '\n' && o + 1 < len; q++) {
			unsigned char ch = (unsigned char)*q;
			if (ch != '\r')
				buf[o++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
		}
	}
	buf[o] = '\0';
	ret = 0;
out:
	close(fd);
	return ret;
}

void
vdi_file_beside(const char *path, const char *name, char *buf, size_t len)
{
	const char *slash = strrchr(path, '/');

	snprintf(buf, len, "%.*s%s", slash ? (int)(slash - path + 1) : 0, path, name);
}
