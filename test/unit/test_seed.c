/* test_seed.c - unit tests of the cloud-init seed documents and XML building (lib/base/seed.c, lib/base/xml.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "meta.h"
#include "seed.h"
#include "xml.h"

static void
test_hostname(void **state)
{
	char b[80];

	(void)state;
	vdi_seed_hostname("alice", b, sizeof(b));
	assert_string_equal(b, "alice");
	vdi_seed_hostname("Alice_B.Smith", b, sizeof(b));
	assert_string_equal(b, "alice-b-smith");
	vdi_seed_hostname("9--x__", b, sizeof(b));
	assert_string_equal(b, "9-x");
	vdi_seed_hostname("___", b, sizeof(b));
	assert_string_equal(b, "desktop");
	vdi_seed_hostname("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", b, sizeof(b));
	assert_int_equal(strlen(b), 63);
}

static void
test_user_data(void **state)
{
	char *pk[] = { "vlc", "yes" };
	struct vdi_seed s = { .uservm_id = 7, .user = "bob", .hostname = "bob", .packages = pk, .npackages = 2 };
	char *ud, *md;

	(void)state;
	ud = vdi_seed_user_data(&s);
	assert_non_null(strstr(ud, "#cloud-config\n"));
	assert_int_equal(strncmp(ud, "#cloud-config\n", 14), 0);
	assert_non_null(strstr(ud, "hostname: \"bob\"\n"));
	assert_non_null(strstr(ud, "packages:\n  - \"vlc\"\n  - \"yes\"\n"));
	md = vdi_seed_meta_data(&s);
	assert_string_equal(md, "instance-id: vdi-uservm-7\nlocal-hostname: \"bob\"\n");
	free(ud);
	free(md);
	s.npackages = 0;
	ud = vdi_seed_user_data(&s);
	assert_null(strstr(ud, "packages"));
	assert_null(strstr(ud, "power_state"));
	free(ud);
	/* Prepared once: the first boot ends by powering off, last thing. */
	s.poweroff = true;
	ud = vdi_seed_user_data(&s);
	assert_non_null(strstr(ud, "power_state:\n  mode: poweroff\n"));
	assert_null(strstr(ud, "runcmd"));
	free(ud);
	/* A home disk: made once (never over a file system), mounted by label, grown at each boot. */
	s.home_device = "/dev/disk/by-id/virtio-vdi-home";
	s.home_mount = "/home";
	ud = vdi_seed_user_data(&s);
	assert_non_null(strstr(ud, "fs_setup:\n  - label: \"vdi-home\"\n    filesystem: ext4\n"
			       "    device: \"/dev/disk/by-id/virtio-vdi-home\"\n    partition: none\n"
			       "    overwrite: false\n"));
	assert_non_null(strstr(ud, "mounts:\n  - [ \"LABEL=vdi-home\", \"/home\", ext4, \"defaults,nofail,"));
	assert_non_null(strstr(ud, "bootcmd:\n  - [ sh, -c, \"resize2fs /dev/disk/by-label/vdi-home"));
	/* Before the user is made (users_groups), so the home directory is made on it; power_state still last. */
	assert_true(strstr(ud, "power_state") > strstr(ud, "mounts:"));
	free(ud);
	{
		char dev[128];
		vdi_seed_home_device("sata", dev, sizeof(dev));
		assert_string_equal(dev, "/dev/disk/by-id/ata-QEMU_HARDDISK_vdi-home");
		vdi_seed_home_device("scsi", dev, sizeof(dev));
		assert_string_equal(dev, "/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_vdi-home");
		vdi_seed_home_device("virtio", dev, sizeof(dev));
		assert_string_equal(dev, "/dev/disk/by-id/virtio-vdi-home");
	}
	/* cloudbase-init: set_hostname, and a shutdown in runcmd (it has no power_state); no home for it. */
	s.windows = true;
	ud = vdi_seed_user_data(&s);
	assert_non_null(strstr(ud, "set_hostname: \"bob\"\n"));
	assert_non_null(strstr(ud, "runcmd:\n  - \"shutdown /s /t 10"));
	assert_null(strstr(ud, "power_state"));
	assert_null(strstr(ud, "fs_setup"));
	free(ud);
}

static void
test_volume_xml(void **state)
{
	struct vdi_err err = { 0 };
	struct vdi_volume_spec v = { "user-a&b.qcow2", 1 << 30, "qcow2", "/pool/master-<x>", "raw" };
	char *x, *s;

	(void)state;
	x = vdi_xml_volume(&v, &err);
	assert_non_null(x);
	assert_non_null(strstr(x, "<name>user-a&amp;b.qcow2</name>"));
	assert_non_null(strstr(x, "<capacity unit=\"bytes\">1073741824</capacity>"));
	assert_non_null(strstr(x, "<path>/pool/master-&lt;x&gt;</path>"));
	s = vdi_xml_xpath_string(x, "/volume/backingStore/format/@type", &err);
	assert_string_equal(s, "raw");
	free(s);
	free(x);
}

static void
test_meta_roundtrip(void **state)
{
	struct vdi_err err = { 0 };
	struct vdi_meta m = { 42, 7, "alice" }, back;
	char *x;

	(void)state;
	x = vdi_meta_format(&m, &err);
	assert_non_null(x);
	assert_int_equal(vdi_meta_parse(x, &back, &err), 0);
	assert_int_equal(back.session_id, 42);
	assert_int_equal(back.uservm_id, 7);
	assert_string_equal(back.user, "alice");
	vdi_meta_clear(&back);
	free(x);
	assert_int_equal(vdi_meta_parse("<session id='1' uservm='2' user='a/b'/>", &back, &err), -1);
	assert_int_equal(vdi_meta_parse("<session id='x' uservm='2' user='a'/>", &back, &err), -1);
	assert_int_equal(vdi_meta_parse("not xml", &back, &err), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostname),
		cmocka_unit_test(test_user_data),
		cmocka_unit_test(test_volume_xml),
		cmocka_unit_test(test_meta_roundtrip),
	};
	return cmocka_run_group_tests_name("seed", tests, NULL, NULL);
}
