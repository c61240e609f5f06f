/* test_config.c - unit tests of settings: defaults, file, environment (lib/config.c). */
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_then_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
