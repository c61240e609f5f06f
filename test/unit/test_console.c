/*
 * test_console.c - the pure parts of the browser console's relay: the RFB
 * handshake on both ends (lib/base/rfb.c), and what the relay reads of a
 * request (lib/flow/relay.c): the web server's Forwarded header and the
 * Origin check.  The relay itself is tested against real QEMU and a real
 * browser in test/console.bats.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <nettle/des.h>

#include "relay.h"
#include "rfb.h"

static const unsigned char challenge[16] = "0123456789abcdef";

/* Feed a string of n bytes; the result code. */
static int
feed(struct vdi_rfb *r, bool browser, const void *s, size_t n, struct vdi_rfb_out *o)
{
	return vdi_rfb_feed(r, browser, s, n, o);
}

/* The desktop's side, up to its challenge: version, types [2]. */
static void
to_challenge(struct vdi_rfb *r, struct vdi_rfb_out *o)
{
	assert_int_equal(feed(r, false, "RFB 003.008\n", 12, o), 0);
	assert_int_equal(o->to_server_len, 12);
	assert_memory_equal(o->to_server, "RFB 003.008\n", 12);
	assert_int_equal(feed(r, false, "\1\2", 2, o), 0);
	assert_int_equal(o->to_server_len, 1);
	assert_int_equal(o->to_server[0], 2);
}

static void
test_handshake(void **state)
{
	struct vdi_rfb r;
	struct vdi_rfb_out o;
	unsigned char key[8] = { 0 }, back[16];
	const char *pw = "aB3dE5gH";
	struct des_ctx ctx;

	(void)state;
	vdi_rfb_init(&r, pw);
	/* A browser that speaks early is kept waiting, not lost. */
	assert_int_equal(feed(&r, true, "RFB 003.008\n", 12, &o), 0);
	assert_int_equal(o.to_browser_len + o.to_server_len + o.pass_len, 0);
	to_challenge(&r, &o);
	assert_int_equal(feed(&r, false, challenge, 16, &o), 0);
	assert_int_equal(o.to_server_len, 16);
	/* The response is DES of the challenge under the password, each key byte's bits reversed. */
	for (int i = 0; i < 8; i++)
		for (int k = 0; k < 8; k++)
			if ((unsigned char)pw[i] & (1u << k))
				key[i] |= (unsigned char)(0x80u >> k);
	assert_true(des_set_key(&ctx, key));
	des_decrypt(&ctx, 16, back, o.to_server);
	assert_memory_equal(back, challenge, 16);
	/* Authenticated: the browser gets the version, and its early version is answered at once. */
	assert_int_equal(feed(&r, false, "\0\0\0\0", 4, &o), 0);
	assert_int_equal(o.to_browser_len, 14);
	assert_memory_equal(o.to_browser, "RFB 003.008\n\1\1", 14);
	/* It chooses None, with its ClientInit in the same message: that passes to the desktop. */
	assert_int_equal(feed(&r, true, "\1\1", 2, &o), 1);
	assert_int_equal(o.to_browser_len, 4);
	assert_memory_equal(o.to_browser, "\0\0\0\0", 4);
	assert_int_equal(o.pass_len, 1);
	assert_true(o.pass_to_server);
	/* Then bytes pass through untouched, each way. */
	assert_int_equal(feed(&r, false, "\0\0\2\xd0", 4, &o), 1);
	assert_int_equal(o.pass_len, 4);
	assert_false(o.pass_to_server);
	assert_int_equal(feed(&r, true, "\3", 1, &o), 1);
	assert_true(o.pass_to_server);
}

static void
test_split_bytes(void **state)
{
	struct vdi_rfb r;
	struct vdi_rfb_out o;
	const char *all = "RFB 003.008\n\1\2";

	(void)state;
	vdi_rfb_init(&r, "pw");
	/* One byte at a time, as TCP may deliver them. */
	for (size_t i = 0; i < 14; i++)
		assert_int_equal(feed(&r, false, all + i, 1, &o), 0);
	assert_int_equal(o.to_server_len, 1);
	assert_int_equal(o.to_server[0], 2);
	assert_int_equal(r.state, VDI_RFB_S_CHALLENGE);
}

