/*
 * out.h - the output writer: table on a terminal, TSV in a pipe, or JSON.
 *
 * A command describes its output as records (objects with named fields,
 * in a fixed order); the writer renders them.  A list of records is a
 * table, TSV lines without a header, or a JSON array of objects with
 * stable keys.  One record on its own (`show`) is printed as "key: value"
 * lines, "key<TAB>value" lines, or one JSON object; a nested list inside
 * it (for example a host's domains) follows it as a small table, as TSV
 * lines starting with the list's key, or as a JSON array.
 *
 * TSV and JSON stream: each top-level record is written when it ends, so
 * `vm-assign | vm-start` works line by line.  Tables are aligned, so they
 * are written at vdi_out_list_end().  Strings are escaped for the format:
 * JSON per RFC 8259 (invalid UTF-8 becomes U+FFFD), TSV with \t \n \r \\,
 * tables with control characters shown as '?'.
 *
 * The writer owns copies of everything given to it.
 */
#ifndef VDI_OUT_H
#define VDI_OUT_H

#include <stdint.h>
#include <stdio.h>

enum vdi_fmt {
	VDI_FMT_AUTO = 0, /* table if the stream is a terminal, else TSV */
	VDI_FMT_TABLE,
	VDI_FMT_TSV,
	VDI_FMT_JSON,
};

struct vdi_out;

/* "table", "tsv" or "json"; -1 if none of these. */
int vdi_fmt_parse(const char *s, enum vdi_fmt *fmt);

struct vdi_out *vdi_out_new(enum vdi_fmt fmt, FILE *fp);
enum vdi_fmt vdi_out_fmt(const struct vdi_out *o);
/* Flush what is pending; returns -1 if writing failed (for example EPIPE). */
int vdi_out_free(struct vdi_out *o);

/*
 * Tables only.  keys: a list's columns, so an empty list still prints its
 * header; drop: columns to leave out, first first, while the table is wider
 * than the width set (a terminal's: ps and gh do the same).  TSV and JSON
 * always have every column.  Both lists are borrowed (static arrays).
 */
void vdi_out_table_columns(struct vdi_out *o, const char *const *keys, const char *const *drop);
void vdi_out_table_width(struct vdi_out *o, int cols);

void vdi_out_list_begin(struct vdi_out *o);
void vdi_out_list_end(struct vdi_out *o);
void vdi_out_obj_begin(struct vdi_out *o);
void vdi_out_obj_end(struct vdi_out *o);

void vdi_out_str(struct vdi_out *o, const char *key, const char *val); /* NULL: null */
void vdi_out_int(struct vdi_out *o, const char *key, int64_t val);
void vdi_out_real(struct vdi_out *o, const char *key, double val, int prec);
void vdi_out_null(struct vdi_out *o, const char *key);
void vdi_out_bool(struct vdi_out *o, const char *key, int val);
/* Bytes: a number in TSV and JSON, "1.5G" in a table. */
void vdi_out_size(struct vdi_out *o, const char *key, int64_t bytes);
/* Unix time: ISO 8601 UTC in every format; 0 is null. */
void vdi_out_time(struct vdi_out *o, const char *key, int64_t t);
/* A list of strings: a JSON array, comma-separated elsewhere. */
void vdi_out_strv(struct vdi_out *o, const char *key, char *const *v, size_t n);
/* A nested list of records inside the current record. */
void vdi_out_nested_begin(struct vdi_out *o, const char *key);
void vdi_out_nested_end(struct vdi_out *o);

/* Escaping, exposed for unit tests: append the escaped form of s to fp. */
void vdi_json_escape(FILE *fp, const char *s);
void vdi_tsv_escape(FILE *fp, const char *s);
/* For people (a table, a line of vm-log -f): control characters as '?'. */
void vdi_table_escape(FILE *fp, const char *s);

#endif
