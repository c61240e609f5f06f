/*
 * out.c - the output writer (see out.h).
 *
 * Records are kept as a small tree of nodes until they can be rendered:
 * at the end of each top-level record for TSV and JSON, at the end of the
 * list for tables (column widths need every row).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mem.h"
#include "out.h"
#include "parse.h"

enum ntype { N_NULL, N_STR, N_INT, N_REAL, N_BOOL, N_SIZE, N_TIME, N_STRV, N_LIST, N_OBJ };

struct node {
	enum ntype type;
	char *key;
	char *s;       /* N_STR; N_STRV: comma-joined */
	char **v;      /* N_STRV */
	size_t nv;
	int64_t i;
	double d;
	int prec;
	struct node *kids, *last; /* N_LIST, N_OBJ */
	struct node *next;
};

struct vdi_out {
	enum vdi_fmt fmt;
	FILE *fp;
	bool top_list;   /* the output is a list (else one record) */
	int nrec;        /* top-level records written (JSON commas) */
	struct node *stack[8];
	int depth;
	struct node *rows; /* table: buffered top-level records */
	int cols;          /* table: the terminal's width (0: no limit) */
	const char *const *keys, *const *drop; /* table: vdi_out_table_columns (borrowed) */
};

#define xcalloc vdi_xcalloc

static char *
xstrdup(const char *s)
{
	return vdi_xstrdup(s ? s : "");
}

int
vdi_fmt_parse(const char *s, enum vdi_fmt *fmt)
{
	if (strcmp(s, "table") == 0)
		*fmt = VDI_FMT_TABLE;
	else if (strcmp(s, "tsv") == 0)
		*fmt = VDI_FMT_TSV;
	else if (strcmp(s, "json") == 0)
		*fmt = VDI_FMT_JSON;
	else
		return -1;
	return 0;
}

struct vdi_out *
vdi_out_new(enum vdi_fmt fmt, FILE *fp)
{
	struct vdi_out *o = xcalloc(1, sizeof(*o));

	if (fmt == VDI_FMT_AUTO)
		fmt = isatty(fileno(fp)) ? VDI_FMT_TABLE : VDI_FMT_TSV;
	o->fmt = fmt;
	o->fp = fp;
	return o;
}

enum vdi_fmt
vdi_out_fmt(const struct vdi_out *o)
{
	return o->fmt;
}

static void
node_free(struct node *n)
{
	while (n) {
		struct node *next = n->next;
		free(n->key);
		free(n->s);
		for (size_t i = 0; i < n->nv; i++)
			free(n->v[i]);
		free(n->v);
		node_free(n->kids);
		free(n);
		n = next;
	}
}

static void
append(struct node *parent, struct node *n)
{
	if (parent->last)
		parent->last->next = n;
	else
		parent->kids = n;
	parent->last = n;
}

static struct node *
add(struct vdi_out *o, enum ntype t, const char *key)
{
	struct node *n = xcalloc(1, sizeof(*n));

	n->type = t;
	n->key = key ? xstrdup(key) : NULL;
	if (o->depth > 0)
		append(o->stack[o->depth - 1], n);
	return n;
}

/* ---- escaping ---- */

/* Length of the valid UTF-8 sequence at s, or 0. */
static size_t
utf8_len(const unsigned char *s)
{
	unsigned c = s[0];
	size_t n, i;
	unsigned cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void
vdi_json_escape(FILE *fp, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	fputc('"', fp);
	while (*s) {
		size_t n;

		switch (*s) {
		case '"': fputs("\\\"", fp); s++; continue;
		case '\\': fputs("\\\\", fp); s++; continue;
		case '\n': fputs("\\n", fp); s++; continue;
		case '\r': fputs("\\r", fp); s++; continue;
		case '\t': fputs("\\t", fp); s++; continue;
		case '\b': fputs("\\b", fp); s++; continue;
		case '\f': fputs("\\f", fp); s++; continue;
		default: break;
		}
		if (*s < 0x20 || *s == 0x7f) {
			fprintf(fp, "\\u%04x", *s);
			s++;
			continue;
		}
		n = utf8_len(s);
		if (n == 0) {
			fputs("\\ufffd", fp);
			s++;
			continue;
		}
		fwrite(s, 1, n, fp);
		s += n;
	}
	fputc('"', fp);
}

void
vdi_tsv_escape(FILE *fp, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '\t': fputs("\\t", fp); break;
		case '\n': fputs("\\n", fp); break;
		case '\r': fputs("\\r", fp); break;
		case '\\': fputs("\\\\", fp); break;
		default: fputc(*s, fp);
		}
	}
}

