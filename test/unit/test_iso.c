/* test_iso.c - unit tests of the in-memory ISO 9660 image (lib/base/iso.c): layout, odd inputs, refusals. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "iso.h"

/* Does the image hold data of len bytes, sector-aligned, somewhere after the descriptors? */
static int
holds(const unsigned char *img, size_t len, const char *data, size_t dlen)
{
	for (size_t off = 18 * VDI_ISO_SECTOR; off + dlen <= len; off += VDI_ISO_SECTOR)
		if (memcmp(img + off, data, dlen) == 0)
			return 1;
	return 0;
}

static void
test_layout(void **state)
{
	const char ud[] = "#cloud-config\nhostname: alice\n", md[] = "instance-id: 1\n";
	struct vdi_iso_file f[] = { { "user-data", ud, sizeof(ud) - 1 }, { "meta-data", md, sizeof(md) - 1 } };
	size_t len = 0;
	unsigned char *img;

	(void)state;
	img = vdi_iso_build("cidata", f, 2, 1700000000, &len);
	assert_non_null(img);
	assert_int_equal(len % VDI_ISO_SECTOR, 0);
	assert_true(len / VDI_ISO_SECTOR >= 150); /* padded as genisoimage pads */
	/* The primary descriptor at sector 16, the Joliet one at 17. */
	assert_int_equal(img[16 * VDI_ISO_SECTOR], 1);
	assert_memory_equal(img + 16 * VDI_ISO_SECTOR + 1, "CD001", 5);
	assert_memory_equal(img + 16 * VDI_ISO_SECTOR + 40, "cidata", 6); /* as given: cloud-init looks for "cidata" */
	assert_int_equal(img[17 * VDI_ISO_SECTOR], 2);
	assert_true(holds(img, len, ud, sizeof(ud) - 1));
	assert_true(holds(img, len, md, sizeof(md) - 1));
	free(img);
}

/* No files, and an empty file with no data pointer, are images all the same. */
static void
test_empty(void **state)
{
	struct vdi_iso_file f[] = { { "vendor-data", NULL, 0 } };
	size_t len = 0;
	unsigned char *img;

	(void)state;
	img = vdi_iso_build("cidata", NULL, 0, 0, &len);
	assert_non_null(img);
	assert_true(len > 0);
	free(img);
	img = vdi_iso_build("cidata", f, 1, 0, &len);
	assert_non_null(img);
	free(img);
}

static void
test_refused(void **state)
{
	const char d[] = "x";
	struct vdi_iso_file bad[] = { { "../etc", d, 1 } }, upper[] = { { "User-Data", d, 1 } },
			    twice[] = { { "a", d, 1 }, { "a", d, 1 } }, ctl[] = { { "a\nb", d, 1 } };
	size_t len = 1;

	(void)state;
	errno = 0;
	assert_null(vdi_iso_build("cidata", bad, 1, 0, &len));
	assert_int_equal(errno, EINVAL);
	assert_int_equal(len, 0);
	assert_null(vdi_iso_build("cidata", upper, 1, 0, &len));
	assert_null(vdi_iso_build("cidata", twice, 2, 0, &len));
	assert_null(vdi_iso_build("cidata", ctl, 1, 0, &len));
	assert_null(vdi_iso_build("ci data", NULL, 0, 0, &len));
	assert_null(vdi_iso_build("", NULL, 0, 0, &len));
	assert_null(vdi_iso_build("a_volume_id_too_long", NULL, 0, 0, &len));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests_name("iso", tests, NULL, NULL);
}
