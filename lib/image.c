/* image.c - probing and fetching disk images (see image.h). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <nettle/sha2.h>

#include "mem.h"
#include "image.h"

static uint64_t
be64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int
vdi_image_probe(const unsigned char *h, size_t len, int64_t total,
		struct vdi_image_info *info, struct vdi_err *err)
{
	size_t i, n;
	bool text = true;

	if (len == 0)
		return vdi_err_set(err, VDI_EFAIL, "not a disk image: it is empty");
	if (len >= 4 && memcmp(h, "QFI\xfb", 4) == 0) {
		uint32_t version;
		if (len < 104)
			return vdi_err_set(err, VDI_EFAIL, "not a disk image: qcow2 header is truncated");
		version = be32(h + 4);
		if (version != 2 && version != 3)
			return vdi_err_set(err, VDI_EFAIL, "unsupported qcow2 version %u", version);
		if (be64(h + 8) != 0)
			return vdi_err_set(err, VDI_EFAIL, "qcow2 image has a backing file: a master must be "
					   "self-contained (qemu-img convert it first)");
		if (be32(h + 32) != 0)
			return vdi_err_set(err, VDI_EFAIL, "qcow2 image is encrypted");
		if (version == 3 && (be64(h + 72) & 4))
			return vdi_err_set(err, VDI_EFAIL, "qcow2 image uses an external data file");
		info->format = "qcow2";
		info->virtual_size = (int64_t)be64(h + 24);
		if (info->virtual_size <= 0)
			return vdi_err_set(err, VDI_EFAIL, "qcow2 image has no virtual size");
		return 0;
	}
	if ((len >= 4 && (memcmp(h, "KDMV", 4) == 0 || memcmp(h, "QED\0", 4) == 0)) ||
	    (len >= 8 && memcmp(h, "vhdxfile", 8) == 0) ||
	    (len >= 8 && memcmp(h, "conectix", 8) == 0) ||
	    (len >= 0x44 && be32(h + 0x40) == 0x7f10dabe) ||
	    (len >= 21 && memcmp(h, "# Disk DescriptorFile", 21) == 0))
		return vdi_err_set(err, VDI_EFAIL, "unsupported image format (only qcow2 and raw; "
				   "convert it with qemu-img convert -O qcow2)");
	n = len < 512 ? len : 512;
	for (i = 0; i < n && text; i++)
		if (!(isprint(h[i]) || isspace(h[i])))
			text = false;
	if (text)
		return vdi_err_set(err, VDI_EFAIL, "not a disk image: it starts with text (\"%.20s\")",
				   (const char *)h);
	info->format = "raw";
	info->virtual_size = total;
	if (total >= 0 && total % 512)
		return vdi_err_set(err, VDI_EFAIL, "not a disk image: raw size %lld is not a whole "
				   "number of 512-byte sectors", (long long)total);
	return 0;
}

int
vdi_sha256_check(char *s, struct vdi_err *err)
{
	size_t i;

	for (i = 0; s[i]; i++) {
		if (!isxdigit((unsigned char)s[i]))
			break;
		s[i] = (char)tolower((unsigned char)s[i]);
	}
	if (i != 64 || s[i])
		return vdi_err_set(err, VDI_EUSAGE, "invalid SHA-256 '%.80s': expected 64 hex digits", s);
	return 0;
}

/* ---- the byte pipeline: head buffer, hash, sink ---- */

struct pipe {
	const struct vdi_fetch *f;
	struct sha256_ctx sha;
	unsigned char *head;
	size_t hlen;
	bool started;
	int64_t total;   /* -1 unknown */
	int64_t bytes;
	struct vdi_image_info info;
	struct vdi_err err;
	bool failed;
};

static int
start(struct pipe *p)
{
	if (vdi_image_probe(p->head, p->hlen, p->total, &p->info, &p->err) < 0)
		return -1;
	if (p->f->start(p->f->ctx, &p->info, p->total, &p->err) < 0)
		return -1;
	p->started = true;
	if (p->hlen && p->f->data(p->f->ctx, p->head, p->hlen, &p->err) < 0)
		return -1;
	return 0;
}