/* ---- scalar text ---- */

static void
fmt_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The text of a scalar for TSV (human=false) or a table (human=true). */
static char *
scalar_text(const struct node *n, bool human)
{
	char buf[64];

	switch (n->type) {
	case N_NULL: return xstrdup(human ? "-" : "");
	case N_STR: return xstrdup(n->s);
	case N_STRV: return xstrdup(human && !*n->s ? "-" : n->s);
	case N_INT: snprintf(buf, sizeof(buf), "%lld", (long long)n->i); break;
	case N_REAL: snprintf(buf, sizeof(buf), "%.*f", n->prec, n->d); break;
	case N_BOOL: return xstrdup(n->i ? (human ? "yes" : "1") : (human ? "no" : "0"));
	case N_SIZE:
		if (human)
			vdi_size_format((uint64_t)n->i, buf, sizeof(buf));
		else
			snprintf(buf, sizeof(buf), "%lld", (long long)n->i);
		break;
	case N_TIME:
		if (!n->i)
			return xstrdup(human ? "-" : "");
		fmt_time(n->i, buf, sizeof(buf));
		break;
	default: return xstrdup("");
	}
	return xstrdup(buf);
}

static void
json_value(FILE *fp, const struct node *n)
{
	char buf[64];

	switch (n->type) {
	case N_NULL: fputs("null", fp); break;
	case N_STR: vdi_json_escape(fp, n->s); break;
	case N_INT:
	case N_SIZE: fprintf(fp, "%lld", (long long)n->i); break;
	case N_REAL: fprintf(fp, "%.*f", n->prec, n->d); break;
	case N_BOOL: fputs(n->i ? "true" : "false", fp); break;
	case N_TIME:
		if (!n->i) {
			fputs("null", fp);
			break;
		}
		fmt_time(n->i, buf, sizeof(buf));
		vdi_json_escape(fp, buf);
		break;
	case N_STRV:
		fputc('[', fp);
		for (size_t i = 0; i < n->nv; i++) {
			if (i)
				fputc(',', fp);
			vdi_json_escape(fp, n->v[i]);
		}
		fputc(']', fp);
		break;
	case N_OBJ:
		fputc('{', fp);
		for (struct node *k = n->kids; k; k = k->next) {
			vdi_json_escape(fp, k->key);
			fputc(':', fp);
			json_value(fp, k);
			if (k->next)
				fputc(',', fp);
		}
		fputc('}', fp);
		break;
	case N_LIST:
		fputc('[', fp);
		for (struct node *k = n->kids; k; k = k->next) {
			json_value(fp, k);
			if (k->next)
				fputc(',', fp);
		}
		fputc(']', fp);
		break;
	}
}

void
vdi_table_escape(FILE *fp, const char *s)
{
	for (; *s; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, fp);
}

/* Display width of a UTF-8 string: one column per code point. */
static size_t
width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

/*
 * Columns to leave out so the table fits cols (0: no limit): those of drop,
 * in its order, until the rest fits.  hide[c] set for each one left out.
 */
static void
fit_columns(struct node *rows, const size_t *w, size_t ncol, int cols, const char *const *drop, bool *hide)
{
	size_t total = 0, c;
	struct node *k;

	if (cols <= 0 || !drop)
		return;
	for (c = 0; c < ncol; c++)
		total += w[c] + (c ? 2 : 0);
	for (; *drop && total > (size_t)cols; drop++) {
		for (c = 0, k = rows->kids; k; k = k->next) {
			if (k->type == N_LIST)
				continue;
			if (!hide[c] && strcmp(k->key, *drop) == 0) {
				hide[c] = true;
				total -= w[c] + 2;
			}
			c++;
		}
	}
}

/* The header alone, for an empty list whose columns were named (vdi_out_table_columns). */
static void
render_header(FILE *fp, const char *const *keys)
{
	for (const char *const *k = keys; k && *k; k++) {
		for (const char *p = *k; *p; p++)
			fputc(*p >= 'a' && *p <= 'z' ? *p - 32 : *p, fp);
		if (k[1])
			fputs("  ", fp);
	}
	if (keys && *keys)
		fputc('\n', fp);
}

