/*
 * test_xml.c - unit tests of the desktop domain XML (lib/base/xml.c, lib/base/profile.c):
 * every profile, with and without a NIC, is checked against libvirt's own
 * schema by virt-xml-validate, and the devices each profile promises are there.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "meta.h"
#include "parse.h"
#include "profile.h"
#include "xml.h"

static const char *dom_type = "kvm";

static char *
domain_of(const char *profile, const char *firmware, const char *bus, bool nic)
{
	struct vdi_meta meta = { .session_id = 42, .uservm_id = 7, .user = "o'brien<&>" };
	struct vdi_profile reg = { .name = profile, .firmware = firmware, .disk_bus = bus };
	struct vdi_domain_spec d = { .name = "vdi-s42-obrien", .type = dom_type, .mem = 256 << 20, .vcpus = 2,
				     .disk_path = "/pool/s42-obrien.qcow2", .seed_path = "/pool/user-obrien-seed.iso",
				     .listen = "127.0.0.1", .password = "pw\"&<", .vnc_password = "vnc&<8ch", .meta = &meta,
				     .console_log = "/var/log/libvirt/qemu/vdi-s42-obrien.console.log" };
	struct vdi_err err = { 0 };
	char mac[32], *xml;

	vdi_profile_resolve(&reg, &d.prof);
	vdi_mac_make("02:56:44", 7, mac, sizeof(mac));
	if (nic) {
		d.network = "vdi";
		d.mac = mac;
	}
	xml = vdi_xml_domain(&d, &err);
	assert_non_null(xml);
	return xml;
}

/* Validate xml with virt-xml-validate (libvirt's RelaxNG schema): its exit status. */
static int
validate(const char *xml)
{
	char path[] = "/tmp/vdi-test-xml.XXXXXX";
	int fd = mkstemp(path), status = -1;
	pid_t pid;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, xml, strlen(xml)), (ssize_t)strlen(xml));
	close(fd);
	pid = fork();
	if (pid == 0) {
		if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
			_exit(126);
		execlp("virt-xml-validate", "virt-xml-validate", path, "domain", (char *)NULL);
		_exit(127);
	}
	waitpid(pid, &status, 0);
	unlink(path);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void
test_profiles_validate(void **state)
{
	const char *profiles[] = { "linux", "windows", "windows11" };
	const char *buses[] = { NULL, "virtio", "sata", "scsi" };

	(void)state;
	for (int t = 0; t < 2; t++)
		for (size_t p = 0; p < 3; p++)
			for (size_t b = 0; b < 4; b++)
				for (int nic = 0; nic < 2; nic++) {
					char *xml;
					dom_type = t ? "qemu" : "kvm";
					xml = domain_of(profiles[p], NULL, buses[b], nic);
					if (validate(xml) != 0)
						fail_msg("%s/%s/%s/nic=%d does not validate:\n%s", dom_type, profiles[p],
							 buses[b] ? buses[b] : "default", nic, xml);
					free(xml);
				}
	dom_type = "kvm";
}

/* The home disk: the second disk on the system disk's bus, read-write, its serial vdi-home; valid on every bus. */
static void
test_home_disk(void **state)
{
	const char *buses[] = { "virtio", "sata", "scsi" };
	const char *home_target[] = { "<target dev=\"vdb\" bus=\"virtio\"/>", "<target dev=\"sdb\" bus=\"sata\"/>",
				      "<target dev=\"sdb\" bus=\"scsi\"/>" };
	const char *cd_target[] = { "<target dev=\"sda\" bus=\"sata\"/>", "<target dev=\"sdc\" bus=\"sata\"/>",
				    "<target dev=\"sdc\" bus=\"sata\"/>" };

	(void)state;
	for (size_t b = 0; b < 3; b++) {
		struct vdi_meta meta = { .session_id = 42, .uservm_id = 7, .user = "ann" };
		struct vdi_profile reg = { .name = "linux", .disk_bus = buses[b] };
		struct vdi_domain_spec d = { .name = "vdi-s42-ann", .type = "qemu", .mem = 256 << 20, .vcpus = 1,
					     .disk_path = "/pool/s42-ann.qcow2", .seed_path = "/pool/user-ann-seed.iso",
					     .home_path = "/pool/home-ann.qcow2", .listen = "127.0.0.1", .password = "pw",
					     .meta = &meta };
		struct vdi_err err = { 0 };
		char *xml, *home, *end;

		vdi_profile_resolve(&reg, &d.prof);
		xml = vdi_xml_domain(&d, &err);
		assert_non_null(xml);
		if (validate(xml) != 0)
			fail_msg("%s with a home disk does not validate:\n%s", buses[b], xml);
		home = strstr(xml, "<source file=\"/pool/home-ann.qcow2\"/>");
		assert_non_null(home);
		end = strstr(home, "</disk>");
		assert_non_null(end);
		*end = '\0';
		assert_non_null(strstr(home, home_target[b]));
		assert_non_null(strstr(home, "<serial>vdi-home</serial>"));
		assert_null(strstr(home, "readonly"));
		assert_non_null(strstr(end + 1, cd_target[b]));
		free(xml);
	}
}