static void
test_refusals(void **state)
{
	struct vdi_rfb r;
	struct vdi_rfb_out o;
	unsigned char junk[64];

	(void)state;
	vdi_rfb_init(&r, "pw");
	assert_int_equal(feed(&r, false, "RFB 003.003\n", 12, &o), -1);
	assert_non_null(strstr(r.why, "RFB 3.8"));
	/* Once failed, always failed. */
	assert_int_equal(feed(&r, false, "RFB 003.008\n", 12, &o), -1);

	vdi_rfb_init(&r, "pw");
	assert_int_equal(feed(&r, false, "HTTP/1.1 200\n", 12, &o), -1);

	vdi_rfb_init(&r, "pw");
	to_challenge(&r, &o);
	assert_int_equal(feed(&r, false, challenge, 16, &o), 0);
	assert_int_equal(feed(&r, false, "\0\0\0\1", 4, &o), -1);
	assert_non_null(strstr(r.why, "password"));

	/* A desktop that offers only a type the relay does not speak (VeNCrypt). */
	vdi_rfb_init(&r, "pw");
	assert_int_equal(feed(&r, false, "RFB 003.008\n\1\x13", 14, &o), -1);
	/* A desktop with no password offers None: that works without a password. */
	vdi_rfb_init(&r, NULL);
	assert_int_equal(feed(&r, false, "RFB 003.008\n\1\1", 14, &o), 0);
	assert_int_equal(o.to_server[12], 1);
	assert_int_equal(feed(&r, false, "\0\0\0\0", 4, &o), 0);
	assert_int_equal(r.state, VDI_RFB_B_VERSION);

	/* A browser that floods before its turn, or chooses a type it was not offered. */
	vdi_rfb_init(&r, "pw");
	memset(junk, 'x', sizeof(junk));
	assert_int_equal(feed(&r, true, junk, sizeof(junk), &o), -1);
	vdi_rfb_init(&r, NULL);
	assert_int_equal(feed(&r, false, "RFB 003.008\n\1\1\0\0\0\0", 18, &o), 0);
	assert_int_equal(feed(&r, true, "RFB 003.008\n\2", 13, &o), -1);
	/* The desktop may not speak out of turn once it is authenticated. */
	vdi_rfb_init(&r, NULL);
	assert_int_equal(feed(&r, false, "RFB 003.008\n\1\1\0\0\0\0", 18, &o), 0);
	assert_int_equal(feed(&r, false, "x", 1, &o), -1);
}

static void
test_forwarded(void **state)
{
	char u[64], a[64];

	(void)state;
	assert_int_equal(vdi_relay_forwarded_user("for=127.0.0.1;remote_user=\"alice\"", u, sizeof(u)), 0);
	assert_string_equal(u, "alice");
	/* What the browser sent comes first; the web server's element is the last. */
	assert_int_equal(vdi_relay_forwarded_user("for=1.2.3.4;remote_user=\"mallory\", for=127.0.0.1;remote_user=\"alice\"",
						  u, sizeof(u)), 0);
	assert_string_equal(u, "alice");
	assert_int_equal(vdi_relay_forwarded_user("remote_user=\"mallory\", for=127.0.0.1", u, sizeof(u)), -1);
	/* A comma inside quotes does not split elements. */
	assert_int_equal(vdi_relay_forwarded_user("for=x;remote_user=\"a, remote_user=mallory\"", u, sizeof(u)), 0);
	assert_string_equal(u, "a, remote_user=mallory");
	assert_int_equal(vdi_relay_forwarded_user("REMOTE_USER=bob;for=x", u, sizeof(u)), 0);
	assert_string_equal(u, "bob");
	assert_int_equal(vdi_relay_forwarded_user("remote_user=\"a\\\"b\"", u, sizeof(u)), 0);
	assert_string_equal(u, "a\"b");
	assert_int_equal(vdi_relay_forwarded_user("remote_user=\"unterminated", u, sizeof(u)), -1);
	assert_int_equal(vdi_relay_forwarded_user("remote_user=", u, sizeof(u)), -1);
	assert_int_equal(vdi_relay_forwarded_user("remote_user=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
						  u, sizeof(u)), -1);
	assert_int_equal(vdi_relay_forwarded_user("", u, sizeof(u)), -1);
	assert_int_equal(vdi_relay_forwarded_for("for=\"[2001:db8::1]:4711\";remote_user=x", a, sizeof(a)), 0);
	assert_string_equal(a, "2001:db8::1");
	assert_int_equal(vdi_relay_forwarded_for("for=192.0.2.7", a, sizeof(a)), 0);
	assert_string_equal(a, "192.0.2.7");
}

static void
test_origin(void **state)
{
	(void)state;
	assert_true(vdi_relay_origin_ok("https://vdi.example.org", "https://vdi.example.org", "evil"));
	assert_false(vdi_relay_origin_ok("https://evil.example", "https://vdi.example.org", "vdi.example.org"));
	assert_true(vdi_relay_origin_ok("https://vdi.example.org", "", "vdi.example.org"));
	assert_true(vdi_relay_origin_ok("HTTP://VDI.example.org:8080", NULL, "vdi.example.org:8080"));
	assert_false(vdi_relay_origin_ok("https://vdi.example.org.evil.example", "", "vdi.example.org"));
	assert_false(vdi_relay_origin_ok("null", "", "vdi.example.org"));
	assert_false(vdi_relay_origin_ok("", "", "vdi.example.org"));
	assert_false(vdi_relay_origin_ok(NULL, "", "vdi.example.org"));
	assert_false(vdi_relay_origin_ok("https://vdi.example.org", "", ""));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake),
		cmocka_unit_test(test_split_bytes),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_forwarded),
		cmocka_unit_test(test_origin),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
