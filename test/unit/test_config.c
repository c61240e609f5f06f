/* test_config.c - unit tests of settings: defaults, file, environment (lib/base/config.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static char path[64];

static int
setup(void **state)
{
	int fd;

	(void)state;
	strcpy(path, "/tmp/vdi-test-conf.XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	close(fd);
	setenv("VDI_CONFIG", path, 1);
	unsetenv("VDI_DB");
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	unlink(path);
	return 0;
}

static void
write_conf(const char *text)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void
test_defaults(void **state)
{
	struct vdi_config c;
	struct vdi_err err = { 0 };

	(void)state;
	write_conf("");
	assert_int_equal(vdi_config_load(&c, &err), 0);
	assert_string_equal(c.db, VDI_DB_DEFAULT);
	assert_int_equal(c.poll_timeout, 5000);
	assert_string_equal(c.pool, "vdi");
	assert_string_equal(c.policy, "least-sessions");
	assert_int_equal(c.image_max_size, 64LL << 30);
	vdi_config_clear(&c);
}

static void
test_file_then_env(void **state)
{
	struct vdi_config c;
	struct vdi_err err = { 0 };

	(void)state;
	write_conf("# site settings\n  db = /srv/vdi/vdi.db  \npoll_timeout=2s\npolicy = \"least-load\"\n\n");
	assert_int_equal(vdi_config_load(&c, &err), 0);
	assert_string_equal(c.db, "/srv/vdi/vdi.db");
	assert_int_equal(c.poll_timeout, 2000);
	assert_string_equal(c.policy, "least-load");
	vdi_config_clear(&c);
	setenv("VDI_DB", "/env/vdi.db", 1);
	assert_int_equal(vdi_config_load(&c, &err), 0);
	assert_string_equal(c.db, "/env/vdi.db");
	unsetenv("VDI_DB");
	vdi_config_clear(&c);
}

static void
test_file_errors(void **state)
{
	struct vdi_config c;
	struct vdi_err err = { 0 };
	char want[128];

	(void)state;
	write_conf("pool = vdi\nnonsense\n");
	assert_int_equal(vdi_config_load(&c, &err), -1);
	snprintf(want, sizeof(want), "%s:2: expected 'key = value'", path);
	assert_string_equal(err.msg, want);
	assert_int_equal(err.code, VDI_EUSAGE);
	vdi_config_clear(&c);
	write_conf("pool = ../x\n");
	assert_int_equal(vdi_config_load(&c, &err), -1);
	assert_non_null(strstr(err.msg, ":1: invalid pool name"));
	vdi_config_clear(&c);
	write_conf("image_max_size = lots\n");
	assert_int_equal(vdi_config_load(&c, &err), -1);
	assert_non_null(strstr(err.msg, "image_max_size: invalid size 'lots'"));
	vdi_config_clear(&c);
}

/* The desktop settings: defaults, good values, and each bad one refused with its line. */
static void
test_desktop_settings(void **state)
{
	static const char *const bad[][2] = {
		{ "domain_type = xen\n", "domain_type: 'xen' is not auto, kvm or qemu" },
		{ "mac_prefix = 03:00:00\n", "mac_prefix: '03:00:00' is a multicast prefix" },
		{ "mac_prefix = 02:56\n", "mac_prefix: '02:56' is not a MAC prefix" },
		{ "mac_prefix = 02:56:44:01\n", "is not a MAC prefix" },
		{ "console_log_dir = var/log\n", "console_log_dir: 'var/log' is not an absolute path" },
		{ "console_log_dir = /var/log/x'y\n", "is not an absolute path of plain characters" },
		{ "prepare_timeout = 0s\n", "prepare_timeout: '0s' is out of range" },
		{ "address_timeout = 2h\n", "address_timeout: '2h' is out of range" },
		{ "fence_command = fence_ipmilan\n", "fence_command: 'fence_ipmilan' is not an absolute path" },
		{ "fence_command = /etc/vdi/fence\x01x\n", "control character 0x01" },
		{ "fence_timeout = 0s\n", "fence_timeout: '0s' is out of range" },
		{ "home_mount = home\n", "home_mount: 'home' is not an absolute path of letters" },
		{ "home_mount = /home/\"x\n", "is not an absolute path of letters, digits and /._-" },
		{ "home_mount = /a/../etc\n", "is not an absolute path of letters, digits and /._-" },
		{ "home_max = 1M\n", "home_max: '1M' is too small (at least 16777216 bytes)" },
		{ "update_parallel = 0\n", "update_parallel: invalid number '0': must be from 1 to 256" },
	};
	struct vdi_config c;
	struct vdi_err err = { 0 };

	(void)state;
	write_conf("");
	assert_int_equal(vdi_config_load(&c, &err), 0);
	assert_string_equal(c.domain_type, "auto");
	assert_string_equal(c.mac_prefix, "02:56:44");
	assert_string_equal(c.console_log_dir, "/var/log/libvirt/qemu");
	assert_int_equal(c.prepare_timeout, 30 * 60 * 1000);
	assert_int_equal(c.address_timeout, 2 * 60 * 1000);
	assert_string_equal(c.fence_command, "");
	assert_int_equal(c.fence_timeout, 2 * 60 * 1000);
	assert_string_equal(c.home_mount, "/home");
	assert_int_equal(c.home_max, 100LL << 30);
	assert_int_equal(c.request_home_max, 10LL << 30);
	assert_int_equal(c.update_parallel, 2);
	vdi_config_clear(&c);
	write_conf("domain_type = qemu\nmac_prefix = 52:54:01\nprepare_timeout = 5m\nconsole_log_dir = /srv/log\n"
		   "fence_command = /etc/vdi/fence agent\n");
	assert_int_equal(vdi_config_load(&c, &err), 0);
	assert_string_equal(c.fence_command, "/etc/vdi/fence agent");
	assert_string_equal(c.domain_type, "qemu");
	assert_string_equal(c.mac_prefix, "52:54:01");
	assert_int_equal(c.prepare_timeout, 5 * 60 * 1000);
	assert_string_equal(c.console_log_dir, "/srv/log");
	vdi_config_clear(&c);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_conf(bad[i][0]);
		vdi_err_reset(&err);
		assert_int_equal(vdi_config_load(&c, &err), -1);
		assert_int_equal(err.code, VDI_EUSAGE);
		if (!strstr(err.msg, bad[i][1]) || !strstr(err.msg, ":1: "))
			fail_msg("%s: got '%s'", bad[i][0], err.msg);
		vdi_config_clear(&c);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_then_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_desktop_settings, setup, teardown),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
