/* test_image.c - unit tests of disk image probing (lib/virt/image.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "image.h"

static unsigned char h[4096];

static void
qcow2_header(uint32_t version, uint64_t backing, uint64_t size, uint32_t crypt, uint64_t incompat)
{
	memset(h, 0, sizeof(h));
	memcpy(h, "QFI\xfb", 4);
	for (int i = 0; i < 4; i++)
		h[4 + i] = (unsigned char)(version >> (24 - 8 * i));
	for (int i = 0; i < 8; i++) {
		h[8 + i] = (unsigned char)(backing >> (56 - 8 * i));
		h[24 + i] = (unsigned char)(size >> (56 - 8 * i));
		h[72 + i] = (unsigned char)(incompat >> (56 - 8 * i));
	}
	h[35] = (unsigned char)crypt;
}

static int
probe(size_t len, int64_t total, struct vdi_image_info *info, struct vdi_err *err)
{
	return vdi_image_probe(h, len, total, info, err);
}

static void
test_qcow2(void **state)
{
	struct vdi_image_info info;
	struct vdi_err err = { 0 };

	(void)state;
	qcow2_header(3, 0, 4ULL << 30, 0, 0);
	assert_int_equal(probe(sizeof(h), -1, &info, &err), 0);
	assert_string_equal(info.format, "qcow2");
	assert_int_equal(info.virtual_size, 4LL << 30);
	qcow2_header(2, 0, 1 << 20, 0, 0);
	assert_int_equal(probe(sizeof(h), 123, &info, &err), 0);
	assert_int_equal(info.virtual_size, 1 << 20);
}

static void
test_qcow2_refused(void **state)
{
	struct vdi_image_info info;
	struct vdi_err err = { 0 };

	(void)state;
	qcow2_header(3, 0x200, 1 << 20, 0, 0);
	assert_int_equal(probe(sizeof(h), -1, &info, &err), -1);
	assert_non_null(strstr(err.msg, "backing file"));
	qcow2_header(3, 0, 1 << 20, 1, 0);
	assert_int_equal(probe(sizeof(h), -1, &info, &err), -1);
	assert_non_null(strstr(err.msg, "encrypted"));
	qcow2_header(3, 0, 1 << 20, 0, 4);
	assert_int_equal(probe(sizeof(h), -1, &info, &err), -1);
	assert_non_null(strstr(err.msg, "external data file"));
	qcow2_header(1, 0, 1 << 20, 0, 0);
	assert_int_equal(probe(sizeof(h), -1, &info, &err), -1);
	qcow2_header(3, 0, 1 << 20, 0, 0);
	assert_int_equal(probe(50, 50, &info, &err), -1);
	assert_non_null(strstr(err.msg, "truncated"));
}

static void
test_raw(void **state)
{
	struct vdi_image_info info;
	struct vdi_err err = { 0 };

	(void)state;
	memset(h, 0, sizeof(h));
	assert_int_equal(probe(sizeof(h), 8 << 20, &info, &err), 0);
	assert_string_equal(info.format, "raw");
	assert_int_equal(info.virtual_size, 8 << 20);
	assert_int_equal(probe(sizeof(h), 1000, &info, &err), -1);
	assert_non_null(strstr(err.msg, "512-byte"));
	assert_int_equal(probe(0, 0, &info, &err), -1);
	assert_non_null(strstr(err.msg, "empty"));
}

static void
test_not_images(void **state)
{
	struct vdi_image_info info;
	struct vdi_err err = { 0 };

	(void)state;
	memset(h, ' ', sizeof(h));
	memcpy(h, "<!DOCTYPE html><html>", 21);
	assert_int_equal(probe(sizeof(h), 4096, &info, &err), -1);
	assert_non_null(strstr(err.msg, "starts with text"));
	memset(h, 0, sizeof(h));
	memcpy(h, "KDMV", 4);
	assert_int_equal(probe(sizeof(h), 4096, &info, &err), -1);
	assert_non_null(strstr(err.msg, "unsupported image format"));
	memset(h, 0, sizeof(h));
	memcpy(h, "vhdxfile", 8);
	assert_int_equal(probe(sizeof(h), 4096, &info, &err), -1);
}

static void
test_sha256_check(void **state)
{
	struct vdi_err err = { 0 };
	char good[] = "ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789";
	char shortv[] = "abcdef";
	char bad[] = "zbcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789";

	(void)state;
	assert_int_equal(vdi_sha256_check(good, &err), 0);
	assert_string_equal(good, "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
	assert_int_equal(vdi_sha256_check(shortv, &err), -1);
	assert_int_equal(vdi_sha256_check(bad, &err), -1);
	assert_int_equal(err.code, VDI_EUSAGE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qcow2),
		cmocka_unit_test(test_qcow2_refused),
		cmocka_unit_test(test_raw),
		cmocka_unit_test(test_not_images),
		cmocka_unit_test(test_sha256_check),
	};
	return cmocka_run_group_tests_name("image", tests, NULL, NULL);
}
