/* seed.c - cloud-init NoCloud seed images for user VMs (see seed.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "iso.h"
#include "mem.h"
#include "seed.h"

void
vdi_seed_hostname(const char *user, char *buf, size_t len)
{
	size_t o = 0;

	for (const char *p = user; *p && o + 1 < len && o < 63; p++) {
		char c = *p;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			c = '-';
		if (c == '-' && (o == 0 || buf[o - 1] == '-'))
			continue;
		buf[o++] = c;
	}
	while (o > 0 && buf[o - 1] == '-')
		o--;
	buf[o] = '\0';
	if (o == 0)
		snprintf(buf, len, "desktop");
}

static char *
mem_printf(FILE **fp, char **buf, size_t *len)
{
	*buf = NULL;
	*len = 0;
	*fp = open_memstream(buf, len);
	return *fp ? *buf : NULL;
}

char *
vdi_seed_user_data(const struct vdi_seed *s)
{
	FILE *fp;
	char *buf;
	size_t len;

	mem_printf(&fp, &buf, &len);
	if (!fp)
		return NULL;
	/* Values are checked names ([A-Za-z0-9._-]): quoting keeps YAML from reading "no" or "1.0". */
	fprintf(fp, "#cloud-config\n");
	fprintf(fp, "# vdi-tools: the environment of user VM %lld\n", (long long)s->uservm_id);
	fprintf(fp, "hostname: \"%s\"\n", s->hostname);
	fprintf(fp, "preserve_hostname: false\n");
	fprintf(fp, "users:\n  - default\n  - name: \"%s\"\n    shell: /bin/bash\n    lock_passwd: true\n", s->user);
	if (s->npackages) {
		fprintf(fp, "package_update: true\npackages:\n");
		for (size_t i = 0; i < s->npackages; i++)
			fprintf(fp, "  - \"%s\"\n", s->packages[i]);
	}
	if (s->windows)
		fprintf(fp, "set_hostname: \"%s\"\n", s->hostname);
	if (s->home_device && !s->windows) {
		/* Before users_groups runs: the user's home directory is made on it. */
		fprintf(fp, "fs_setup:\n  - label: \"%s\"\n    filesystem: ext4\n    device: \"%s\"\n"
			"    partition: none\n    overwrite: false\n", VDI_HOME_LABEL, s->home_device);
		fprintf(fp, "mounts:\n  - [ \"LABEL=%s\", \"%s\", ext4, \"defaults,nofail,x-systemd.device-timeout=30s\", "
			"\"0\", \"2\" ]\n", VDI_HOME_LABEL, s->home_mount ? s->home_mount : "/home");
		fprintf(fp, "bootcmd:\n  - [ sh, -c, \"resize2fs /dev/disk/by-label/%s 2>/dev/null || true\" ]\n",
			VDI_HOME_LABEL);
	}
	/*
	 * Last: the first boot ends by powering off, which tells vdi-tools the
	 * user VM is prepared.  cloud-init runs power_state once per instance;
	 * cloudbase-init has no power_state, but runs runcmd once per instance.
	 */
	if (s->poweroff && s->windows)
		fprintf(fp, "runcmd:\n  - \"shutdown /s /t 10 /c vdi-tools-prepared\"\n");
	else if (s->poweroff)
		fprintf(fp, "power_state:\n  mode: poweroff\n  message: \"vdi-tools: user VM prepared\"\n"
			"  condition: true\n");
	fclose(fp);
	return buf;
}

void
vdi_seed_home_device(const char *bus, char *buf, size_t len)
{
	/* udev's names for a disk with serial vdi-home (xml.h: VDI_HOME_SERIAL). */
	if (bus && strcmp(bus, "sata") == 0)
		snprintf(buf, len, "/dev/disk/by-id/ata-QEMU_HARDDISK_%s", "vdi-home");
	else if (bus && strcmp(bus, "scsi") == 0)
		snprintf(buf, len, "/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_%s", "vdi-home");
	else
		snprintf(buf, len, "/dev/disk/by-id/virtio-%s", "vdi-home");
}

char *
vdi_seed_meta_data(const struct vdi_seed *s)
{
	FILE *fp;
	char *buf;
	size_t len;

	mem_printf(&fp, &buf, &len);
	if (!fp)
		return NULL;
	fprintf(fp, "instance-id: vdi-uservm-%lld\nlocal-hostname: \"%s\"\n", (long long)s->uservm_id, s->hostname);
	fclose(fp);
	return buf;
}

unsigned char *
vdi_seed_image(const struct vdi_seed *s, size_t *len, struct vdi_err *err)
{
	char *ud = vdi_seed_user_data(s), *md = vdi_seed_meta_data(s);
	unsigned char *img = NULL;

	if (!ud || !md)
		vdi_oom();
	{
		struct vdi_iso_file files[] = {
			{ "meta-data", md, strlen(md) },
			{ "user-data", ud, strlen(ud) },
		};
		img = vdi_iso_build("cidata", files, 2, time(NULL), len);
	}
	if (!img && errno == ENOMEM)
		vdi_oom();
	if (!img)
		vdi_err_set(err, VDI_R_FAIL, "cannot build the seed image: %s", strerror(errno));
	free(ud);
	free(md);
	return img;
}
