/* test_parse.c - unit tests of sizes, durations and numbers (lib/base/parse.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "parse.h"

static uint64_t
size_ok(const char *s)
{
	struct vdi_err err = { 0 };
	uint64_t v = 0;

	assert_int_equal(vdi_size_parse(s, &v, &err), 0);
	return v;
}

static void
size_bad(const char *s, const char *msg)
{
	struct vdi_err err = { 0 };
	uint64_t v = 12345;

	assert_int_equal(vdi_size_parse(s, &v, &err), -1);
	assert_int_equal(err.code, VDI_EUSAGE);
	assert_non_null(strstr(err.msg, msg));
	assert_int_equal(v, 12345); /* untouched */
}

static void
test_sizes(void **state)
{
	(void)state;
	assert_int_equal(size_ok("0"), 0);
	assert_int_equal(size_ok("4096"), 4096);
	assert_int_equal(size_ok("512M"), 512ULL << 20);
	assert_int_equal(size_ok("4G"), 4ULL << 30);
	assert_int_equal(size_ok("4GiB"), 4ULL << 30);
	assert_int_equal(size_ok("4GB"), 4000000000ULL);
	assert_int_equal(size_ok("1T"), 1ULL << 40);
	assert_int_equal(size_ok("1.5G"), 3ULL << 29);
	assert_int_equal(size_ok("0.5K"), 512);
	assert_int_equal(size_ok("64KiB"), 65536);
	assert_int_equal(size_ok("10B"), 10);
	assert_int_equal(size_ok("2P"), 2ULL << 50);
}

static void
test_sizes_bad(void **state)
{
	(void)state;
	size_bad("", "empty");
	size_bad("-1", "negative");
	size_bad("-4G", "negative");
	size_bad("+4G", "expected a number");
	size_bad("4X", "expected a number");
	size_bad("4 G", "expected a number");
	size_bad("G", "expected a number");
	size_bad("1.", "expected a number");
	size_bad("4g", "expected a number"); /* units are case-sensitive: g is not G */
	size_bad("99999999999999999999", "too large");
	size_bad("16777216T", "too large");     /* 2^64 */
	size_bad("4096P", "too large");         /* 2^62 is past the SQLite-safe limit */
	size_bad("1.0000001K", "whole number");
}

static void
test_size_format(void **state)
{
	char b[16];

	(void)state;
	vdi_size_format(0, b, sizeof(b));
	assert_string_equal(b, "0");
	vdi_size_format(512ULL << 20, b, sizeof(b));
	assert_string_equal(b, "512M");
	vdi_size_format(3ULL << 29, b, sizeof(b));
	assert_string_equal(b, "1.5G");
	vdi_size_format(1000, b, sizeof(b));
	assert_string_equal(b, "1000");
}

static void
test_durations(void **state)
{
	struct vdi_err err = { 0 };
	int64_t ms;

	(void)state;
	assert_int_equal(vdi_duration_parse("5", &ms, &err), 0);
	assert_int_equal(ms, 5000);
	assert_int_equal(vdi_duration_parse("1500ms", &ms, &err), 0);
	assert_int_equal(ms, 1500);
	assert_int_equal(vdi_duration_parse("2m", &ms, &err), 0);
	assert_int_equal(ms, 120000);
	assert_int_equal(vdi_duration_parse("1.5h", &ms, &err), 0);
	assert_int_equal(ms, 5400000);
	assert_int_equal(vdi_duration_parse("7d", &ms, &err), 0);
	assert_int_equal(ms, 7 * 86400000LL);
	assert_int_equal(vdi_duration_parse("1w", &ms, &err), 0);
	assert_int_equal(vdi_duration_parse("-5s", &ms, &err), -1);
	assert_int_equal(vdi_duration_parse("5 s", &ms, &err), -1);
	assert_int_equal(vdi_duration_parse("5y", &ms, &err), -1);
	assert_int_equal(vdi_duration_parse("99999999999999999w", &ms, &err), -1);
	assert_int_equal(err.code, VDI_EUSAGE);
}

static void
test_ints_reals(void **state)
{
	struct vdi_err err = { 0 };
	int64_t n;
	double d;

	(void)state;
	assert_int_equal(vdi_int_parse("42", 0, 100, &n, &err), 0);
	assert_int_equal(n, 42);
	assert_int_equal(vdi_int_parse("101", 0, 100, &n, &err), -1);
	assert_int_equal(vdi_int_parse("-1", 0, 100, &n, &err), -1);
	assert_int_equal(vdi_int_parse("1e3", 0, 10000, &n, &err), -1);
	assert_int_equal(vdi_int_parse(" 4", 0, 100, &n, &err), -1);
	assert_int_equal(vdi_int_parse("4 ", 0, 100, &n, &err), -1);
	assert_int_equal(vdi_int_parse("99999999999999999999", 0, INT64_MAX, &n, &err), -1);
	assert_int_equal(vdi_real_parse("2.5", 0.01, 64, &d, &err), 0);
	assert_true(d == 2.5);
	assert_int_equal(vdi_real_parse("nan", 0.01, 64, &d, &err), -1);
	assert_int_equal(vdi_real_parse("inf", 0.01, 64, &d, &err), -1);
	assert_int_equal(vdi_real_parse("0x10", 0.01, 64, &d, &err), -1);
	assert_int_equal(vdi_real_parse("1e1", 0.01, 64, &d, &err), -1);
	assert_int_equal(vdi_real_parse("0", 0.01, 64, &d, &err), -1);
	assert_int_equal(vdi_real_parse("65", 0.01, 64, &d, &err), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_sizes_bad),
		cmocka_unit_test(test_size_format),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_ints_reals),
	};
	return cmocka_run_group_tests_name("parse", tests, NULL, NULL);
}
