/*
 * test_form.c - the CGI's form parser (lib/base/form.c): the bodies a
 * browser sends, every refusal, and a fuzz-style run of random and
 * mutated hostile bodies that checks what any answer must hold.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "form.h"

static int
parse(const char *body, struct vdi_form *f, char *buf, size_t len, struct vdi_err *err)
{
	snprintf(buf, len, "%s", body);
	return vdi_form_parse(buf, f, err);
}

static void
test_browser_bodies(void **state)
{
	struct vdi_form f;
	struct vdi_err err = { 0 };
	char buf[512];

	(void)state;
	assert_int_equal(parse("action=connect&token=abc.123.ff", &f, buf, sizeof(buf), &err), 0);
	assert_string_equal(f.action, "connect");
	assert_string_equal(f.token, "abc.123.ff");
	assert_null(f.master);
	assert_int_equal(parse("action=request&master=win11&mem=2G&disk=&token=t", &f, buf, sizeof(buf), &err), 0);
	assert_string_equal(f.master, "win11");
	assert_string_equal(f.mem, "2G");
	assert_string_equal(f.disk, "");
	/* Escapes and '+' decode; an empty pair ("&&") is skipped as browsers never send one. */
	assert_int_equal(parse("action=a+b%2Bc%3d%C3%A9&&master=x", &f, buf, sizeof(buf), &err), 0);
	assert_string_equal(f.action, "a b+c=\xc3\xa9");
}

static void
test_refusals(void **state)
{
	static const struct {
		const char *body, *why;
	} bad[] = {
		{ "", "no action" },
		{ "token=x", "no action" },
		{ "action", "malformed" },
		{ "action=connect&token", "malformed" },
		{ "action=connect&action=request", "twice" },
		{ "action=connect&user=bob", "should not have" },
		{ "action=connect&ACTION=x", "should not have" },
		{ "action=%", "malformed" },
		{ "action=%4", "malformed" },
		{ "action=%zz", "malformed" },
		{ "action=%-1", "malformed" },
		{ "action=%+1", "malformed" },
		{ "action=% 1", "malformed" },
		{ "action=%0x", "malformed" },
		{ "action=%00", "malformed" },
		{ "action=%0a", "malformed" },
		{ "action=%0D%0ASet-Cookie:x", "malformed" },
		{ "action=%7f", "malformed" },
		{ "action=a\tb", "malformed" },
		{ "action=a\nb", "malformed" },
		{ "action=connect&%61ction=x", "should not have" },
	};
	struct vdi_form f;
	struct vdi_err err = { 0 };
	char buf[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vdi_err_reset(&err);
		if (parse(bad[i].body, &f, buf, sizeof(buf), &err) != -1)
			fail_msg("accepted: %s", bad[i].body);
		assert_int_equal(err.code, VDI_EUSAGE);
		if (!strstr(err.msg, bad[i].why))
			fail_msg("%s: said '%s'", bad[i].body, err.msg);
	}
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint32_t
rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 11);
}

/* What any answer must hold: refused with a message, or every value clean and inside the body. */
static void
check(const char *body, size_t len)
{
	struct vdi_form f;
	struct vdi_err err = { 0 };
	char *buf = malloc(len + 1);
	char *const *v[] = { &f.action, &f.token, &f.master, &f.mem, &f.disk };

	assert_non_null(buf);
	memcpy(buf, body, len);
	buf[len] = '\0';
	if (vdi_form_parse(buf, &f, &err) < 0) {
		assert_int_equal(err.code, VDI_EUSAGE);
		assert_true(err.msg[0] != '\0');
		assert_null(strchr(err.msg, '\n'));
	} else {
		assert_non_null(f.action);
		for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
			const char *s = *v[i];
			if (!s)
				continue;
			assert_true(s >= buf && s <= buf + len);
			for (; *s; s++)
				assert_true((unsigned char)*s >= 0x20 && *s != 0x7f);
		}
	}
	free(buf);
}

static void
test_fuzz(void **state)
{
	static const char *const parts[] = {
		"action", "token", "master", "mem", "disk", "user", "=", "&", "%", "%2", "%41", "%0a", "%00",
		"%zz", "+", "connect", "request", "\x01", "\x7f", "\xff", "\xc3\xa9", "<script>", "'", "\"",
		";", "..", "/", "%25", "%%", "==", "&&", " ",
	};
	char body[600];

	(void)state;
	/* Bodies made of the pieces a hostile form would use. */
	for (int round = 0; round < 200000; round++) {
		size_t len = 0, k = rnd() % 24;
		for (size_t j = 0; j < k; j++) {
			const char *p = parts[rnd() % (sizeof(parts) / sizeof(parts[0]))];
			size_t pl = strlen(p);
			if (len + pl >= sizeof(body))
				break;
			memcpy(body + len, p, pl);
			len += pl;
		}
		body[len] = '\0';
		check(body, len);
	}
	/* Random bytes, NUL excepted (the caller refuses a body with a NUL before parsing). */
	for (int round = 0; round < 50000; round++) {
		size_t len = rnd() % 64;
		for (size_t j = 0; j < len; j++)
			body[j] = (char)(1 + rnd() % 255);
		check(body, len);
	}
}

/* Every printable string survives a browser's encoding and this decoding unchanged. */
static void
test_round_trip(void **state)
{
	static const char hex[] = "0123456789ABCDEF";
	char want[40], body[200];
	struct vdi_form f;
	struct vdi_err err = { 0 };

	(void)state;
	for (int round = 0; round < 20000; round++) {
		size_t n = rnd() % (sizeof(want) - 1), o;
		for (size_t j = 0; j < n; j++)
			want[j] = (char)(0x20 + rnd() % 95);
		want[n] = '\0';
		o = (size_t)snprintf(body, sizeof(body), "action=");
		for (size_t j = 0; j < n; j++) {
			unsigned char c = (unsigned char)want[j];
			if (c == ' ') {
				body[o++] = '+';
			} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
				   strchr("-._~", c)) {
				body[o++] = (char)c;
			} else {
				body[o++] = '%';
				body[o++] = hex[c >> 4];
				body[o++] = hex[c & 15];
			}
		}
		body[o] = '\0';
		assert_int_equal(vdi_form_parse(body, &f, &err), 0);
		assert_string_equal(f.action, want);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_browser_bodies),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_fuzz),
		cmocka_unit_test(test_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