/* Render a list of records (the kids of rows) as an aligned table, fitted to cols (0: any width). */
static void
render_table(FILE *fp, struct node *rows, const char *indent, int cols, const char *const *drop)
{
	size_t ncol = 0, c, *w, last;
	bool *num, *hide;
	struct node *r, *k;

	if (!rows)
		return;
	for (k = rows->kids; k; k = k->next)
		if (k->type != N_LIST)
			ncol++;
	if (!ncol)
		return;
	w = xcalloc(ncol, sizeof(*w));
	num = xcalloc(ncol, sizeof(*num));
	for (c = 0, k = rows->kids; k; k = k->next) {
		if (k->type == N_LIST)
			continue;
		w[c] = width(k->key);
		num[c] = true;
		c++;
	}
	for (r = rows; r; r = r->next) {
		for (c = 0, k = r->kids; k && c < ncol; k = k->next) {
			char *t;
			if (k->type == N_LIST)
				continue;
			t = scalar_text(k, true);
			if (width(t) > w[c])
				w[c] = width(t);
			if (k->type != N_INT && k->type != N_REAL && k->type != N_SIZE && k->type != N_NULL)
				num[c] = false;
			free(t);
			c++;
		}
	}
	hide = xcalloc(ncol, sizeof(*hide));
	fit_columns(rows, w, ncol, cols, drop, hide);
	for (last = ncol; last > 0 && hide[last - 1]; last--)
		;
	fputs(indent, fp);
	for (c = 0, k = rows->kids; k; k = k->next) {
		if (k->type == N_LIST)
			continue;
		if (!hide[c]) {
			for (const char *p = k->key; *p; p++)
				fputc(*p >= 'a' && *p <= 'z' ? *p - 32 : *p, fp);
			if (c + 1 < last)
				fprintf(fp, "%*s", (int)(w[c] - width(k->key) + 2), "");
		}
		c++;
	}
	fputc('\n', fp);
	for (r = rows; r; r = r->next) {
		fputs(indent, fp);
		for (c = 0, k = r->kids; k && c < ncol; k = k->next) {
			char *t;
			size_t tw;
			if (k->type == N_LIST)
				continue;
			if (hide[c]) {
				c++;
				continue;
			}
			t = scalar_text(k, true);
			tw = width(t);
			if (num[c])
				fprintf(fp, "%*s", (int)(w[c] - tw), "");
			vdi_table_escape(fp, t);
			if (c + 1 < last)
				fprintf(fp, "%*s", (int)(num[c] ? 2 : w[c] - tw + 2), "");
			free(t);
			c++;
		}
		fputc('\n', fp);
	}
	free(w);
	free(num);
	free(hide);
}

static void
tsv_row(FILE *fp, const struct node *obj, const char *prefix)
{
	bool first = true;

	if (prefix) {
		vdi_tsv_escape(fp, prefix);
		first = false;
	}
	for (struct node *k = obj->kids; k; k = k->next) {
		char *t;
		if (k->type == N_LIST)
			continue;
		if (!first)
			fputc('\t', fp);
		first = false;
		t = scalar_text(k, false);
		vdi_tsv_escape(fp, t);
		free(t);
	}
	fputc('\n', fp);
}

/* One record on its own, as "key: value" lines (table) or "key\tvalue" lines (TSV). */
static void
render_single(struct vdi_out *o, struct node *obj)
{
	size_t kw = 0;
	struct node *k;

	if (o->fmt == VDI_FMT_JSON) {
		json_value(o->fp, obj);
		fputc('\n', o->fp);
		return;
	}
	for (k = obj->kids; k; k = k->next)
		if (k->type != N_LIST && strlen(k->key) > kw)
			kw = strlen(k->key);
	for (k = obj->kids; k; k = k->next) {
		char *t;
		if (k->type == N_LIST)
			continue;
		t = scalar_text(k, o->fmt == VDI_FMT_TABLE);
		if (o->fmt == VDI_FMT_TABLE) {
			fprintf(o->fp, "%s:%*s", k->key, (int)(kw - strlen(k->key) + 1), "");
			vdi_table_escape(o->fp, t);
		} else {
			vdi_tsv_escape(o->fp, k->key);
			fputc('\t', o->fp);
			vdi_tsv_escape(o->fp, t);
		}
		fputc('\n', o->fp);
		free(t);
	}
	for (k = obj->kids; k; k = k->next) {
		if (k->type != N_LIST)
			continue;
		if (o->fmt == VDI_FMT_TABLE) {
			fprintf(o->fp, "\n%s:\n", k->key);
			if (k->kids)
				render_table(o->fp, k->kids, "  ", 0, NULL);
			else
				fputs("  (none)\n", o->fp);
		} else {
			for (struct node *r = k->kids; r; r = r->next)
				tsv_row(o->fp, r, k->key);
		}
	}
}

