/*
 * iso.c - a small ISO 9660 image in memory, Rock Ridge and Joliet (see iso.h).
 *
 * Layout, in 2048-byte sectors (ECMA-119; Rock Ridge is RRIP 1.10 over
 * SUSP 1.10; Joliet is the UCS-2 level 3 supplementary descriptor):
 *   0-15  system area (zeros)
 *   16    primary volume descriptor     17  Joliet supplementary descriptor
 *   18    descriptor set terminator
 *   19-20 primary path tables (L, M)    21-22  Joliet path tables (L, M)
 *   23    primary root folder: SP, CE, PX on ".", PX and NM on each file
 *   24    Joliet root folder            25  the CE area: the ER entry
 *   26-   the files' data, each from a sector of its own
 * Both trees point at the same data.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "iso.h"

#define SEC VDI_ISO_SECTOR
#define PVD 16
#define SVD 17
#define TERM 18
#define PATH_L 19
#define PATH_M 20
#define JPATH_L 21
#define JPATH_M 22
#define ROOT 23
#define JROOT 24
#define CE_AREA 25
#define DATA 26
#define NAME_MAX_ISO 30
#define ISO_PAD 150

static const char er_id[] = "RRIP_1991A";
static const char er_des[] = "THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS";
static const char er_src[] = "PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER "
			     "IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION.";

static void
le16(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void
be16(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static void
le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void
be32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * (3 - i)));
}

/* "Both-byte orders" fields: little-endian, then big-endian. */
static void
both16(unsigned char *p, uint32_t v)
{
	le16(p, v);
	be16(p + 2, v);
}

static void
both32(unsigned char *p, uint32_t v)
{
	le32(p, v);
	be32(p + 4, v);
}

/* A string field: ASCII padded with spaces, or UCS-2BE padded with UCS-2 spaces. */
static void
text(unsigned char *p, size_t width, const char *s, int ucs2)
{
	size_t n = strlen(s);

	for (size_t i = 0; i < width; i += ucs2 ? 2 : 1) {
		size_t k = ucs2 ? i / 2 : i;
		char c = k < n ? s[k] : ' ';
		if (ucs2) {
			p[i] = 0;
			if (i + 1 < width)
				p[i + 1] = (unsigned char)c;
		} else {
			p[i] = (unsigned char)c;
		}
	}
}

static int
name_ok(const char *s, size_t max, int volid)
{
	size_t n = strlen(s);

	if (n == 0 || n > max || (!volid && (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)))
		return 0;
	for (const char *p = s; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
		      (volid ? (c >= 'A' && c <= 'Z') : (c == '.' || c == '-'))))
			return 0;
	}
	return 1;
}

/* The primary (ISO 9660 level 2) identifier of a name: "user-data" -> "USER_DATA.;1". */
static size_t
iso_ident(const char *name, unsigned char *out)
{
	const char *dot = strrchr(name, '.');
	size_t n = 0;

	for (const char *p = name; *p; p++) {
		char c = *p;
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		else if (c == '-' || (c == '.' && p != dot))
			c = '_';
		out[n++] = (unsigned char)c;
	}
	if (!dot)
		out[n++] = '.';
	out[n++] = ';';
	out[n++] = '1';
	return n;
}

/*
 * One directory record at p: its length (even).  id/idlen is the file
 * identifier; su/sulen the system use area (Rock Ridge entries).
 */
static size_t
record(unsigned char *p, uint32_t lba, uint32_t size, int dir, const unsigned char *id, size_t idlen,
       const unsigned char *su, size_t sulen, const unsigned char date[7])
{
	size_t pad = idlen % 2 == 0, len = 33 + idlen + pad + sulen;

	len += len & 1;
	p[0] = (unsigned char)len;
	both32(p + 2, lba);
	both32(p + 10, size);
	memcpy(p + 18, date, 7);
	p[25] = dir ? 2 : 0;
	both16(p + 28, 1);
	p[32] = (unsigned char)idlen;
	memcpy(p + 33, id, idlen);
	if (sulen) /* su may be NULL then, and memcpy's arguments may never be */
		memcpy(p + 33 + idlen + pad, su, sulen);
	return len;
}