static int
feed(struct pipe *p, const unsigned char *buf, size_t len)
{
	if (p->f->max_size > 0 && p->bytes + (int64_t)len > p->f->max_size)
		return vdi_err_set(&p->err, VDI_EFAIL, "image is larger than image_max_size (%lld bytes)",
				   (long long)p->f->max_size);
	sha256_update(&p->sha, len, buf);
	p->bytes += (int64_t)len;
	if (p->started)
		return p->f->data(p->f->ctx, buf, len, &p->err);
	while (len > 0) {
		size_t n = VDI_IMAGE_HEAD - p->hlen;
		if (n > len)
			n = len;
		memcpy(p->head + p->hlen, buf, n);
		p->hlen += n;
		buf += n;
		len -= n;
		if (p->hlen == VDI_IMAGE_HEAD) {
			if (start(p) < 0)
				return -1;
			if (len > 0)
				return p->f->data(p->f->ctx, buf, len, &p->err);
		}
	}
	return 0;
}

/* At the end of the bytes: start if the image was smaller than the head, check the size. */
static int
finish(struct pipe *p, struct vdi_fetch_result *res)
{
	uint8_t d[SHA256_DIGEST_SIZE];

	if (!p->started) {
		p->total = p->bytes;
		if (start(p) < 0)
			return -1;
	}
	if (p->total >= 0 && p->bytes != p->total)
		return vdi_err_set(&p->err, VDI_EFAIL, "transfer truncated: %lld of %lld bytes",
				   (long long)p->bytes, (long long)p->total);
	if (strcmp(p->info.format, "raw") == 0) {
		if (p->bytes % 512)
			return vdi_err_set(&p->err, VDI_EFAIL, "not a disk image: raw size %lld is not a "
					   "whole number of 512-byte sectors", (long long)p->bytes);
		p->info.virtual_size = p->bytes;
	}
	sha256_digest(&p->sha, sizeof(d), d);
	for (size_t i = 0; i < sizeof(d); i++)
		snprintf(res->sha256 + 2 * i, 3, "%02x", d[i]);
	res->bytes = p->bytes;
	res->info = p->info;
	return 0;
}

/* ---- local files ---- */

static int
fetch_path(struct pipe *p, const char *path)
{
	unsigned char *buf;
	int fd, ret = -1;
	ssize_t n;
	off_t end;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vdi_err_set(&p->err, errno == ENOENT ? VDI_ENOTFOUND : VDI_EFAIL,
				   "cannot open image %s: %s", path, strerror(errno));
	end = lseek(fd, 0, SEEK_END);
	if (end < 0 || lseek(fd, 0, SEEK_SET) < 0) {
		vdi_err_set(&p->err, VDI_EFAIL, "image %s is not a regular file", path);
		goto out;
	}
	p->total = end;
	if (p->f->max_size > 0 && end > p->f->max_size) {
		vdi_err_set(&p->err, VDI_EFAIL, "image is larger than image_max_size (%lld bytes)",
			    (long long)p->f->max_size);
		goto out;
	}
	buf = vdi_xmalloc(1 << 20);
	while ((n = read(fd, buf, 1 << 20)) > 0) {
		if (feed(p, buf, (size_t)n) < 0)
			break;
		if (p->f->progress)
			p->f->progress(p->f->ctx, p->bytes, p->total);
	}
	if (n < 0)
		vdi_err_set(&p->err, VDI_EFAIL, "reading image %s: %s", path, strerror(errno));
	free(buf);
	ret = (n == 0 && !p->err.code) ? 0 : -1;
out:
	close(fd);
	return ret;
}

/* ---- URLs, with libcurl ---- */

static size_t
on_body(char *buf, size_t size, size_t nmemb, void *arg)
{
	struct pipe *p = arg;

	if (feed(p, (const unsigned char *)buf, size * nmemb) < 0) {
		p->failed = true;
		return 0; /* makes curl stop with CURLE_WRITE_ERROR */
	}
	return size * nmemb;
}

static int
on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	struct pipe *p = arg;

	(void)ultotal;
	(void)ulnow;
	if (p->f->progress && dlnow > 0)
		p->f->progress(p->f->ctx, (int64_t)dlnow, dltotal > 0 ? (int64_t)dltotal : -1);
	return 0;
}