static void
test_linux(void **state)
{
	char *xml = domain_of("linux", NULL, NULL, true);

	(void)state;
	assert_non_null(strstr(xml, "machine=\"q35\""));
	assert_non_null(strstr(xml, "<controller type=\"usb\" model=\"qemu-xhci\""));
	assert_non_null(strstr(xml, "<input type=\"tablet\" bus=\"usb\"/>"));
	assert_non_null(strstr(xml, "name=\"com.redhat.spice.0\""));
	assert_non_null(strstr(xml, "<sound model=\"ich9\">"));
	assert_non_null(strstr(xml, "<audio id=\"1\" type=\"spice\"/>"));
	assert_non_null(strstr(xml, "<model type=\"virtio\" heads=\"1\" primary=\"yes\"/>"));
	assert_non_null(strstr(xml, "<rng model=\"virtio\">"));
	assert_non_null(strstr(xml, "<log file=\"/var/log/libvirt/qemu/vdi-s42-obrien.console.log\""));
	assert_non_null(strstr(xml, "<mac address=\"02:56:44:00:00:07\"/>"));
	assert_non_null(strstr(xml, "<target dev=\"vda\" bus=\"virtio\"/>"));
	assert_int_equal(strstr(strstr(xml, "redirdev") + 1, "redirdev") != NULL, 1);
	/* BIOS, no Hyper-V, no TPM, utc */
	assert_null(strstr(xml, "firmware=\"efi\""));
	assert_null(strstr(xml, "hyperv"));
	assert_null(strstr(xml, "<tpm"));
	assert_non_null(strstr(xml, "<clock offset=\"utc\">"));
	/* hostile values are escaped, never markup */
	assert_non_null(strstr(xml, "user=\"o'brien&lt;&amp;&gt;\""));
	assert_non_null(strstr(xml, "passwd=\"pw&quot;&amp;&lt;\""));
	free(xml);
}

static void
test_windows(void **state)
{
	char *xml = domain_of("windows", NULL, NULL, true), *w11;

	(void)state;
	assert_non_null(strstr(xml, "<os firmware=\"efi\">"));
	assert_non_null(strstr(xml, "<hyperv mode=\"custom\">"));
	assert_non_null(strstr(xml, "<spinlocks state=\"on\" retries=\"8191\"/>"));
	assert_non_null(strstr(xml, "<frequencies state=\"on\"/>"));
	assert_non_null(strstr(xml, "<clock offset=\"localtime\">"));
	assert_non_null(strstr(xml, "<timer name=\"hypervclock\" present=\"yes\"/>"));
	assert_non_null(strstr(xml, "<timer name=\"rtc\" tickpolicy=\"catchup\"/>"));
	assert_non_null(strstr(xml, "<target dev=\"sda\" bus=\"sata\"/>"));
	assert_non_null(strstr(xml, "<model type=\"e1000e\"/>"));
	assert_non_null(strstr(xml, "<model type=\"qxl\""));
	assert_null(strstr(xml, "<tpm"));
	assert_null(strstr(xml, "secure-boot\"/>") && strstr(xml, "enabled=\"yes\" name=\"secure-boot\""));
	w11 = domain_of("windows11", NULL, "virtio", false);
	assert_non_null(strstr(w11, "<feature enabled=\"yes\" name=\"secure-boot\"/>"));
	assert_non_null(strstr(w11, "<loader secure=\"yes\"/>"));
	assert_non_null(strstr(w11, "<smm state=\"on\"/>"));
	assert_non_null(strstr(w11, "<tpm model=\"tpm-crb\">"));
	assert_non_null(strstr(w11, "<backend type=\"emulator\" version=\"2.0\"/>"));
	/* the master declared virtio drivers */
	assert_non_null(strstr(w11, "<target dev=\"vda\" bus=\"virtio\"/>"));
	assert_null(strstr(w11, "<interface"));
	free(xml);
	free(w11);
	/* Under TCG: no enlightenments (QEMU refuses them without KVM), the rest stays. */
	dom_type = "qemu";
	xml = domain_of("windows", NULL, NULL, true);
	assert_null(strstr(xml, "hyperv"));
	assert_non_null(strstr(xml, "<clock offset=\"localtime\">"));
	assert_non_null(strstr(xml, "<model type=\"e1000e\"/>"));
	dom_type = "kvm";
	free(xml);
}

