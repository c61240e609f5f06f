/*
 * csv.h - user VM requests as CSV, as a spreadsheet writes it (RFC 4180).
 *
 * One request per record: user,os,apps,mem,vcpus,disk,home.  apps are separated
 * by ';'; an empty field means the default (--master, --os, the master's
 * sizes).  What spreadsheets write is accepted: a UTF-8 byte order mark,
 * CRLF or LF line ends, fields in double quotes with commas, doubled quotes
 * and line breaks inside, and a header record (first field "user", quoted
 * or not).  Blank records and records starting with '#' are skipped.
 * Pure parsing: names and sizes are checked here, nothing else is looked up.
 */
#ifndef VDI_CSV_H
#define VDI_CSV_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

#define VDI_CSV_FIELDS 7

/* One request.  The strings point into the reader's record (valid until the next call). */
struct vdi_csv_request {
	const char *user;
	const char *os;         /* NULL: not given */
	char **apps;            /* borrowed strings in an owned array: free(apps) */
	size_t napps;
	int64_t mem, vcpus, disk; /* -1: not given */
	int64_t home;           /* the home disk's size; -1: not given */
	int line;               /* the line the record starts on */
};

struct vdi_csv;

struct vdi_csv *vdi_csv_open(FILE *fp);
/*
 * The next request: 1 (q filled; free(q->apps) when done), 0 at the end,
 * -1 for a bad record (err says "line N: why", exit 2); reading goes on
 * with the next record after a bad one.
 */
int vdi_csv_next(struct vdi_csv *r, struct vdi_csv_request *q, struct vdi_err *err);
void vdi_csv_close(struct vdi_csv *r);

/*
 * Split one record (its line ends removed) in place into at most max fields.
 * Returns the number of fields, or -1 when quotes are unbalanced or there
 * are more than max fields.
 */
int vdi_csv_split(char *rec, char **f, int max);

#endif
