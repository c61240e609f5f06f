/* image.c - probing and fetching disk images (see image.h). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <nettle/sha2.h>

#include "image.h"
#include "mem.h"

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

/* The length of the UTF-8 character at p (1 for ASCII), 0 if none is there. */
static size_t
utf8_len(const unsigned char *p, size_t left)
{
	size_t k;

	if (p[0] < 0x80)
		return 1;
	k = (p[0] & 0xe0) == 0xc0 ? 2 : (p[0] & 0xf0) == 0xe0 ? 3 : (p[0] & 0xf8) == 0xf0 ? 4 : 0;
	if (k == 0 || k > left || (k == 2 && p[0] < 0xc2))
		return 0;
	for (size_t i = 1; i < k; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return k;
}

int
vdi_image_probe(const unsigned char *h, size_t len, int64_t total,
		struct vdi_image_info *info, struct vdi_err *err)
{
	size_t i, n;
	bool text = true;

	if (len == 0)
		return vdi_err_set(err, VDI_R_FAIL, "not a disk image: it is empty");
	if (len >= 4 && memcmp(h, "QFI\xfb", 4) == 0) {
		uint32_t version;
		if (len < 104)
			return vdi_err_set(err, VDI_R_FAIL, "not a disk image: qcow2 header is truncated");
		version = be32(h + 4);
		if (version != 2 && version != 3)
			return vdi_err_set(err, VDI_R_FAIL, "unsupported qcow2 version %u", version);
		if (be64(h + 8) != 0)
			return vdi_err_set(err, VDI_R_FAIL, "qcow2 image has a backing file: a master must be "
					   "self-contained (qemu-img convert it first)");
		if (be32(h + 32) != 0)
			return vdi_err_set(err, VDI_R_FAIL, "qcow2 image is encrypted");
		if (version == 3 && (be64(h + 72) & 4))
			return vdi_err_set(err, VDI_R_FAIL, "qcow2 image uses an external data file");
		info->format = "qcow2";
		info->virtual_size = (int64_t)be64(h + 24);
		if (info->virtual_size <= 0)
			return vdi_err_set(err, VDI_R_FAIL, "qcow2 image has no virtual size");
		return 0;
	}
	if ((len >= 4 && (memcmp(h, "KDMV", 4) == 0 || memcmp(h, "QED\0", 4) == 0)) ||
	    (len >= 8 && memcmp(h, "vhdxfile", 8) == 0) ||
	    (len >= 8 && memcmp(h, "conectix", 8) == 0) ||
	    (len >= 0x44 && be32(h + 0x40) == 0x7f10dabe) ||
	    (len >= 21 && memcmp(h, "# Disk DescriptorFile", 21) == 0))
		return vdi_err_set(err, VDI_R_FAIL, "unsupported image format (only qcow2 and raw; "
				   "convert it with qemu-img convert -O qcow2)");
	n = len < 512 ? len : 512;
	for (i = 0; i < n && text; i++) {
		size_t k = utf8_len(h + i, n - i);
		if (k > 1)
			i += k - 1; /* a UTF-8 character: text, in any language */
		else if (k == 0 || !(isprint(h[i]) || isspace(h[i])))
			text = k == 0 && n - i < 4; /* a character cut at the end of the sample */
	}
	if (text)
		return vdi_err_set(err, VDI_R_FAIL, "not a disk image: it starts with text (\"%.20s\")",
				   (const char *)h);
	info->format = "raw";
	info->virtual_size = total;
	if (total >= 0 && total % 512)
		return vdi_err_set(err, VDI_R_FAIL, "not a disk image: raw size %lld is not a whole "
				   "number of 512-byte sectors", (long long)total);
	if (total >= 0 && total < VDI_IMAGE_RAW_MIN)
		return vdi_err_set(err, VDI_R_FAIL, "not a disk image: raw size %lld is smaller than 1 MiB",
				   (long long)total);
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
		return vdi_err_set(err, VDI_R_USAGE, "invalid SHA-256 '%.80s': expected 64 hex digits", s);
	return 0;
}

/* ---- the byte pipeline: head buffer, hash, sink ---- */

/*
 * qcow2 consistency, checked as the bytes stream by (the image is never
 * read twice): the header promises an L1 table, a refcount table and the
 * refcount blocks it lists; the refcount blocks say which clusters are in
 * use.  At the end every promised table must lie within the bytes that came,
 * and so must the highest cluster in use: a qcow2 cut short (a half copy,
 * only its first 64 KiB) is refused, as qemu-img check would.
 */
struct capture {
	uint64_t off, len;      /* the region of the image */
	unsigned char *buf;     /* its bytes, as they arrive; NULL when done */
	uint64_t got;
	bool is_table;          /* the refcount table (else a refcount block) */
	uint64_t first_cluster; /* a block: the first cluster it counts */
};

struct qcheck {
	bool on;
	unsigned cluster_bits, refcount_bits;
	uint64_t need_end;      /* every promised table ends before this */
	uint64_t max_cluster;   /* highest cluster a refcount block says is in use, +1 */
	struct capture *caps;
	size_t ncaps;
};

struct pipe {
	const struct vdi_fetch *f;
	struct qcheck q;
	bool http;
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

static void
q_watch(struct qcheck *q, uint64_t off, uint64_t len, bool is_table, uint64_t first_cluster)
{
	struct capture *c;

	if (off + len > q->need_end)
		q->need_end = off + len;
	if (len > (8U << 20) || q->ncaps >= 4096)
		return; /* bounds checked only */
	q->caps = vdi_grow(q->caps, q->ncaps, sizeof(*q->caps));
	c = &q->caps[q->ncaps++];
	memset(c, 0, sizeof(*c));
	c->off = off;
	c->len = len;
	c->is_table = is_table;
	c->first_cluster = first_cluster;
	c->buf = vdi_xcalloc(1, len);
}

/* A capture has all its bytes (pos: where the stream is): learn from it. */
static void
q_done(struct qcheck *q, const unsigned char *buf, uint64_t len, bool is_table, uint64_t first, uint64_t pos)
{
	uint64_t cs = 1ULL << q->cluster_bits, per_block = cs * 8 / q->refcount_bits;
	size_t w = q->refcount_bits / 8;

	if (is_table) {
		for (uint64_t k = 0; k * 8 + 8 <= len; k++) {
			uint64_t b = be64(buf + k * 8) & ~511ULL;
			if (!b)
				continue;
			if (b < pos) {
				/* Passed already: its bytes are gone; it must at least lie within the image. */
				if (b + cs > q->need_end)
					q->need_end = b + cs;
				continue;
			}
			q_watch(q, b, cs, false, k * per_block);
		}
		return;
	}
	for (uint64_t j = per_block; j > 0; j--) {
		const unsigned char *e = buf + (j - 1) * w;
		bool used = false;
		for (size_t i = 0; i < w; i++)
			used |= e[i] != 0;
		if (used) {
			if (first + j > q->max_cluster)
				q->max_cluster = first + j;
			break;
		}
	}
}

/* Copy what a chunk of the stream (at offset pos) holds of the regions watched. */
static void
q_feed(struct qcheck *q, uint64_t pos, const unsigned char *buf, size_t len)
{
	/* A table completed in this chunk may name blocks later in the same chunk: loop by index. */
	for (size_t i = 0; i < q->ncaps; i++) {
		struct capture *c = &q->caps[i];
		unsigned char *done;
		uint64_t from, to;

		if (!c->buf)
			continue;
		from = c->off + c->got;
		to = c->off + c->len;
		if (from < pos || from >= pos + len)
			continue; /* not (or no longer) reachable in this chunk */
		if (to > pos + len)
			to = pos + len;
		memcpy(c->buf + c->got, buf + (from - pos), to - from);
		c->got += to - from;
		if (c->got < c->len)
			continue;
		done = c->buf;
		c->buf = NULL;
		/* q_done may grow q->caps: pass copies, not c. */
		q_done(q, done, c->len, c->is_table, c->first_cluster, to);
		free(done);
	}
}

/* After the header: what it promises (qcow2 header fields, big-endian). */
static void
q_start(struct qcheck *q, const unsigned char *h, size_t len)
{
	uint64_t l1_off = be64(h + 40), rt_off = be64(h + 48), cs;
	uint32_t l1_size = be32(h + 36), rt_clusters = be32(h + 56);

	q->cluster_bits = be32(h + 20);
	q->refcount_bits = be32(h + 4) >= 3 && len >= 100 ? 1U << (be32(h + 96) & 31) : 16;
	if (q->cluster_bits < 9 || q->cluster_bits > 21 || q->refcount_bits < 8 || q->refcount_bits > 64)
		return; /* unusual: left to qemu */
	q->on = true;
	cs = 1ULL << q->cluster_bits;
	q->need_end = cs; /* the header cluster */
	if (l1_size && l1_off + (uint64_t)l1_size * 8 > q->need_end)
		q->need_end = l1_off + (uint64_t)l1_size * 8;
	if (rt_clusters)
		q_watch(q, rt_off, (uint64_t)rt_clusters * cs, true, 0);
}

static void
q_clear(struct qcheck *q)
{
	for (size_t i = 0; i < q->ncaps; i++)
		free(q->caps[i].buf);
	free(q->caps);
	memset(q, 0, sizeof(*q));
}

/* At the end: every promised table and every cluster in use must have arrived. */
static int
q_finish(struct qcheck *q, uint64_t bytes, struct vdi_err *err)
{
	uint64_t cs = 1ULL << q->cluster_bits;

	if (!q->on)
		return 0;
	if (q->need_end > bytes)
		return vdi_err_set(err, VDI_R_FAIL, "qcow2 image is incomplete: it has %llu bytes, but its "
				   "tables need %llu", (unsigned long long)bytes, (unsigned long long)q->need_end);
	if (q->max_cluster && (q->max_cluster - 1) * cs >= bytes)
		return vdi_err_set(err, VDI_R_FAIL, "qcow2 image is incomplete: it has %llu bytes, but cluster "
				   "%llu (at offset %llu) is in use", (unsigned long long)bytes,
				   (unsigned long long)(q->max_cluster - 1),
				   (unsigned long long)((q->max_cluster - 1) * cs));
	return 0;
}

static int
start(struct pipe *p)
{
	if (vdi_image_probe(p->head, p->hlen, p->total, &p->info, &p->err) < 0)
		return -1;
	if (strcmp(p->info.format, "qcow2") == 0) {
		q_start(&p->q, p->head, p->hlen);
		q_feed(&p->q, 0, p->head, p->hlen);
	}
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
		return vdi_err_set(&p->err, VDI_R_FAIL, "image is larger than image_max_size (%lld bytes)",
				   (long long)p->f->max_size);
	if (p->http && p->bytes == 0 && p->total < 0)
		return vdi_err_set(&p->err, VDI_R_FAIL, "the server sent the image with no length "
				   "(Content-Length): refused, a partial download could not be told apart");
	sha256_update(&p->sha, len, buf);
	if (p->started && p->q.on)
		q_feed(&p->q, (uint64_t)p->bytes, buf, len);
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
			if (len > 0 && p->q.on)
				q_feed(&p->q, VDI_IMAGE_HEAD, buf, len);
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
		return vdi_err_set(&p->err, VDI_R_FAIL, "transfer truncated: %lld of %lld bytes",
				   (long long)p->bytes, (long long)p->total);
	if (q_finish(&p->q, (uint64_t)p->bytes, &p->err) < 0)
		return -1;
	if (strcmp(p->info.format, "raw") == 0) {
		if (p->bytes % 512)
			return vdi_err_set(&p->err, VDI_R_FAIL, "not a disk image: raw size %lld is not a "
					   "whole number of 512-byte sectors", (long long)p->bytes);
		if (p->bytes < VDI_IMAGE_RAW_MIN)
			return vdi_err_set(&p->err, VDI_R_FAIL, "not a disk image: raw size %lld is smaller than "
					   "1 MiB", (long long)p->bytes);
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
	struct stat sb;
	int fd, ret = -1;
	ssize_t n;
	off_t end;

	/* O_NONBLOCK: a FIFO must not block the open (it is refused just below). */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return vdi_err_set(&p->err, errno == ENOENT ? VDI_R_NOTFOUND : VDI_R_FAIL,
				   "cannot open image %s: %s", path, strerror(errno));
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		vdi_err_set(&p->err, VDI_R_USAGE, "image %s is %s", path,
			    S_ISDIR(sb.st_mode) ? "a folder" : "not a regular file");
		goto out;
	}
	end = lseek(fd, 0, SEEK_END);
	if (end < 0 || lseek(fd, 0, SEEK_SET) < 0) {
		vdi_err_set(&p->err, VDI_R_FAIL, "image %s is not a regular file", path);
		goto out;
	}
	p->total = end;
	if (p->f->max_size > 0 && end > p->f->max_size) {
		vdi_err_set(&p->err, VDI_R_FAIL, "image is larger than image_max_size (%lld bytes)",
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
		vdi_err_set(&p->err, VDI_R_FAIL, "reading image %s: %s", path, strerror(errno));
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
		return vdi_err_set(&p->err, status == 404 || status == 410 ? VDI_R_NOTFOUND : VDI_R_FAIL,
				   "cannot fetch %s: HTTP %ld", url, status);
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
		return vdi_err_set(&p->err, VDI_R_TEMP, "cannot fetch %s: %s", url, m);
	case CURLE_FILE_COULDNT_READ_FILE:
		return vdi_err_set(&p->err, VDI_R_NOTFOUND, "cannot fetch %s: %s", url, m);
	case CURLE_FILESIZE_EXCEEDED:
		return vdi_err_set(&p->err, VDI_R_FAIL, "image is larger than image_max_size (%lld bytes)",
				   (long long)p->f->max_size);
	case CURLE_PARTIAL_FILE:
		return vdi_err_set(&p->err, VDI_R_FAIL, "transfer truncated: %s", m);
	default:
		return vdi_err_set(&p->err, VDI_R_FAIL, "cannot fetch %s: %s", url, m);
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
		return vdi_err_set(&p->err, VDI_R_FAIL, "cannot initialise libcurl");
	c = curl_easy_init();
	if (!c) {
		vdi_err_set(&p->err, VDI_R_FAIL, "cannot initialise libcurl");
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
	if (vdi_image_source_check(src, err) < 0)
		return -1;
	p.http = strncasecmp(src, "http", 4) == 0;
	p.head = vdi_xmalloc(VDI_IMAGE_HEAD);
	sha256_init(&p.sha);
	rc = colon ? fetch_url(&p, src) : fetch_path(&p, src);
	if (rc == 0)
		rc = finish(&p, res);
	if (rc < 0)
		vdi_err_copy(err, &p.err);
	q_clear(&p.q);
	free(p.head);
	return rc;
}

int
vdi_image_source_check(const char *src, struct vdi_err *err)
{
	const char *colon = strstr(src, "://"), *path = src;
	struct stat sb;

	if (!*src)
		return vdi_err_set(err, VDI_R_USAGE, "empty image source");
	if (colon && !(strncasecmp(src, "http://", 7) == 0 || strncasecmp(src, "https://", 8) == 0 ||
		       strncasecmp(src, "file://", 7) == 0))
		return vdi_err_set(err, VDI_R_USAGE, "image URL '%.80s': only http, https and file URLs "
				   "are accepted", src);
	if (colon && strncasecmp(src, "file://", 7) != 0)
		return 0;
	if (colon) {
		path = src + 7;
		if (strncasecmp(path, "localhost/", 10) == 0)
			path += 9;
		if (*path != '/')
			return vdi_err_set(err, VDI_R_USAGE, "image URL '%.80s': a file URL names a local "
					   "absolute path (file:///PATH)", src);
	}
	if (stat(path, &sb) < 0)
		return vdi_err_set(err, errno == ENOENT ? VDI_R_NOTFOUND : VDI_R_FAIL, "cannot open image %s: %s",
				   path, strerror(errno));
	if (S_ISDIR(sb.st_mode))
		return vdi_err_set(err, VDI_R_USAGE, "image %s is a folder", path);
	if (!S_ISREG(sb.st_mode))
		return vdi_err_set(err, VDI_R_USAGE, "image %s is not a regular file (a device or a FIFO "
				   "has no length)", path);
	if (sb.st_size == 0)
		return vdi_err_set(err, VDI_R_FAIL, "not a disk image: %s is empty", path);
	return 0;
}
