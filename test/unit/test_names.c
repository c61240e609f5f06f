/* test_names.c - unit tests of the name pattern and URI checks (lib/base/names.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "names.h"

static void
test_names(void **state)
{
	char long_name[VDI_NAME_MAX + 2];

	(void)state;
	assert_true(vdi_name_valid("alice"));
	assert_true(vdi_name_valid("u1"));
	assert_true(vdi_name_valid("Win11-pro_2.0"));
	assert_true(vdi_name_valid("9lives"));
	assert_false(vdi_name_valid(""));
	assert_false(vdi_name_valid(NULL));
	assert_false(vdi_name_valid("."));
	assert_false(vdi_name_valid(".."));
	assert_false(vdi_name_valid("-rf"));
	assert_false(vdi_name_valid("_x"));
	assert_false(vdi_name_valid("a/b"));
	assert_false(vdi_name_valid("a b"));
	assert_false(vdi_name_valid("a'b"));
	assert_false(vdi_name_valid("a<b>"));
	assert_false(vdi_name_valid("a\nb"));
	assert_false(vdi_name_valid("\xc3\xa9t\xc3\xa9"));
	memset(long_name, 'a', sizeof(long_name));
	long_name[VDI_NAME_MAX] = '\0';
	assert_true(vdi_name_valid(long_name));
	long_name[VDI_NAME_MAX] = 'a';
	long_name[VDI_NAME_MAX + 1] = '\0';
	assert_false(vdi_name_valid(long_name));
}

static void
test_name_check_message(void **state)
{
	struct vdi_err err = { 0 };

	(void)state;
	assert_int_equal(vdi_name_check("user", "a/b", &err), -1);
	assert_int_equal(err.code, VDI_EUSAGE);
	assert_non_null(strstr(err.msg, "invalid user name 'a/b'"));
	assert_int_equal(vdi_name_check("host", "", &err), -1);
	assert_string_equal(err.msg, "empty host name");
}

static void
test_uris(void **state)
{
	struct vdi_err err = { 0 };

	(void)state;
	assert_int_equal(vdi_uri_check("qemu:///system", &err), 0);
	assert_int_equal(vdi_uri_check("qemu+ssh://root@hv1.example.org/system", &err), 0);
	assert_int_equal(vdi_uri_check("qemu+tls://hv2:16514/system?no_verify=1", &err), 0);
	assert_int_equal(vdi_uri_check("qemu+unix:///system?socket=/tmp/lab/h1/libvirt-sock", &err), 0);
	assert_int_equal(vdi_uri_check("qemu:///session", &err), 0);
	assert_int_equal(vdi_uri_check("", &err), -1);
	assert_int_equal(vdi_uri_check("xen:///system", &err), -1);
	assert_non_null(strstr(err.msg, "not a QEMU driver URI"));
	assert_int_equal(vdi_uri_check("qemu:///embed?root=/x", &err), -1);
	assert_int_equal(vdi_uri_check("qemu:///system extra", &err), -1);
	assert_int_equal(vdi_uri_check("qemu:///system\n", &err), -1);
	assert_int_equal(vdi_uri_check("qemu+ssh://h/system?x=\"y\"", &err), -1);
	assert_int_equal(vdi_uri_check("system", &err), -1);
	assert_int_equal(err.code, VDI_EUSAGE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_name_check_message),
		cmocka_unit_test(test_uris),
	};
	return cmocka_run_group_tests_name("names", tests, NULL, NULL);
}
