/* parse.c - sizes, durations and numbers from the command line (see parse.h). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "parse.h"

struct unit {
	const char *name;
	uint64_t mult;
};

#define KI 1024ULL
#define KD 1000ULL

static const struct unit size_units[] = {
	{ "", 1 }, { "B", 1 },
	{ "K", KI }, { "KiB", KI }, { "KB", KD },
	{ "M", KI * KI }, { "MiB", KI * KI }, { "MB", KD * KD },
	{ "G", KI * KI * KI }, { "GiB", KI * KI * KI }, { "GB", KD * KD * KD },
	{ "T", KI * KI * KI * KI }, { "TiB", KI * KI * KI * KI }, { "TB", KD * KD * KD * KD },
	{ "P", KI * KI * KI * KI * KI }, { "PiB", KI * KI * KI * KI * KI }, { "PB", KD * KD * KD * KD * KD },
	{ NULL, 0 },
};

static const struct unit time_units[] = {
	{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
	{ "d", 86400000 }, { "w", 604800000 }, { NULL, 0 },
};

/*
 * Parse "DIGITS[.DIGITS]UNIT" exactly: value = int * mult + frac * mult / 10^k,
 * in integer arithmetic, rejecting overflow and results that are not whole.
 */
static int
parse_scaled(const char *what, const char *s, const struct unit *units, int ci,
	     uint64_t *out, struct vdi_err *err)
{
	const char *p = s, *fp = NULL;
	uint64_t ip = 0, fnum = 0, fden = 1, mult = 0, v;
	size_t nd = 0, nf = 0;
	int i;

	if (!s || !*s)
		return vdi_err_set(err, VDI_R_USAGE, "empty %s", what);
	while (isdigit((unsigned char)*p)) {
		if (ip > (UINT64_MAX - 9) / 10)
			goto overflow;
		ip = ip * 10 + (uint64_t)(*p - '0');
		p++, nd++;
	}
	if (*p == '.') {
		fp = ++p;
		while (isdigit((unsigned char)*p)) {
			/*
			 * Up to 18 digits are kept exactly (fnum < 10^18 < 2^60);
			 * a further digit that is not 0 cannot give whole bytes
			 * (no unit is a multiple of 10^19), so it is never rounded away.
			 */
			if (nf < 18) {
				fnum = fnum * 10 + (uint64_t)(*p - '0');
				fden *= 10;
			} else if (*p != '0') {
				fnum = 1, fden = 3; /* not whole, whatever the unit */
			}
			p++, nf++;
		}
		if (nf == 0)
			goto bad;
	}
	if (nd == 0 && !fp)
		goto bad;
	for (i = 0; units[i].name; i++)
		if (ci ? strcasecmp(p, units[i].name) == 0 : strcmp(p, units[i].name) == 0)
			break;
	if (!units[i].name)
		goto bad;
	mult = units[i].mult;
	if (fnum == 1 && fden == 3)
		goto inexact;
	if (ip > UINT64_MAX / mult)
		goto overflow;
	v = ip * mult;
	if (fnum) {
		/* mult < 2^60 and fnum < 10^18 < 2^60: exact in 128 bits. */
		unsigned __int128 fv = (unsigned __int128)fnum * mult;
		if (fv % fden)
			goto inexact;
		if (v > UINT64_MAX - (uint64_t)(fv / fden))
			goto overflow;
		v += (uint64_t)(fv / fden);
	}
	*out = v;
	return 0;
inexact:
	return vdi_err_set(err, VDI_R_USAGE, "invalid %s '%.40s': not a whole number of %s",
			   what, s, units == size_units ? "bytes" : "milliseconds");
overflow:
	return vdi_err_set(err, VDI_R_USAGE, "invalid %s '%.40s': too large", what, s);
bad:
	if (*s == '-')
		return vdi_err_set(err, VDI_R_USAGE, "invalid %s '%.40s': must not be negative", what, s);
	return vdi_err_set(err, VDI_R_USAGE, "invalid %s '%.40s': expected a number with an optional unit (%s)",
			   what, s, units == size_units ? "K, M, G, T, KiB, GB, ..." : "ms, s, m, h, d, w");
}

