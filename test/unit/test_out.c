/* test_out.c - unit tests of the output writer and its escaping (lib/base/out.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "out.h"

/* Render with fn into a string. */
static char *
capture(void (*fn)(FILE *, const char *), const char *in)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	fn(fp, in);
	fclose(fp);
	return buf;
}

static void
json_is(const char *in, const char *want)
{
	char *got = capture(vdi_json_escape, in);
	assert_string_equal(got, want);
	free(got);
}

static void
test_json_escape(void **state)
{
	(void)state;
	json_is("plain", "\"plain\"");
	json_is("a\"b\\c", "\"a\\\"b\\\\c\"");
	json_is("line\nnext\ttab\r", "\"line\\nnext\\ttab\\r\"");
	json_is("\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"");
	json_is("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
	/* Invalid UTF-8: a lone continuation byte, an overlong form, a surrogate, a truncated sequence. */
	json_is("a\x80z", "\"a\\ufffdz\"");
	json_is("\xc0\xaf", "\"\\ufffd\\ufffd\"");
	json_is("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");
	json_is("\xe2\x82", "\"\\ufffd\\ufffd\"");
}

static void
test_tsv_escape(void **state)
{
	char *got;

	(void)state;
	got = capture(vdi_tsv_escape, "a\tb\nc\\d\re");
	assert_string_equal(got, "a\\tb\\nc\\\\d\\re");
	free(got);
}

static char *
render(enum vdi_fmt fmt, int single)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);
	struct vdi_out *o = vdi_out_new(fmt, fp);
	char *tags[] = { "gpu", "ssd" };

	if (!single)
		vdi_out_list_begin(o);
	for (int i = 0; i < (single ? 1 : 2); i++) {
		vdi_out_obj_begin(o);
		vdi_out_str(o, "name", i ? "h2" : "h1\tx");
		vdi_out_int(o, "sessions", i ? 12 : 3);
		vdi_out_size(o, "mem", 3LL << 29);
		vdi_out_null(o, "error");
		vdi_out_strv(o, "tags", tags, i ? 0 : 2);
		if (single) {
			vdi_out_nested_begin(o, "doms");
			vdi_out_obj_begin(o);
			vdi_out_str(o, "dom", "d1");
			vdi_out_bool(o, "ours", 1);
			vdi_out_obj_end(o);
			vdi_out_nested_end(o);
		}
		vdi_out_obj_end(o);
	}
	if (!single)
		vdi_out_list_end(o);
	assert_int_equal(vdi_out_free(o), 0);
	fclose(fp);
	return buf;
}

static void
test_list_formats(void **state)
{
	char *s;

	(void)state;
	s = render(VDI_FMT_JSON, 0);
	assert_string_equal(s, "[\n"
			    "{\"name\":\"h1\\tx\",\"sessions\":3,\"mem\":1610612736,\"error\":null,\"tags\":[\"gpu\",\"ssd\"]},\n"
			    "{\"name\":\"h2\",\"sessions\":12,\"mem\":1610612736,\"error\":null,\"tags\":[]}\n"
			    "]\n");
	free(s);
	s = render(VDI_FMT_TSV, 0);
	assert_string_equal(s, "h1\\tx\t3\t1610612736\t\tgpu,ssd\n"
			    "h2\t12\t1610612736\t\t\n");
	free(s);
	s = render(VDI_FMT_TABLE, 0);
	assert_string_equal(s, "NAME  SESSIONS  MEM   ERROR  TAGS\n"
			    "h1?x         3  1.5G      -  gpu,ssd\n"
			    "h2          12  1.5G      -  -\n");
	free(s);
}

static void
test_single_formats(void **state)
{
	char *s;

	(void)state;
	s = render(VDI_FMT_JSON, 1);
	assert_string_equal(s, "{\"name\":\"h1\\tx\",\"sessions\":3,\"mem\":1610612736,\"error\":null,"
			    "\"tags\":[\"gpu\",\"ssd\"],\"doms\":[{\"dom\":\"d1\",\"ours\":true}]}\n");
	free(s);
	s = render(VDI_FMT_TSV, 1);
	assert_string_equal(s, "name\th1\\tx\nsessions\t3\nmem\t1610612736\nerror\t\ntags\tgpu,ssd\ndoms\td1\t1\n");
	free(s);
	s = render(VDI_FMT_TABLE, 1);
	assert_string_equal(s, "name:     h1?x\nsessions: 3\nmem:      1.5G\nerror:    -\ntags:     gpu,ssd\n"
			    "\ndoms:\n  DOM  OURS\n  d1   yes\n");
	free(s);
}

static void
test_empty_list(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);
	struct vdi_out *o = vdi_out_new(VDI_FMT_JSON, fp);

	(void)state;
	vdi_out_list_begin(o);
	vdi_out_list_end(o);
	vdi_out_free(o);
	fclose(fp);
	assert_string_equal(buf, "[]\n");
	free(buf);
}

static void
test_fmt_parse(void **state)
{
	enum vdi_fmt f;

	(void)state;
	assert_int_equal(vdi_fmt_parse("json", &f), 0);
	assert_int_equal(f, VDI_FMT_JSON);
	assert_int_equal(vdi_fmt_parse("tsv", &f), 0);
	assert_int_equal(vdi_fmt_parse("table", &f), 0);
	assert_int_equal(vdi_fmt_parse("JSON", &f), -1);
	assert_int_equal(vdi_fmt_parse("", &f), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_escape),
		cmocka_unit_test(test_tsv_escape),
		cmocka_unit_test(test_list_formats),
		cmocka_unit_test(test_single_formats),
		cmocka_unit_test(test_empty_list),
		cmocka_unit_test(test_fmt_parse),
	};
	return cmocka_run_group_tests_name("out", tests, NULL, NULL);
}