static void
test_profile_rules(void **state)
{
	struct vdi_err err = { 0 };
	struct vdi_profile bad = { .name = "windows11", .firmware = "bios" }, worse = { .nic = "ne2k" };
	char mac[32];

	(void)state;
	assert_string_equal(vdi_profile_for_os("win11"), "windows");
	assert_string_equal(vdi_profile_for_os("Windows-10"), "windows");
	assert_string_equal(vdi_profile_for_os("linux"), "linux");
	assert_string_equal(vdi_profile_for_os(NULL), "linux");
	assert_int_equal(vdi_profile_check(&bad, &err), -1);
	assert_int_equal(err.code, 2);
	assert_int_equal(vdi_profile_check(&worse, &err), -1);
	assert_non_null(strstr(err.msg, "ne2k"));
	assert_int_equal(vdi_mac_prefix_parse("03:00:00", NULL, &err), -1); /* multicast */
	assert_int_equal(vdi_mac_prefix_parse("02:56:4", NULL, &err), -1);
	assert_int_equal(vdi_mac_prefix_parse("02:56:44:", NULL, &err), -1);
	assert_int_equal(vdi_mac_prefix_parse("52:54:0G", NULL, &err), -1);
	assert_int_equal(vdi_mac_prefix_parse("AA:bb:cc", NULL, &err), 0);
	vdi_mac_make("aa:bb:cc", 0x123456, mac, sizeof(mac));
	assert_string_equal(mac, "aa:bb:cc:12:34:56");
	vdi_mac_make("02:56:44", 0x1000001, mac, sizeof(mac)); /* past 2^24: the low 24 bits */
	assert_string_equal(mac, "02:56:44:00:00:01");
}

/*
 * A restore's XML edit (vdi_xml_domain_edit): the disk, the password, the
 * listen address, the network and our session change; the name, the UUID,
 * the MAC and every other device stay as saved; the result still validates.
 */
static void
test_restore_edit(void **state)
{
	struct vdi_xml_edit e = { .listen = "192.0.2.7", .network = "vdi2", .disk_from = "/pool/s42-obrien.qcow2",
				  .disk_to = "/pool/s99-obrien.qcow2", .password = "new&pw", .vnc_password = "vnc2",
				  .session_id = 99 };
	struct vdi_err err = { 0 };
	char *xml, *saved, *out, *v;

	(void)state;
	saved = domain_of("linux", NULL, NULL, true);
	/* As libvirt would hand it back: a UUID, and a ticket's end on the display. */
	xml = strstr(saved, "<name>");
	assert_non_null(xml);
	assert_true(asprintf(&xml, "%.*s<uuid>4b6a06c5-4e1c-4c77-9c34-0d2a6b2f7d11</uuid>%s", (int)(xml - saved),
			     saved, xml) > 0);
	free(saved);
	saved = xml;
	xml = strstr(saved, "passwd=");
	assert_non_null(xml);
	assert_true(asprintf(&xml, "%.*spasswdValidTo=\"2026-01-01T00:00:00\" %s", (int)(xml - saved), saved, xml) > 0);
	free(saved);
	saved = xml;
	out = vdi_xml_domain_edit(saved, &e, &err);
	assert_non_null(out);
	assert_int_equal(validate(out), 0);
	v = vdi_xml_xpath_string(out, "/domain/name", &err);
	assert_string_equal(v, "vdi-s42-obrien");
	free(v);
	v = vdi_xml_xpath_string(out, "/domain/uuid", &err);
	assert_string_equal(v, "4b6a06c5-4e1c-4c77-9c34-0d2a6b2f7d11");
	free(v);
	v = vdi_xml_xpath_string(out, "/domain/devices/interface/mac/@address", &err);
	assert_string_equal(v, "02:56:44:00:00:07");
	free(v);
	v = vdi_xml_xpath_string(out, "/domain/devices/disk[@device='disk']/source/@file", &err);
	assert_string_equal(v, "/pool/s99-obrien.qcow2");
	free(v);
	v = vdi_xml_xpath_string(out, "/domain/devices/disk[@device='cdrom']/source/@file", &err);
	assert_string_equal(v, "/pool/user-obrien-seed.iso");
	free(v);
	v = vdi_xml_xpath_string(out, "/domain/devices/graphics[@type='spice']/@passwd", &err);
	assert_string_equal(v, "new&pw");
	free(v);
	/* The browser console's VNC display has its own password, changed alike, and listens alike. */
	v = vdi_xml_xpath_string(out, "/domain/devices/graphics[@type='vnc']/@passwd", &err);
	assert_string_equal(v, "vnc2");
	free(v);
	assert_null(vdi_xml_xpath_string(out, "/domain/devices/graphics/@passwdValidTo", &err));
	v = vdi_xml_xpath_string(out, "/domain/devices/graphics[@type='vnc']/listen/@address", &err);
	assert_string_equal(v, "192.0.2.7");
	free(v);
	v = vdi_xml_xpath_string(out, "/domain/devices/graphics/listen/@address", &err);
	assert_string_equal(v, "192.0.2.7");
	free(v);
	v = vdi_xml_xpath_string(out, "/domain/devices/interface/source/@network", &err);
	assert_string_equal(v, "vdi2");
	free(v);
	/* Our metadata names the new session; the user and user VM stay. */
	assert_non_null(strstr(out, "id=\"99\""));
	assert_non_null(strstr(out, "uservm=\"7\""));
	assert_null(strstr(out, "id=\"42\""));
	/* A start begins the console log afresh: only a move appends. */
	assert_null(strstr(out, "append=\"on\""));
	free(out);
	free(saved);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_profiles_validate),
		cmocka_unit_test(test_linux),
		cmocka_unit_test(test_home_disk),
		cmocka_unit_test(test_windows),
		cmocka_unit_test(test_profile_rules),
		cmocka_unit_test(test_restore_edit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
