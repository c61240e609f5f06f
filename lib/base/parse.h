/*
 * parse.h - parsing numbers, sizes and durations given by people.
 *
 * Sizes: plain bytes, or a number (fraction allowed) with a unit.
 * K, M, G, T, P and KiB..PiB are powers of 1024 (as in qemu-img);
 * KB, MB, GB, TB, PB are powers of 1000 (as in libvirt); B is bytes.
 * Durations: a number with ms, s, m, h, d or w (plain number: seconds).
 * Every parser rejects signs, empty input, junk and overflow with exit 2.
 */
#ifndef VDI_PARSE_H
#define VDI_PARSE_H

#include <stdint.h>

#include "err.h"

int vdi_size_parse(const char *s, uint64_t *out, struct vdi_err *err);
/* Format bytes for people: "512M", "4G", "1.5G" (binary units). */
void vdi_size_format(uint64_t bytes, char *buf, size_t len);

/* Duration in milliseconds. */
int vdi_duration_parse(const char *s, int64_t *ms, struct vdi_err *err);

/* An integer in [min, max]. */
int vdi_int_parse(const char *s, int64_t min, int64_t max, int64_t *out, struct vdi_err *err);
/* A finite decimal number in [min, max]. */
int vdi_real_parse(const char *s, double min, double max, double *out, struct vdi_err *err);

/* A size in [min, max] bytes; messages start with what. */
int vdi_size_parse_range(const char *what, const char *s, uint64_t min, uint64_t max, int64_t *out,
			 struct vdi_err *err);
/* The sizes of a user VM or master: memory 16M-16T, disk 1M-1P, vCPUs 1-1024. */
int vdi_mem_parse(const char *s, int64_t *out, struct vdi_err *err);
int vdi_disk_parse(const char *s, int64_t *out, struct vdi_err *err);
/* A home disk's size (1 byte to 1 PiB here; its real bounds: home.h, vdi.conf home_max). */
int vdi_home_parse(const char *s, int64_t *out, struct vdi_err *err);
int vdi_vcpus_parse(const char *s, int64_t *out, struct vdi_err *err);

/*
 * A date in the future: YYYY-MM-DD (midnight UTC), YYYY-MM-DDTHH:MMZ or
 * YYYY-MM-DDTHH:MM:SSZ.  Dates that do not exist (2027-02-30) are refused.
 */
/*
 * A MAC prefix: three bytes "xx:xx:xx" of a unicast address (the first
 * byte even).  out (may be NULL) gets them.
 */
int vdi_mac_prefix_parse(const char *s, unsigned char out[3], struct vdi_err *err);
/* The stable MAC of user VM id under prefix (checked): prefix + the id's low 24 bits. */
void vdi_mac_make(const char *prefix, int64_t id, char *buf, size_t len);
int vdi_date_parse(const char *s, int64_t now, int64_t *t, struct vdi_err *err);
/* A time, past or future: the forms above, "now", or a duration meaning that long ago ("2h"). */
int vdi_time_parse(const char *s, int64_t now, int64_t *t, struct vdi_err *err);

#endif