int
vdi_size_parse(const char *s, uint64_t *out, struct vdi_err *err)
{
	uint64_t v;

	if (parse_scaled("size", s, size_units, 0, &v, err) < 0)
		return -1;
	/* Sizes end up in SQLite integers (signed 64-bit) and libvirt's KiB fields. */
	if (v > (uint64_t)INT64_MAX / 2)
		return vdi_err_set(err, VDI_R_USAGE, "invalid size '%.40s': too large", s);
	*out = v;
	return 0;
}

void
vdi_size_format(uint64_t bytes, char *buf, size_t len)
{
	static const char *const sfx[] = { "", "K", "M", "G", "T", "P", "E" };
	double v = (double)bytes;
	int i = 0;

	while (v >= 1024 && i < 6) {
		v /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(buf, len, "%llu", (unsigned long long)bytes);
	else if (v == floor(v) || v >= 100)
		snprintf(buf, len, "%.0f%s", v, sfx[i]);
	else
		snprintf(buf, len, "%.1f%s", v, sfx[i]);
}

int
vdi_duration_parse(const char *s, int64_t *ms, struct vdi_err *err)
{
	uint64_t v;

	if (parse_scaled("duration", s, time_units, 1, &v, err) < 0)
		return -1;
	if (v > (uint64_t)INT64_MAX / 1000)
		return vdi_err_set(err, VDI_R_USAGE, "invalid duration '%.40s': too large", s);
	*ms = (int64_t)v;
	return 0;
}

int
vdi_int_parse(const char *s, int64_t min, int64_t max, int64_t *out, struct vdi_err *err)
{
	char *end;
	long long v;

	if (!s || !*s)
		return vdi_err_set(err, VDI_R_USAGE, "empty number");
	if (isspace((unsigned char)*s) || *s == '+')
		goto bad;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end)
		goto bad;
	if (errno == ERANGE || v < min || v > max)
		return vdi_err_set(err, VDI_R_USAGE, "invalid number '%.40s': must be from %lld to %lld",
				   s, (long long)min, (long long)max);
	*out = v;
	return 0;
bad:
	return vdi_err_set(err, VDI_R_USAGE, "invalid number '%.40s': expected a whole number", s);
}

int
vdi_real_parse(const char *s, double min, double max, double *out, struct vdi_err *err)
{
	char *end;
	double v;

	if (!s || !*s)
		return vdi_err_set(err, VDI_R_USAGE, "empty number");
	if (isspace((unsigned char)*s) || *s == '+')
		goto bad;
	errno = 0;
	v = strtod(s, &end);
	if (*end || end == s)
		goto bad;
	/* strtod accepts "inf", "nan" and hex: only plain decimals here. */
	for (const char *p = s; *p; p++)
		if (!isdigit((unsigned char)*p) && *p != '.' && *p != '-')
			goto bad;
	if (errno == ERANGE || !isfinite(v) || v < min || v > max)
		return vdi_err_set(err, VDI_R_USAGE, "invalid number '%.40s': must be from %g to %g", s, min, max);
	*out = v;
	return 0;
bad:
	return vdi_err_set(err, VDI_R_USAGE, "invalid number '%.40s': expected a decimal number", s);
}

int
vdi_size_parse_range(const char *what, const char *s, uint64_t min, uint64_t max, int64_t *out,
		     struct vdi_err *err)
{
	char a[24], b[24];
	uint64_t v;

	if (vdi_size_parse(s, &v, err) < 0)
		return vdi_err_prefix(err, "%s", what);
	if (v < min || v > max) {
		vdi_size_format(min, a, sizeof(a));
		vdi_size_format(max, b, sizeof(b));
		return vdi_err_set(err, VDI_R_USAGE, "%s: '%.40s' is out of range (%s to %s)", what, s, a, b);
	}
	*out = (int64_t)v;
	return 0;
}

int
vdi_mem_parse(const char *s, int64_t *out, struct vdi_err *err)
{
	return vdi_size_parse_range("mem", s, 16ULL << 20, 16ULL << 40, out, err);
}

int
vdi_disk_parse(const char *s, int64_t *out, struct vdi_err *err)
{
	return vdi_size_parse_range("disk", s, 1ULL << 20, 1ULL << 50, out, err);
}

