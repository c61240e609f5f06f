/* rfb.c - the two ends of an RFB handshake, for vm-console's relay (see rfb.h). */
#include <stdio.h>
#include <string.h>

#include <nettle/des.h>

#include "rfb.h"

static const char version38[] = "RFB 003.008\n";

void
vdi_rfb_init(struct vdi_rfb *r, const char *password)
{
	memset(r, 0, sizeof(*r));
	if (password)
		snprintf(r->password, sizeof(r->password), "%s", password);
	r->state = VDI_RFB_S_VERSION;
}

void
vdi_rfb_vnc_response(const char *password, const unsigned char challenge[16], unsigned char out[16])
{
	unsigned char key[8] = { 0 };
	struct des_ctx ctx;

	/* VNC's DES key is the password, zero-padded to 8 bytes, each byte's bits reversed. */
	for (size_t i = 0; i < 8 && password[i]; i++) {
		unsigned char c = (unsigned char)password[i], b = 0;
		for (int k = 0; k < 8; k++)
			if (c & (1u << k))
				b |= (unsigned char)(0x80u >> k);
		key[i] = b;
	}
	/* A weak key (one of 16 in 2^56) is refused by nettle: the response is then wrong and QEMU says so. */
	if (!des_set_key(&ctx, key)) {
		memset(out, 0, 16);
		goto out;
	}
	des_encrypt(&ctx, 16, out, challenge);
out:
	explicit_bzero(key, sizeof(key));
	explicit_bzero(&ctx, sizeof(ctx));
}

static int
fail(struct vdi_rfb *r, const char *why)
{
	r->state = VDI_RFB_FAILED;
	snprintf(r->why, sizeof(r->why), "%s", why);
	return -1;
}

static void
put(unsigned char *buf, size_t *len, const void *data, size_t n)
{
	memcpy(buf + *len, data, n);
	*len += n;
}

/* Drop the first n bytes of buf. */
static void
eat(unsigned char *buf, size_t *len, size_t n)
{
	memmove(buf, buf + n, *len - n);
	*len -= n;
}

/* A ProtocolVersion "RFB xxx.yyy\n" of 3.8 or later? */
static bool
version_ok(const unsigned char *v)
{
	unsigned maj, min;
	char nl;

	if (memcmp(v, "RFB ", 4) != 0 || v[11] != '\n')
		return false;
	for (int i = 4; i < 11; i++)
		if (i != 7 && (v[i] < '0' || v[i] > '9'))
			return false;
	if (sscanf((const char *)v + 4, "%3u.%3u%c", &maj, &min, &nl) != 3)
		return false;
	return maj > 3 || (maj == 3 && min >= 8);
}

/* The desktop's side, with what sbuf holds: 0 wants more, 1 authenticated, -1 failed. */
static int
server_step(struct vdi_rfb *r, struct vdi_rfb_out *o)
{
	for (;;) {
		switch (r->state) {
		case VDI_RFB_S_VERSION:
			if (r->slen < 12)
				return 0;
			if (!version_ok(r->sbuf))
				return fail(r, "the desktop does not speak RFB 3.8");
			eat(r->sbuf, &r->slen, 12);
			put(o->to_server, &o->to_server_len, version38, 12);
			r->state = VDI_RFB_S_TYPES;
			break;
		case VDI_RFB_S_TYPES: {
			size_t n;
			bool vnc = false, none = false;
			if (r->slen < 1)
				return 0;
			n = r->sbuf[0];
			if (n == 0)
				return fail(r, "the desktop refused the connection");
			if (r->slen < 1 + n)
				return 0;
			for (size_t i = 1; i <= n; i++) {
				vnc |= r->sbuf[i] == 2;
				none |= r->sbuf[i] == 1;
			}
			eat(r->sbuf, &r->slen, 1 + n);
			if (vnc && r->password[0]) {
				put(o->to_server, &o->to_server_len, "\2", 1);
				r->state = VDI_RFB_S_CHALLENGE;
			} else if (none) {
				put(o->to_server, &o->to_server_len, "\1", 1);
				r->state = VDI_RFB_S_RESULT;
			} else {
				return fail(r, "the desktop offers no security type the relay speaks");
			}
			break;
		}
		case VDI_RFB_S_CHALLENGE: {
			unsigned char resp[16];
			if (r->slen < 16)
				return 0;
			vdi_rfb_vnc_response(r->password, r->sbuf, resp);
			eat(r->sbuf, &r->slen, 16);
			put(o->to_server, &o->to_server_len, resp, 16);
			r->state = VDI_RFB_S_RESULT;
			break;
		}
		case VDI_RFB_S_RESULT:
			if (r->slen < 4)
				return 0;
			if (memcmp(r->sbuf, "\0\0\0\0", 4) != 0)
				return fail(r, "the desktop refused the console's password");
			eat(r->sbuf, &r->slen, 4);
			/* The desktop now waits for ClientInit: anything more from it is not RFB. */
			if (r->slen)
				return fail(r, "the desktop sent more than its handshake");
			put(o->to_browser, &o->to_browser_len, version38, 12);
			r->state = VDI_RFB_B_VERSION;
			return 1;
		default:
			return fail(r, "the desktop's handshake is over");
		}
	}
}

/* The browser's side, with what bbuf holds: 0 wants more, 1 relaying, -1 failed. */
static int
browser_step(struct vdi_rfb *r, struct vdi_rfb_out *o)
{
	if (r->state == VDI_RFB_B_VERSION) {
		if (r->blen < 12)
			return 0;
		if (memcmp(r->bbuf, version38, 12) != 0)
			return fail(r, "the browser does not speak RFB 3.8");
		eat(r->bbuf, &r->blen, 12);
		/* One security type, None: the relay has authenticated already. */
		put(o->to_browser, &o->to_browser_len, "\1\1", 2);
		r->state = VDI_RFB_B_TYPE;
	}
	if (r->state == VDI_RFB_B_TYPE) {
		if (r->blen < 1)
			return 0;
		if (r->bbuf[0] != 1)
			return fail(r, "the browser chose a security type it was not offered");
		eat(r->bbuf, &r->blen, 1);
		put(o->to_browser, &o->to_browser_len, "\0\0\0\0", 4);
		r->state = VDI_RFB_RELAY;
		o->pass = r->bbuf;
		o->pass_len = r->blen;
		o->pass_to_server = true;
		return 1;
	}
	return 0;
}

int
vdi_rfb_feed(struct vdi_rfb *r, bool from_browser, const unsigned char *in, size_t len, struct vdi_rfb_out *o)
{
	int rc;

	memset(o, 0, sizeof(*o));
	if (r->state == VDI_RFB_FAILED)
		return -1;
	if (r->state == VDI_RFB_RELAY) {
		o->pass = in;
		o->pass_len = len;
		o->pass_to_server = from_browser;
		return 1;
	}
	if (!from_browser) {
		if (r->state >= VDI_RFB_B_VERSION)
			return fail(r, "the desktop spoke before the browser had finished its handshake");
		if (len > sizeof(r->sbuf) - r->slen)
			return fail(r, "the desktop's handshake is too long");
		put(r->sbuf, &r->slen, in, len);
		if ((rc = server_step(r, o)) <= 0)
			return rc;
		/* Authenticated: the browser's turn, with what it may have sent early. */
		return browser_step(r, o);
	}
	if (len > sizeof(r->bbuf) - r->blen)
		return fail(r, "the browser's handshake is too long");
	put(r->bbuf, &r->blen, in, len);
	if (r->state < VDI_RFB_B_VERSION)
		return 0;
	return browser_step(r, o);
}
