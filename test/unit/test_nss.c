/*
 * test_nss.c - unit tests of a user's groups through NSS (lib/base/nss.c)
 * and of the group names vm-group accepts (lib/db/group.c), on this
 * machine's own users: root is in group root; a user nobody knows has no
 * group and is no error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "group.h"
#include "nss.h"
#include "strv.h"

static void
test_root_groups(void **state)
{
	struct vdi_err err = { 0 };
	char **g = NULL;
	size_t n = 0;
	bool root = false;

	(void)state;
	assert_int_equal(vdi_nss_groups("root", &g, &n, &err), 0);
	assert_true(n >= 1);
	for (size_t i = 0; i < n; i++) {
		root |= strcmp(g[i], "root") == 0;
		if (i > 0)
			assert_true(strcmp(g[i - 1], g[i]) < 0); /* sorted, each once */
	}
	assert_true(root);
	vdi_strv_free(g, n);
}

static void
test_unknown_user(void **state)
{
	struct vdi_err err = { 0 };
	char **g = NULL;
	size_t n = 7;

	(void)state;
	assert_int_equal(vdi_nss_groups("no-such-user-of-vdi-tools", &g, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_null(g);
	assert_int_equal(err.code, 0);
}

static void
test_group_names(void **state)
{
	struct vdi_err err = { 0 };
	char big[VDI_GROUP_MAX + 2];

	(void)state;
	assert_int_equal(vdi_group_name_check("staff", &err), 0);
	assert_int_equal(vdi_group_name_check("Domain Users", &err), 0);
	assert_int_equal(vdi_group_name_check("staff@example.com", &err), 0);
	assert_int_equal(vdi_group_name_check("", &err), -1);
	assert_int_equal(vdi_group_name_check("-rf", &err), -1);
	assert_int_equal(vdi_group_name_check("a,b", &err), -1);
	assert_int_equal(vdi_group_name_check("a:b", &err), -1);
	assert_int_equal(vdi_group_name_check("a\"b", &err), -1);
	assert_int_equal(vdi_group_name_check("a/b", &err), -1);
	assert_int_equal(vdi_group_name_check("a\x1b[31m", &err), -1);
	assert_int_equal(err.code, 2);
	memset(big, 'g', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(vdi_group_name_check(big, &err), -1);
	big[VDI_GROUP_MAX] = '\0';
	assert_int_equal(vdi_group_name_check(big, &err), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_root_groups),
		cmocka_unit_test(test_unknown_user),
		cmocka_unit_test(test_group_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
