/* proc.c - running a helper program with a time limit; this process as a claim's owner (see proc.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "proc.h"

extern char **environ;

/* The output's last 300 bytes on one line: what a failing agent said last. */
static void
tail_line(const char *out, size_t n, char *buf, size_t len)
{
	size_t from = n > 300 ? n - 300 : 0, k = 0;

	while (n > from && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		n--;
	for (size_t i = from; i < n && k + 1 < len; i++) {
		unsigned char c = (unsigned char)out[i];
		buf[k++] = c == '\n' || c == '\r' ? '|' : c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	buf[k] = '\0';
}

int
vdi_proc_run(char *const argv[], int64_t timeout_ms, struct vdi_err *err)
{
	posix_spawn_file_actions_t fa;
	int pipefd[2] = { -1, -1 }, status = 0, ret = -1, rc;
	char out[4096], said[320];
	size_t n = 0;
	int64_t until = vdi_clock_mono_ms() + timeout_ms;
	pid_t pid = -1;
	bool timed_out = false;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return vdi_err_set(err, VDI_R_FAIL, "%s: cannot make a pipe: %s", argv[0], strerror(errno));
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
	rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	if (rc != 0) {
		vdi_err_set(err, VDI_R_FAIL, "cannot run %s: %s", argv[0], strerror(rc));
		goto out;
	}
	/* Read until it closes its output (exits), or the time is up. */
	for (;;) {
		struct pollfd p = { .fd = pipefd[0], .events = POLLIN };
		int64_t left = until - vdi_clock_mono_ms();
		char buf[1024];
		ssize_t r;

		if (left <= 0) {
			timed_out = true;
			break;
		}
		if (poll(&p, 1, left > 1000 ? 1000 : (int)left) < 0 && errno != EINTR)
			break;
		if (!(p.revents & (POLLIN | POLLHUP)))
			continue;
		r = read(pipefd[0], buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		/* Keep the last bytes (buf is smaller than out): a chatty agent's end is what matters. */
		if (n + (size_t)r > sizeof(out)) {
			size_t drop = n + (size_t)r - sizeof(out);
			memmove(out, out + drop, n - drop);
			n -= drop;
		}
		memcpy(out + n, buf, (size_t)r);
		n += (size_t)r;
	}
	if (timed_out)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	tail_line(out, n, said, sizeof(said));
	if (timed_out)
		vdi_err_set(err, VDI_R_TEMP, "%s did not finish within %lld s; it was killed", argv[0],
			    (long long)(timeout_ms / 1000));
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		ret = 0;
	else if (WIFEXITED(status))
		vdi_err_set(err, VDI_R_FAIL, "%s exited %d%s%s", argv[0], WEXITSTATUS(status), said[0] ? ": " : "",
			    said);
	else
		vdi_err_set(err, VDI_R_FAIL, "%s was killed by signal %d%s%s", argv[0],
			    WIFSIGNALED(status) ? WTERMSIG(status) : 0, said[0] ? ": " : "", said);
out:
	close(pipefd[0]);
	return ret;
}

/* The start time of process pid, in clock ticks since boot (field 22 of /proc/PID/stat); 0 if unknown. */
static unsigned long long
start_time(long pid)
{
	char path[64], buf[1024], *p;
	unsigned long long t = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* After the command's ")" (it may hold spaces and parentheses): state is field 3; start time 22. */
	if (!(p = strrchr(buf, ')')))
		return 0;
	if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu", &t) != 1)
		return 0;
	return t;
}

/* "HOST/BOOT_ID" of this machine, into buf. */
static void
machine(char *buf, size_t len)
{
	const char *test = getenv("VDI_TEST_HOST");
	char host[256] = "localhost", boot[64] = "";
	int fd;

	if (test && *test) {
		snprintf(buf, len, "%s", test);
		return;
	}
	gethostname(host, sizeof(host) - 1);
	if ((fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC)) >= 0) {
		ssize_t n = read(fd, boot, sizeof(boot) - 1);
		close(fd);
		boot[n > 0 ? n : 0] = '\0';
		boot[strcspn(boot, "\n")] = '\0';
	}
	/* A '/' in a host name would break the token apart. */
	for (char *p = host; *p; p++)
		if (*p == '/')
			*p = '_';
	snprintf(buf, len, "%s/%s", host, boot);
}

static char owner_token[400];

static void
make_owner(void)
{
	char m[320];

	machine(m, sizeof(m));
	snprintf(owner_token, sizeof(owner_token), "%s/%ld/%llu", m, (long)getpid(), start_time((long)getpid()));
}

const char *
vdi_proc_owner(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, make_owner);
	return owner_token;
}

int
vdi_proc_owner_alive(const char *owner)
{
	char m[320], mine[320];
	const char *p = strrchr(owner, '/'), *q;
	unsigned long long start;
	long pid;

	/* HOST/BOOT/PID/START: the machine is everything before the last two parts. */
	if (!p || p == owner)
		return -1;
	for (q = p - 1; q > owner && *q != '/'; q--)
		;
	if (q == owner || (size_t)(q - owner) >= sizeof(m))
		return -1;
	memcpy(m, owner, (size_t)(q - owner));
	m[q - owner] = '\0';
	machine(mine, sizeof(mine));
	if (strcmp(m, mine) != 0)
		return -1;
	if (sscanf(q + 1, "%ld/%llu", &pid, &start) != 2 || pid <= 0)
		return 0;
	if (kill((pid_t)pid, 0) < 0 && errno != EPERM)
		return 0;
	return start == 0 || start_time(pid) == start;
}
