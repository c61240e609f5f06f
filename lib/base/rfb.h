/*
 * rfb.h - the two ends of an RFB (VNC, RFC 6143) handshake, for a relay
 * that authenticates to the desktop itself.
 *
 * vm-console relays a browser's noVNC to a session's QEMU VNC display.
 * The display's password stays in the VMDB: the relay answers QEMU's VNC
 * authentication (security type 2, DES of the challenge) with it, then
 * offers the browser security type None, and from then on passes bytes
 * through untouched.  The browser holds only its one-time console ticket.
 *
 * Only version 3.8 is spoken, on both ends (QEMU and noVNC both speak it).
 * The caller owns the struct; nothing here allocates, and nothing here
 * reads the network: the caller feeds what it received and sends what it
 * is given.  A server side that needs none (a display without a password)
 * works too.  libvncclient was not used: it is a whole viewer, not a
 * relay, and these 150 lines are the handshake alone.
 */
#ifndef VDI_RFB_H
#define VDI_RFB_H

#include <stdbool.h>
#include <stddef.h>

enum vdi_rfb_state {
	VDI_RFB_S_VERSION,    /* waiting for the desktop's ProtocolVersion */
	VDI_RFB_S_TYPES,      /* its security types */
	VDI_RFB_S_CHALLENGE,  /* its VNC authentication challenge */
	VDI_RFB_S_RESULT,     /* its SecurityResult */
	VDI_RFB_B_VERSION,    /* the browser's ProtocolVersion */
	VDI_RFB_B_TYPE,       /* the browser's choice of security type */
	VDI_RFB_RELAY,        /* done: bytes pass through */
	VDI_RFB_FAILED,
};

struct vdi_rfb {
	enum vdi_rfb_state state;
	char password[9];          /* at most 8 characters: all VNC takes */
	unsigned char sbuf[64];    /* the desktop's bytes of a step not yet whole */
	size_t slen;
	unsigned char bbuf[16];    /* the browser's, likewise (and any it sent early) */
	size_t blen;
	char why[160];             /* with VDI_RFB_FAILED: what went wrong, one line */
};

/* What one feed asks the caller to send, and the bytes that pass through. */
struct vdi_rfb_out {
	unsigned char to_server[32];
	size_t to_server_len;
	unsigned char to_browser[32];
	size_t to_browser_len;
	/* After the handshake: bytes of this feed (or buffered early from the browser) to pass on. */
	const unsigned char *pass;
	size_t pass_len;
	bool pass_to_server;       /* pass is the browser's, for the desktop (else the desktop's, for the browser) */
};

void vdi_rfb_init(struct vdi_rfb *r, const char *password);

/*
 * Feed bytes the desktop (from_browser false) or the browser sent.  o gets
 * what to send each way, in that order: first to the server, then to the
 * browser, then pass (to the other end).  0 still handshaking, 1 relaying
 * from now on, -1 failed (r->why).  Bytes the browser sends before the
 * desktop is authenticated are kept (up to 16) and handled in turn.
 */
int vdi_rfb_feed(struct vdi_rfb *r, bool from_browser, const unsigned char *in, size_t len,
		 struct vdi_rfb_out *o);

/* The 16-byte VNC authentication response to challenge under password (DES, keys bit-reversed). */
void vdi_rfb_vnc_response(const char *password, const unsigned char challenge[16], unsigned char out[16]);

#endif
