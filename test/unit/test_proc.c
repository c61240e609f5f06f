/* test_proc.c - running a helper program (lib/base/proc.c): exit codes, output, signals, time limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc.h"

static int
sh(const char *script, int64_t timeout_ms, struct vdi_err *err)
{
	char *argv[] = { "/bin/sh", "-c", (char *)script, NULL };

	vdi_err_reset(err);
	return vdi_proc_run(argv, timeout_ms, err);
}

static void
test_exit_codes(void **state)
{
	struct vdi_err err = { 0 };

	(void)state;
	assert_int_equal(sh("echo fine; exit 0", 5000, &err), 0);
	assert_int_equal(err.code, 0);
	assert_int_equal(sh("echo first; printf 'power off:\\nBMC timed out\\n' >&2; exit 3", 5000, &err), -1);
	assert_int_equal(err.code, VDI_EFAIL);
	/* One line, the last words kept, control characters gone. */
	assert_non_null(strstr(err.msg, "exited 3: first|power off:|BMC timed out"));
	assert_null(strchr(err.msg, '\n'));
	assert_int_equal(sh("kill -9 $$", 5000, &err), -1);
	assert_non_null(strstr(err.msg, "killed by signal 9"));
	/* A lot of output: its end is what is kept. */
	assert_int_equal(sh("i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done; exit 1", 5000, &err), -1);
	assert_non_null(strstr(err.msg, "line 2999"));
}

static void
test_not_run(void **state)
{
	char *argv[] = { "/nonexistent/fence", "h1", NULL };
	struct vdi_err err = { 0 };

	(void)state;
	assert_int_equal(vdi_proc_run(argv, 1000, &err), -1);
	assert_int_equal(err.code, VDI_EFAIL);
	assert_non_null(strstr(err.msg, "/nonexistent/fence"));
}

static void
test_time_limit(void **state)
{
	struct vdi_err err = { 0 };

	(void)state;
	/* Past its limit it is killed: the call returns without waiting out its 30 s. */
	assert_int_equal(sh("exec sleep 30", 300, &err), -1);
	assert_int_equal(err.code, VDI_ETEMP);
	assert_non_null(strstr(err.msg, "did not finish within 0 s; it was killed"));
}

/* A claim's owner token: this process is alive, a pid used again is not, another machine cannot tell. */
static void
test_owner(void **state)
{
	char buf[512], machine[400];
	const char *me = vdi_proc_owner();
	long pid;
	unsigned long long start;

	(void)state;
	assert_ptr_equal(me, vdi_proc_owner()); /* made once */
	assert_int_equal(vdi_proc_owner_alive(me), 1);
	/* HOST/BOOT/PID/START */
	snprintf(machine, sizeof(machine), "%s", me);
	*strrchr(machine, '/') = '\0';
	*strrchr(machine, '/') = '\0';
	assert_int_equal(sscanf(me + strlen(machine) + 1, "%ld/%llu", &pid, &start), 2);
	assert_int_equal(pid, (long)getpid());
	/* The same pid with another start time: the pid was used again; its owner is gone. */
	snprintf(buf, sizeof(buf), "%s/%ld/%llu", machine, pid, start + 1);
	assert_int_equal(vdi_proc_owner_alive(buf), 0);
	/* No such process on this machine. */
	snprintf(buf, sizeof(buf), "%s/%d/1", machine, 0x7ffffff0);
	assert_int_equal(vdi_proc_owner_alive(buf), 0);
	/* Another machine, or this one after a reboot: only a lease can tell. */
	assert_int_equal(vdi_proc_owner_alive("elsewhere/0000/1/1"), -1);
	snprintf(buf, sizeof(buf), "%s-x/%ld/%llu", machine, pid, start);
	assert_int_equal(vdi_proc_owner_alive(buf), -1);
	assert_int_equal(vdi_proc_owner_alive("garbage"), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exit_codes),
		cmocka_unit_test(test_not_run),
		cmocka_unit_test(test_time_limit),
		cmocka_unit_test(test_owner),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