static size_t
px(unsigned char *p, uint32_t mode, uint32_t links)
{
	memcpy(p, "PX", 2);
	p[2] = 36;
	p[3] = 1;
	both32(p + 4, mode);
	both32(p + 12, links);
	both32(p + 20, 0);
	both32(p + 28, 0);
	return 36;
}

static void
volume_descriptor(unsigned char *p, int joliet, const char *volid, uint32_t total, const char *stamp,
		  const unsigned char date[7])
{
	unsigned char dot = 0;

	p[0] = joliet ? 2 : 1;
	memcpy(p + 1, "CD001", 5);
	p[6] = 1;
	text(p + 8, 32, "LINUX", joliet);
	text(p + 40, 32, volid, joliet);
	both32(p + 80, total);
	if (joliet)
		memcpy(p + 88, "%/E", 3);
	both16(p + 120, 1);
	both16(p + 124, 1);
	both16(p + 128, SEC);
	both32(p + 132, 10);
	le32(p + 140, joliet ? JPATH_L : PATH_L);
	be32(p + 148, joliet ? JPATH_M : PATH_M);
	/* The root folder's record, without system use. */
	record(p + 156, joliet ? JROOT : ROOT, SEC, 1, &dot, 1, NULL, 0, date);
	text(p + 190, 128, "", joliet);
	text(p + 318, 128, "", joliet);
	text(p + 446, 128, "", joliet);
	text(p + 574, 128, "VDI-TOOLS", joliet);
	text(p + 702, 37, "", joliet);
	text(p + 739, 37, "", joliet);
	text(p + 776, 37, "", joliet);
	memcpy(p + 813, stamp, 16);
	memcpy(p + 830, stamp, 16);
	memcpy(p + 847, "0000000000000000", 16);
	memcpy(p + 864, stamp, 16);
	p[881] = 1;
}

static void
path_table(unsigned char *l, unsigned char *m, uint32_t root)
{
	l[0] = m[0] = 1;
	le32(l + 2, root);
	be32(m + 2, root);
	le16(l + 6, 1);
	be16(m + 6, 1);
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(((const struct vdi_iso_file *)a)->name, ((const struct vdi_iso_file *)b)->name);
}