/* ---- the building API ---- */

void
vdi_out_table_columns(struct vdi_out *o, const char *const *keys, const char *const *drop)
{
	o->keys = keys;
	o->drop = drop;
}

void
vdi_out_table_width(struct vdi_out *o, int cols)
{
	o->cols = cols;
}

void
vdi_out_list_begin(struct vdi_out *o)
{
	o->top_list = true;
	if (o->fmt == VDI_FMT_JSON)
		fputc('[', o->fp);
}

void
vdi_out_list_end(struct vdi_out *o)
{
	if (o->fmt == VDI_FMT_JSON) {
		fputs(o->nrec ? "\n]\n" : "]\n", o->fp);
	} else if (o->fmt == VDI_FMT_TABLE) {
		if (o->rows)
			render_table(o->fp, o->rows, "", o->cols, o->drop);
		else
			render_header(o->fp, o->keys);
		node_free(o->rows);
		o->rows = NULL;
	}
	fflush(o->fp);
}

void
vdi_out_obj_begin(struct vdi_out *o)
{
	struct node *n = add(o, N_OBJ, NULL);

	if (o->depth < (int)(sizeof(o->stack) / sizeof(o->stack[0])))
		o->stack[o->depth++] = n;
}

void
vdi_out_obj_end(struct vdi_out *o)
{
	struct node *n;

	if (o->depth == 0)
		return;
	n = o->stack[--o->depth];
	if (o->depth > 0)
		return; /* nested: rendered with its parent */
	if (!o->top_list) {
		render_single(o, n);
		node_free(n);
		fflush(o->fp);
		return;
	}
	switch (o->fmt) {
	case VDI_FMT_JSON:
		fputs(o->nrec ? ",\n" : "\n", o->fp);
		json_value(o->fp, n);
		node_free(n);
		break;
	case VDI_FMT_TSV:
		tsv_row(o->fp, n, NULL);
		node_free(n);
		fflush(o->fp);
		break;
	default: {
		struct node **pp = &o->rows;
		while (*pp)
			pp = &(*pp)->next;
		*pp = n;
		break;
	}
	}
	o->nrec++;
}

void
vdi_out_str(struct vdi_out *o, const char *key, const char *val)
{
	struct node *n;

	if (!val) {
		vdi_out_null(o, key);
		return;
	}
	n = add(o, N_STR, key);
	n->s = xstrdup(val);
}

void
vdi_out_int(struct vdi_out *o, const char *key, int64_t val)
{
	add(o, N_INT, key)->i = val;
}

void
vdi_out_real(struct vdi_out *o, const char *key, double val, int prec)
{
	struct node *n = add(o, N_REAL, key);
	n->d = val;
	n->prec = prec;
}

void
vdi_out_null(struct vdi_out *o, const char *key)
{
	add(o, N_NULL, key);
}

void
vdi_out_bool(struct vdi_out *o, const char *key, int val)
{
	add(o, N_BOOL, key)->i = !!val;
}

void
vdi_out_size(struct vdi_out *o, const char *key, int64_t bytes)
{
	add(o, N_SIZE, key)->i = bytes;
}

void
vdi_out_time(struct vdi_out *o, const char *key, int64_t t)
{
	add(o, N_TIME, key)->i = t;
}

void
vdi_out_strv(struct vdi_out *o, const char *key, char *const *v, size_t nv)
{
	struct node *n = add(o, N_STRV, key);
	size_t len = 1, i;

	n->v = xcalloc(nv ? nv : 1, sizeof(char *));
	n->nv = nv;
	for (i = 0; i < nv; i++) {
		n->v[i] = xstrdup(v[i]);
		len += strlen(v[i]) + 1;
	}
	n->s = xcalloc(len, 1);
	for (i = 0; i < nv; i++) {
		if (i)
			strcat(n->s, ",");
		strcat(n->s, v[i]);
	}
}

void
vdi_out_nested_begin(struct vdi_out *o, const char *key)
{
	struct node *n = add(o, N_LIST, key);

	if (o->depth < (int)(sizeof(o->stack) / sizeof(o->stack[0])))
		o->stack[o->depth++] = n;
}

void
vdi_out_nested_end(struct vdi_out *o)
{
	if (o->depth > 0)
		o->depth--;
}

int
vdi_out_free(struct vdi_out *o)
{
	int ret;

	if (!o)
		return 0;
	node_free(o->rows);
	ret = (fflush(o->fp) == EOF || ferror(o->fp)) ? -1 : 0;
	free(o);
	return ret;
}
