/* csv.c - requests as RFC 4180 CSV (see csv.h). */
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "csv.h"
#include "mem.h"
#include "names.h"
#include "parse.h"
#include "strv.h"

#define RECORD_MAX (64 * 1024)

struct vdi_csv {
	FILE *fp;
	char *rec;      /* the current record, lines joined */
	size_t len, cap;
	int line;       /* lines read so far */
	bool started;   /* the first record was seen (BOM, header) */
};

struct vdi_csv *
vdi_csv_open(FILE *fp)
{
	struct vdi_csv *r = vdi_xcalloc(1, sizeof(*r));

	r->fp = fp;
	return r;
}

void
vdi_csv_close(struct vdi_csv *r)
{
	if (!r)
		return;
	free(r->rec);
	free(r);
}

int
vdi_csv_split(char *rec, char **f, int max)
{
	int n = 0;
	char *p = rec, *w;

	for (;;) {
		if (n == max)
			return -1;
		f[n++] = w = p;
		if (*p == '"') {
			p++;
			for (;;) {
				if (!*p)
					return -1;
				if (*p == '"' && p[1] == '"') {
					*w++ = '"';
					p += 2;
				} else if (*p == '"') {
					p++;
					break;
				} else {
					*w++ = *p++;
				}
			}
			/* Spaces after the closing quote are tolerated, nothing else. */
			while (*p == ' ' || *p == '\t')
				p++;
			if (*p && *p != ',')
				return -1;
		} else {
			while (*p && *p != ',')
				*w++ = *p++;
		}
		if (!*p) {
			*w = '\0';
			return n;
		}
		*w = '\0';
		p++;
	}
}

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Are the quotes of rec balanced (not inside a quoted field at its end)? */
static bool
balanced(const char *rec)
{
	bool in = false;

	for (const char *p = rec; *p; p++)
		if (*p == '"')
			in = !in;
	return !in;
}

/* Read one record (one line, or more while a quoted field is open): 1, 0 at end, -1 too long. */
static int
read_record(struct vdi_csv *r)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int ret = 0;

	r->len = 0;
	while ((n = getline(&line, &cap, r->fp)) > 0) {
		r->line++;
		/* Line ends: LF or CRLF; the line break inside a quoted field is kept as LF. */
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		if (n > 0 && line[n - 1] == '\r')
			line[--n] = '\0';
		if (r->len + (size_t)n + 2 > RECORD_MAX) {
			ret = -1;
			break;
		}
		if (r->len + (size_t)n + 2 > r->cap) {
			r->cap = r->len + (size_t)n + 2 + 256;
			r->rec = vdi_grow(r->rec, r->cap - 1, 1);
		}
		if (r->len)
			r->rec[r->len++] = '\n';
		memcpy(r->rec + r->len, line, (size_t)n + 1);
		r->len += (size_t)n;
		ret = 1;
		if (balanced(r->rec))
			break;
	}
	free(line);
	return ret;
}

int
vdi_csv_next(struct vdi_csv *r, struct vdi_csv_request *q, struct vdi_err *err)
{
	char *f[VDI_CSV_FIELDS] = { 0 }, *rec;
	int n, rc, first;

	memset(q, 0, sizeof(*q));
	q->mem = q->vcpus = q->disk = q->home = -1;
	for (;;) {
		first = r->line + 1;
		rc = read_record(r);
		if (rc == 0)
			return 0;
		q->line = first;
		if (rc < 0)
			return vdi_err_set(err, VDI_R_USAGE, "line %d: record longer than %d bytes", first, RECORD_MAX);
		rec = r->rec;
		/* Excel and Notepad start UTF-8 files with a byte order mark. */
		if (!r->started && strncmp(rec, "\xef\xbb\xbf", 3) == 0)
			rec += 3;
		if (!*trim(rec) || *trim(rec) == '#') {
			r->started = true;
			continue;
		}
		if (!balanced(rec))
			return vdi_err_set(err, VDI_R_USAGE, "line %d: a quoted field is not closed", first);
		n = vdi_csv_split(rec, f, VDI_CSV_FIELDS);
		if (n < 1)
			return vdi_err_set(err, VDI_R_USAGE, "line %d: malformed CSV (quotes, or more than %d "
					   "fields: user,os,apps,mem,vcpus,disk,home)", first, VDI_CSV_FIELDS);
		for (int i = 0; i < n; i++)
			f[i] = trim(f[i]);
		if (!r->started && strcasecmp(f[0], "user") == 0) {
			r->started = true;
			continue; /* the header */
		}
		r->started = true;
		break;
	}
	q->user = f[0];
	if (vdi_name_check("user", q->user, err) < 0)
		goto bad;
	if (n > 1 && *f[1]) {
		if (vdi_name_check("os", f[1], err) < 0)
			goto bad;
		q->os = f[1];
	}
	if (n > 2 && *f[2]) {
		for (char *tok, *save = NULL, *s = f[2]; (tok = strtok_r(s, ";", &save)); s = NULL) {
			tok = trim(tok);
			if (!*tok)
				continue;
			if (vdi_name_check("app", tok, err) < 0)
				goto bad;
			vdi_strv_push(&q->apps, &q->napps, tok);
		}
	}
	if ((n > 3 && *f[3] && vdi_mem_parse(f[3], &q->mem, err) < 0) ||
	    (n > 4 && *f[4] && vdi_vcpus_parse(f[4], &q->vcpus, err) < 0) ||
	    (n > 5 && *f[5] && vdi_disk_parse(f[5], &q->disk, err) < 0) ||
	    (n > 6 && *f[6] && vdi_home_parse(f[6], &q->home, err) < 0))
		goto bad;
	return 1;
bad:
	free(q->apps);
	q->apps = NULL;
	q->napps = 0;
	return vdi_err_prefix(err, "line %d", first);
}
