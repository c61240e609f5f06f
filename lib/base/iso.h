/*
 * iso.h - a small ISO 9660 image made in memory: one root folder of a few
 * small files, with Rock Ridge names (Linux, isoinfo -R) and a Joliet tree
 * (Windows, cloudbase-init), as genisoimage -rock -joliet makes it.
 *
 * It exists for the cloud-init seed (seed.h): a seed is two files of a few
 * hundred bytes, and making it in memory costs no process, no temporary
 * folder and no file anyone could plant.  Names are 1-30 characters of
 * [a-z0-9._-]; the volume id 1-16 characters of [A-Za-z0-9_].
 *
 * vdi_iso_build() returns a malloc'd image the caller frees, or NULL with
 * errno EINVAL (a bad name, too many files for one folder sector) or
 * ENOMEM.
 */
#ifndef VDI_ISO_H
#define VDI_ISO_H

#include <stddef.h>
#include <time.h>

struct vdi_iso_file {
	const char *name;
	const void *data;
	size_t len;
};

#define VDI_ISO_SECTOR 2048

unsigned char *vdi_iso_build(const char *volid, const struct vdi_iso_file *files, size_t n, time_t when,
			     size_t *len);

#endif
