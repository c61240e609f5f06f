/* profile.c - device profiles and their defaults (see profile.h). */
#include <string.h>
#include <strings.h>

#include "profile.h"

struct defaults {
	const char *name, *firmware, *disk_bus, *nic, *video;
};

/* linux: virtio everywhere (virtio-gpu is what SPICE and Linux guests do best). */
static const struct defaults profiles[] = {
	{ "linux", "bios", "virtio", "virtio", "virtio" },
	{ "windows", "efi", "sata", "e1000e", "qxl" },
	{ "windows11", "efi", "sata", "e1000e", "qxl" },
	{ NULL, NULL, NULL, NULL, NULL },
};

static const char *const firmwares[] = { "bios", "efi", NULL };
static const char *const buses[] = { "virtio", "sata", "scsi", NULL };
static const char *const nics[] = { "virtio", "e1000e", "rtl8139", NULL };
static const char *const videos[] = { "virtio", "qxl", "vga", NULL };

const char *
vdi_profile_for_os(const char *os)
{
	return os && strncasecmp(os, "win", 3) == 0 ? "windows" : "linux";
}

static int
one_of(const char *what, const char *val, const char *const *list, const char *names, struct vdi_err *err)
{
	if (!val)
		return 0;
	for (size_t i = 0; list[i]; i++)
		if (strcmp(val, list[i]) == 0)
			return 0;
	return vdi_err_set(err, VDI_R_USAGE, "%s: '%.40s' is not one of %s", what, val, names);
}

int
vdi_profile_check(const struct vdi_profile *p, struct vdi_err *err)
{
	const char *names[] = { "linux", "windows", "windows11", NULL };

	if (one_of("profile", p->name, names, "linux, windows, windows11", err) < 0 ||
	    one_of("firmware", p->firmware, firmwares, "bios, efi", err) < 0 ||
	    one_of("disk bus", p->disk_bus, buses, "virtio, sata, scsi", err) < 0 ||
	    one_of("NIC model", p->nic, nics, "virtio, e1000e, rtl8139", err) < 0 ||
	    one_of("video model", p->video, videos, "virtio, qxl, vga", err) < 0)
		return -1;
	if (p->name && strcmp(p->name, "windows11") == 0 && p->firmware && strcmp(p->firmware, "efi") != 0)
		return vdi_err_set(err, VDI_R_USAGE, "firmware: windows11 needs efi (secure boot)");
	return 0;
}

void
vdi_profile_resolve(const struct vdi_profile *p, struct vdi_profile *out)
{
	const struct defaults *d = &profiles[0];

	for (size_t i = 0; p->name && profiles[i].name; i++)
		if (strcmp(p->name, profiles[i].name) == 0)
			d = &profiles[i];
	out->name = d->name;
	out->firmware = p->firmware ? p->firmware : d->firmware;
	out->disk_bus = p->disk_bus ? p->disk_bus : d->disk_bus;
	out->nic = p->nic ? p->nic : d->nic;
	out->video = p->video ? p->video : d->video;
}

bool
vdi_profile_tpm(const struct vdi_profile *p)
{
	return p->name && strcmp(p->name, "windows11") == 0;
}

bool
vdi_profile_windows(const struct vdi_profile *p)
{
	return p->name && strncmp(p->name, "windows", 7) == 0;
}
