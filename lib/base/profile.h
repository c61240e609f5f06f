/*
 * profile.h - device profiles: the hardware a desktop gets.
 *
 * A master names a profile (linux, windows, windows11) and may override
 * its firmware, disk bus, NIC model and video model.  Every profile is a
 * SPICE desktop as oVirt's desktop type and virt-manager make one: q35,
 * xHCI USB with a tablet and two SPICE USB redirectors, the spice-vdagent
 * channel, ich9 sound with SPICE audio, virtio-rng and a logged serial
 * console.  windows adds Hyper-V enlightenments, a localtime clock and
 * UEFI; windows11 adds secure boot and a TPM 2.0.
 *
 * The strings are borrowed; nothing here allocates.
 */
#ifndef VDI_PROFILE_H
#define VDI_PROFILE_H

#include <stdbool.h>

#include "err.h"

struct vdi_profile {
	const char *name;      /* linux, windows, windows11 */
	const char *firmware;  /* bios, efi; NULL: the profile's */
	const char *disk_bus;  /* virtio, sata, scsi; NULL: the profile's */
	const char *nic;       /* virtio, e1000e, rtl8139; NULL: the profile's */
	const char *video;     /* virtio, qxl, vga; NULL: the profile's */
};

/* The profile an OS name implies: anything starting with "win" is windows. */
const char *vdi_profile_for_os(const char *os);
/* Check every value that is set (a usage error names the bad one). */
int vdi_profile_check(const struct vdi_profile *p, struct vdi_err *err);
/* out = p with every unset value filled from the profile (p checked). */
void vdi_profile_resolve(const struct vdi_profile *p, struct vdi_profile *out);
/* Does the profile want secure boot and a TPM 2.0? */
bool vdi_profile_tpm(const struct vdi_profile *p);
bool vdi_profile_windows(const struct vdi_profile *p);

#endif