/* The seven-byte directory date and the 17-character volume date of when, in UTC. */
static void
iso_dates(time_t when, unsigned char date[7], char *stamp, size_t len)
{
	struct tm tm;

	gmtime_r(&when, &tm);
	date[0] = (unsigned char)tm.tm_year;
	date[1] = (unsigned char)(tm.tm_mon + 1);
	date[2] = (unsigned char)tm.tm_mday;
	date[3] = (unsigned char)tm.tm_hour;
	date[4] = (unsigned char)tm.tm_min;
	date[5] = (unsigned char)tm.tm_sec;
	date[6] = 0;
	snprintf(stamp, len, "%04d%02d%02d%02d%02d%02d00", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		 tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* The Rock Ridge ER entry at p, in the area the root's CE points at; its length. */
static size_t
er_entry(unsigned char *p)
{
	size_t li = strlen(er_id), ld = strlen(er_des), ls = strlen(er_src);

	memcpy(p, "ER", 2);
	p[2] = (unsigned char)(8 + li + ld + ls);
	p[3] = 1;
	p[4] = (unsigned char)li;
	p[5] = (unsigned char)ld;
	p[6] = (unsigned char)ls;
	p[7] = 1;
	memcpy(p + 8, er_id, li);
	memcpy(p + 8 + li, er_des, ld);
	memcpy(p + 8 + li + ld, er_src, ls);
	return 8 + li + ld + ls;
}

/* The primary root: ".", "..", then the files in name order, with Rock Ridge names.  -1: no room. */
static int
root_dir(unsigned char *img, const struct vdi_iso_file *files, const uint32_t *lba, size_t n, size_t er,
	 const unsigned char *date)
{
	unsigned char *dir = img + ROOT * SEC, dot = 0, dotdot = 1, su[128], id[64];
	size_t s = 0, off;

	memcpy(su, "SP\x07\x01\xbe\xef\x00", 7);
	s = 7;
	memcpy(su + s, "CE\x1c\x01", 4);
	both32(su + s + 4, CE_AREA);
	both32(su + s + 12, 0);
	both32(su + s + 20, (uint32_t)er);
	s += 28;
	s += px(su + s, 040555, 2);
	off = record(dir, ROOT, SEC, 1, &dot, 1, su, s, date);
	s = px(su, 040555, 2);
	off += record(dir + off, ROOT, SEC, 1, &dotdot, 1, su, s, date);
	for (size_t i = 0; i < n; i++) {
		size_t nl = strlen(files[i].name), il = iso_ident(files[i].name, id);
		s = px(su, 0100444, 1);
		memcpy(su + s, "NM", 2);
		su[s + 2] = (unsigned char)(5 + nl);
		su[s + 3] = 1;
		su[s + 4] = 0;
		memcpy(su + s + 5, files[i].name, nl);
		s += 5 + nl;
		if (off + 34 + il + s + 1 > SEC)
			return -1;
		off += record(dir + off, lba[i], (uint32_t)files[i].len, 0, id, il, su, s, date);
	}
	return 0;
}

/* The Joliet root: the same, with UCS-2 names and no Rock Ridge. */
static void
joliet_dir(unsigned char *img, const struct vdi_iso_file *files, const uint32_t *lba, size_t n,
	   const unsigned char *date)
{
	unsigned char *dir = img + JROOT * SEC, dot = 0, dotdot = 1, id[64];
	size_t joff;

	joff = record(dir, JROOT, SEC, 1, &dot, 1, NULL, 0, date);
	joff += record(dir + joff, JROOT, SEC, 1, &dotdot, 1, NULL, 0, date);
	for (size_t i = 0; i < n; i++) {
		size_t nl = strlen(files[i].name);
		for (size_t k = 0; k < nl; k++) {
			id[2 * k] = 0;
			id[2 * k + 1] = (unsigned char)files[i].name[k];
		}
		joff += record(dir + joff, lba[i], (uint32_t)files[i].len, 0, id, 2 * nl, NULL, 0, date);
	}
}

unsigned char *
vdi_iso_build(const char *volid, const struct vdi_iso_file *in, size_t n, time_t when, size_t *len)
{
	struct vdi_iso_file *files = NULL;
	unsigned char *img = NULL, date[7];
	uint32_t total = DATA, *lba = NULL;
	size_t er;
	char stamp[64];
	int e = EINVAL;

	*len = 0;
	if (!name_ok(volid, 16, 1) || n > 16)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (!name_ok(in[i].name, NAME_MAX_ISO, 0) || in[i].len > UINT32_MAX / 2)
			goto out;
	files = malloc((n ? n : 1) * sizeof(*files));
	lba = malloc((n ? n : 1) * sizeof(*lba));
	e = ENOMEM;
	if (!files || !lba)
		goto out;
	e = EINVAL;
	if (n)
		memcpy(files, in, n * sizeof(*files));
	qsort(files, n, sizeof(*files), by_name);
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && strcmp(files[i - 1].name, files[i].name) == 0)
			goto out;
		lba[i] = total;
		total += (uint32_t)((files[i].len + SEC - 1) / SEC);
	}
	/*
	 * Then 150 sectors of zeros, as genisoimage pads: Linux reads a CD
	 * ahead past the last data sector, and without the pad the guest's
	 * kernel failed to read a seed this small.
	 */
	total += ISO_PAD;
	e = ENOMEM;
	img = calloc(total, SEC);
	if (!img)
		goto out;
	e = EINVAL;
	iso_dates(when, date, stamp, sizeof(stamp));

	volume_descriptor(img + PVD * SEC, 0, volid, total, stamp, date);
	volume_descriptor(img + SVD * SEC, 1, volid, total, stamp, date);
	img[TERM * SEC] = 255;
	memcpy(img + TERM * SEC + 1, "CD001", 5);
	img[TERM * SEC + 6] = 1;
	path_table(img + PATH_L * SEC, img + PATH_M * SEC, ROOT);
	path_table(img + JPATH_L * SEC, img + JPATH_M * SEC, JROOT);

	er = er_entry(img + CE_AREA * SEC);

	if (root_dir(img, files, lba, n, er, date) < 0)
		goto out;
	joliet_dir(img, files, lba, n, date);
	for (size_t i = 0; i < n; i++)
		if (files[i].len)
			memcpy(img + (size_t)lba[i] * SEC, files[i].data, files[i].len);
	*len = (size_t)total * SEC;
	e = 0;
out:
	free(files);
	free(lba);
	if (e) {
		free(img);
		img = NULL;
		errno = e;
	}
	return img;
}
