/*
 * seed.h - the user VM's "environment" (the paper's 환경파일) as a
 * cloud-init NoCloud seed: an ISO 9660 image labelled "cidata" holding
 * user-data (hostname, the user, the requested apps the master lacks, as
 * packages) and meta-data (instance id, hostname).  vm-start attaches it
 * as a cdrom; cloud-init in the guest applies it on first boot.
 *
 * The documents are plain text built here (every value is a checked name,
 * quoted); the ISO is made in memory (iso.h), with the names cloud-localds
 * gives it (Rock Ridge and Joliet), so a copy runs no process and writes
 * no temporary file for it.
 */
#ifndef VDI_SEED_H
#define VDI_SEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct vdi_seed {
	int64_t uservm_id;
	const char *user;
	const char *hostname;
	char *const *packages;
	size_t npackages;
	bool poweroff;   /* the first boot powers off at its end (the user VM's preparation) */
	bool windows;    /* written for cloudbase-init (set_hostname, runcmd shutdown) */
	/*
	 * The user's home disk (NULL: none): the guest's path of the device
	 * (by its serial, vdi_seed_home_device) and where it is mounted.
	 * Linux only: cloud-init makes its file system once (fs_setup, never
	 * over one that exists), mounts it (mounts, by label, nofail) and
	 * grows it at each boot (bootcmd resize2fs) after vm-copy --home-resize.
	 */
	const char *home_device;
	const char *home_mount;
};

/* The label of the home disk's file system. */
#define VDI_HOME_LABEL "vdi-home"

/* The guest's /dev/disk/by-id path of the home disk on a bus (virtio, sata or scsi). */
void vdi_seed_home_device(const char *bus, char *buf, size_t len);

/* A hostname (RFC 1123 label) for a user name: "Alice_B" -> "alice-b". */
void vdi_seed_hostname(const char *user, char *buf, size_t len);

char *vdi_seed_user_data(const struct vdi_seed *s);
char *vdi_seed_meta_data(const struct vdi_seed *s);

/* The seed image (malloc'd, *len bytes; the caller frees it), or NULL with err. */
unsigned char *vdi_seed_image(const struct vdi_seed *s, size_t *len, struct vdi_err *err);

#endif
