/*
 * image.h - reading disk images: what they are, and fetching them.
 *
 * vdi_image_probe() tells a disk image's format and virtual size from its
 * first bytes, never from its name: qcow2 (version 2 or 3, self-contained:
 * no backing file, no external data file, not encrypted) or raw (a whole
 * number of 512-byte sectors, at least 1 MiB, not text in any encoding).
 * Other formats are refused.  A qcow2 image is checked as it streams: the
 * tables its header promises and every cluster its refcounts say is in use
 * must be there (a copy cut short is refused, as qemu-img check would).
 * An HTTP body must say its length (Content-Length).
 *
 * vdi_image_fetch() streams an image from a local path or an http, https
 * or file URL (libcurl: TLS verified, redirects limited to http(s), a size
 * limit), computes its SHA-256 while the bytes flow, and hands the bytes
 * to the caller's sink: first start() with the probed format, then data()
 * chunk by chunk.  Nothing is written anywhere by this module.
 */
#ifndef VDI_IMAGE_H
#define VDI_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define VDI_IMAGE_HEAD 65536 /* bytes read before the format is decided */
#define VDI_IMAGE_RAW_MIN (1 << 20) /* a raw disk smaller than this is no disk */

struct vdi_image_info {
	const char *format;   /* "qcow2" or "raw" (static) */
	int64_t virtual_size; /* raw: -1 until the size is known */
};

/* total: the full length if known, else -1 (then head must be all of it if shorter than VDI_IMAGE_HEAD). */
int vdi_image_probe(const unsigned char *head, size_t len, int64_t total,
		    struct vdi_image_info *info, struct vdi_err *err);

struct vdi_fetch {
	int (*start)(void *ctx, const struct vdi_image_info *info, int64_t total, struct vdi_err *err);
	int (*data)(void *ctx, const void *buf, size_t len, struct vdi_err *err);
	void (*progress)(void *ctx, int64_t done, int64_t total); /* may be NULL */
	void *ctx;
	int64_t max_size;
};

struct vdi_fetch_result {
	char sha256[65];  /* lowercase hex */
	int64_t bytes;
	struct vdi_image_info info;
};

/*
 * Fetch src through the sink.  Errors: 2 bad source, 3 not found (no such
 * file, HTTP 404), 75 cannot reach the server, 1 anything else (TLS, size
 * limit, truncated transfer, not an image, the sink's own errors).
 */
int vdi_image_fetch(const char *src, const struct vdi_fetch *f, struct vdi_fetch_result *res,
		    struct vdi_err *err);

/*
 * Check an image source before anything else is done: http, https or file
 * URLs, or a path (2 otherwise); a local file must be a regular, non-empty
 * file (a folder, a device such as /dev/zero or a FIFO is refused: 2).
 */
int vdi_image_source_check(const char *src, struct vdi_err *err);

/* Is s 64 hex digits? Lowercases it in place when so. */
int vdi_sha256_check(char *s, struct vdi_err *err);

#endif
