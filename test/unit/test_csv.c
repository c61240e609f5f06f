/* test_csv.c - unit tests of request CSV as spreadsheets write it (lib/base/csv.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "csv.h"

/* Read every request of text; fill users (comma-joined) and errors (';'-joined). */
static void
read_all(const char *text, char *users, size_t ulen, char *errors, size_t elen)
{
	FILE *fp = fmemopen((void *)text, strlen(text), "r");
	struct vdi_csv *r = vdi_csv_open(fp);
	struct vdi_csv_request q;
	struct vdi_err err = { 0 };
	int rc;

	users[0] = errors[0] = '\0';
	while ((rc = vdi_csv_next(r, &q, &err)) != 0) {
		if (rc < 0) {
			snprintf(errors + strlen(errors), elen - strlen(errors), "%s%s", *errors ? ";" : "", err.msg);
			continue;
		}
		snprintf(users + strlen(users), ulen - strlen(users), "%s%s", *users ? "," : "", q.user);
		free(q.apps);
	}
	vdi_csv_close(r);
	fclose(fp);
}

static void
test_split(void **state)
{
	char rec[] = "a,\"b,c\",\"d\"\"e\",,\"\"", bad1[] = "\"open", bad2[] = "\"x\"y,z", many[] = "1,2,3";
	char *f[6];

	(void)state;
	assert_int_equal(vdi_csv_split(rec, f, 6), 5);
	assert_string_equal(f[0], "a");
	assert_string_equal(f[1], "b,c");
	assert_string_equal(f[2], "d\"e");
	assert_string_equal(f[3], "");
	assert_string_equal(f[4], "");
	assert_int_equal(vdi_csv_split(bad1, f, 6), -1);
	assert_int_equal(vdi_csv_split(bad2, f, 6), -1);
	assert_int_equal(vdi_csv_split(many, f, 2), -1);
}

static void
test_spreadsheet(void **state)
{
	char users[256], errors[512];

	(void)state;
	/* Excel: a BOM, a quoted header, CRLF, quoted fields. */
	read_all("\xef\xbb\xbf\"user\",\"os\",\"apps\"\r\n\"alice\",\"linux\",\"gimp;inkscape\"\r\nbob,linux,\r\n",
		 users, sizeof(users), errors, sizeof(errors));
	assert_string_equal(users, "alice,bob");
	assert_string_equal(errors, "");
	/* No header, LF, comments and blank lines; a quoted field over two lines is one record. */
	read_all("# staff\n\ncarol,linux,\"a;\nb\"\ndave\n", users, sizeof(users), errors, sizeof(errors));
	assert_string_equal(users, "carol,dave");
	assert_string_equal(errors, "");
	/* A header is only the first record. */
	read_all("erin\nuser\n", users, sizeof(users), errors, sizeof(errors));
	assert_string_equal(users, "erin,user");
}

static void
test_fields(void **state)
{
	FILE *fp;
	struct vdi_csv *r;
	struct vdi_csv_request q;
	struct vdi_err err = { 0 };
	const char *text = "u1, windows , office ; vlc ,4G,2,60G,5G\nu2,,,,,\n";

	(void)state;
	fp = fmemopen((void *)text, strlen(text), "r");
	r = vdi_csv_open(fp);
	assert_int_equal(vdi_csv_next(r, &q, &err), 1);
	assert_string_equal(q.user, "u1");
	assert_string_equal(q.os, "windows");
	assert_int_equal(q.napps, 2);
	assert_string_equal(q.apps[0], "office");
	assert_string_equal(q.apps[1], "vlc");
	assert_int_equal(q.mem, 4LL << 30);
	assert_int_equal(q.vcpus, 2);
	assert_int_equal(q.disk, 60LL << 30);
	assert_int_equal(q.home, 5LL << 30);
	assert_int_equal(q.line, 1);
	free(q.apps);
	assert_int_equal(vdi_csv_next(r, &q, &err), 1);
	assert_string_equal(q.user, "u2");
	assert_null(q.os);
	assert_int_equal(q.napps, 0);
	assert_int_equal(q.mem, -1);
	assert_int_equal(q.home, -1);
	assert_int_equal(q.line, 2);
	assert_int_equal(vdi_csv_next(r, &q, &err), 0);
	vdi_csv_close(r);
	fclose(fp);
}

static void
test_bad_records(void **state)
{
	char users[256], errors[1024];

	(void)state;
	read_all("ok1\n\"a,b\",linux\nx,linux,,1.5K\ny,linux,,,0\nz,li nux\n\"open,linux\nlast\n", users, sizeof(users),
		 errors, sizeof(errors));
	/* Each bad record says its line; the good ones go on (the open quote eats the rest). */
	assert_string_equal(users, "ok1");
	assert_non_null(strstr(errors, "line 2: invalid user name 'a,b'"));
	assert_non_null(strstr(errors, "line 3: mem"));
	assert_non_null(strstr(errors, "line 4: vcpus"));
	assert_non_null(strstr(errors, "line 5: invalid os name"));
	assert_non_null(strstr(errors, "line 6: a quoted field is not closed"));
	read_all("a,b,c,d,e,f,g,h\n", users, sizeof(users), errors, sizeof(errors));
	assert_non_null(strstr(errors, "line 1: malformed CSV"));
	assert_non_null(strstr(errors, "user,os,apps,mem,vcpus,disk,home)"));
	read_all("a,linux,,,,,lots\n", users, sizeof(users), errors, sizeof(errors));
	assert_non_null(strstr(errors, "line 1: home"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_spreadsheet),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_bad_records),
	};
	return cmocka_run_group_tests_name("csv", tests, NULL, NULL);
}