int
vdi_home_parse(const char *s, int64_t *out, struct vdi_err *err)
{
	/* The file system's minimum and vdi.conf's home_max are the library's to check (home.h). */
	return vdi_size_parse_range("home", s, 1, 1ULL << 50, out, err);
}

int
vdi_vcpus_parse(const char *s, int64_t *out, struct vdi_err *err)
{
	if (vdi_int_parse(s, 1, 1024, out, err) < 0)
		return vdi_err_prefix(err, "vcpus");
	return 0;
}

/* An ISO date or time: 1 parsed into *t, 0 not one of the forms, -1 a date that does not exist (err). */
static int
iso_parse(const char *s, int64_t *t, struct vdi_err *err)
{
	static const char *const fmts[] = { "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%MZ", "%Y-%m-%d", NULL };

	for (int i = 0; fmts[i]; i++) {
		struct tm tm, asked, back;
		const char *end;
		time_t v;

		memset(&tm, 0, sizeof(tm));
		end = strptime(s, fmts[i], &tm);
		if (!end || *end)
			continue;
		asked = tm; /* timegm() normalises its argument in place */
		v = timegm(&tm);
		tm = asked;
		/* timegm() normalises 2027-02-30 to March 2: a date that does not exist is refused. */
		if (!gmtime_r(&v, &back) || back.tm_year != tm.tm_year || back.tm_mon != tm.tm_mon ||
		    back.tm_mday != tm.tm_mday || back.tm_hour != tm.tm_hour || back.tm_min != tm.tm_min ||
		    back.tm_sec != tm.tm_sec)
			return vdi_err_set(err, VDI_R_USAGE, "'%.40s' is not a date that exists", s);
		*t = (int64_t)v;
		return 1;
	}
	return 0;
}

int
vdi_date_parse(const char *s, int64_t now, int64_t *t, struct vdi_err *err)
{
	int rc = iso_parse(s, t, err);

	if (rc < 0)
		return -1;
	if (rc == 0)
		return vdi_err_set(err, VDI_R_USAGE, "'%.40s': expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ", s);
	if (*t <= now)
		return vdi_err_set(err, VDI_R_USAGE, "'%.40s' is in the past", s);
	return 0;
}

int
vdi_time_parse(const char *s, int64_t now, int64_t *t, struct vdi_err *err)
{
	int64_t ms;
	int rc = iso_parse(s, t, err);

	if (rc < 0)
		return -1;
	if (rc == 1)
		return 0;
	if (strcmp(s, "now") == 0) {
		*t = now;
		return 0;
	}
	if (vdi_duration_parse(s, &ms, VDI_ERR_SCRATCH) == 0 && ms / 1000 <= now) {
		*t = now - ms / 1000;
		return 0;
	}
	return vdi_err_set(err, VDI_R_USAGE, "'%.40s': expected YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ, now, "
			   "or how long ago (30m, 2h, 7d)", s);
}

int
vdi_mac_prefix_parse(const char *s, unsigned char out[3], struct vdi_err *err)
{
	unsigned char b[3];

	for (int i = 0; i < 3; i++) {
		const char *p = s + i * 3;
		int hi, lo;
		if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1]) ||
		    p[2] != (i < 2 ? ':' : '\0'))
			return vdi_err_set(err, VDI_R_USAGE, "'%.40s' is not a MAC prefix like 02:56:44", s);
		hi = isdigit((unsigned char)p[0]) ? p[0] - '0' : (tolower((unsigned char)p[0]) - 'a' + 10);
		lo = isdigit((unsigned char)p[1]) ? p[1] - '0' : (tolower((unsigned char)p[1]) - 'a' + 10);
		b[i] = (unsigned char)(hi << 4 | lo);
	}
	if (b[0] & 1)
		return vdi_err_set(err, VDI_R_USAGE, "'%.40s' is a multicast prefix (its first byte must be even)", s);
	if (out)
		memcpy(out, b, 3);
	return 0;
}

void
vdi_mac_make(const char *prefix, int64_t id, char *buf, size_t len)
{
	unsigned char b[3] = { 0x02, 0x56, 0x44 };

	vdi_mac_prefix_parse(prefix, b, VDI_ERR_SCRATCH);
	snprintf(buf, len, "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], (unsigned)(id >> 16) & 0xff,
		 (unsigned)(id >> 8) & 0xff, (unsigned)id & 0xff);
}