/* Content-Length arrives with the headers: note it before any body byte. */
static size_t
on_header(char *buf, size_t size, size_t nmemb, void *arg)
{
	struct pipe *p = arg;
	size_t n = size * nmemb;

	if (n > 15 && strncasecmp(buf, "content-length:", 15) == 0) {
		long long v = strtoll(buf + 15, NULL, 10);
		if (v >= 0)
			p->total = v;
	} else if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
		p->total = -1; /* a new response (after a redirect) */
	}
	return n;
}

static int
curl_fail(struct pipe *p, CURL *c, CURLcode rc, const char *ebuf, const char *url)
{
	long status = 0;
	const char *m = *ebuf ? ebuf : curl_easy_strerror(rc);

	if (p->failed)
		return -1; /* the sink's or feed's own error is in p->err */
	switch (rc) {
	case CURLE_HTTP_RETURNED_ERROR:
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		return vdi_err_set(&p->err, status == 404 || status == 410 ? VDI_ENOTFOUND : VDI_EFAIL,
				   "cannot fetch %s: HTTP %ld", url, status);
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
		return vdi_err_set(&p->err, VDI_ETEMP, "cannot fetch %s: %s", url, m);
	case CURLE_FILE_COULDNT_READ_FILE:
		return vdi_err_set(&p->err, VDI_ENOTFOUND, "cannot fetch %s: %s", url, m);
	case CURLE_FILESIZE_EXCEEDED:
		return vdi_err_set(&p->err, VDI_EFAIL, "image is larger than image_max_size (%lld bytes)",
				   (long long)p->f->max_size);
	case CURLE_PARTIAL_FILE:
		return vdi_err_set(&p->err, VDI_EFAIL, "transfer truncated: %s", m);
	default:
		return vdi_err_set(&p->err, VDI_EFAIL, "cannot fetch %s: %s", url, m);
	}
}

static int
fetch_url(struct pipe *p, const char *url)
{
	char ebuf[CURL_ERROR_SIZE] = "";
	CURL *c;
	CURLcode rc;
	int ret = -1;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return vdi_err_set(&p->err, VDI_EFAIL, "cannot initialise libcurl");
	c = curl_easy_init();
	if (!c) {
		vdi_err_set(&p->err, VDI_EFAIL, "cannot initialise libcurl");
		goto out;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https,file");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
	/* A transfer that stalls (under 1 byte/s for 60 s) is given up. */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (p->f->max_size > 0)
		curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)p->f->max_size);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, p);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, p);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, p);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "vdi-tools/" VDI_VERSION);
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		curl_fail(p, c, rc, ebuf, url);
		goto out;
	}
	if (p->total < 0) {
		/* file:// gives no Content-Length header; curl knows the size. */
		curl_off_t cl = -1;
		if (curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK && cl >= 0)
			p->total = cl;
	}
	ret = 0;
out:
	if (c)
		curl_easy_cleanup(c);
	curl_global_cleanup();
	return ret;
}

int
vdi_image_fetch(const char *src, const struct vdi_fetch *f, struct vdi_fetch_result *res,
		struct vdi_err *err)
{
	struct pipe p;
	const char *colon = strstr(src, "://");
	int rc;

	memset(&p, 0, sizeof(p));
	memset(res, 0, sizeof(*res));
	p.f = f;
	p.total = -1;
	if (!*src)
		return vdi_err_set(err, VDI_EUSAGE, "empty image source");
	if (colon && !(strncasecmp(src, "http://", 7) == 0 || strncasecmp(src, "https://", 8) == 0 ||
		       strncasecmp(src, "file://", 7) == 0))
		return vdi_err_set(err, VDI_EUSAGE, "image URL '%.80s': only http, https and file URLs "
				   "are accepted", src);
	p.head = vdi_xmalloc(VDI_IMAGE_HEAD);
	sha256_init(&p.sha);
	rc = colon ? fetch_url(&p, src) : fetch_path(&p, src);
	if (rc == 0)
		rc = finish(&p, res);
	if (rc < 0)
		vdi_err_copy(err, &p.err);
	free(p.head);
	return rc;
}
