/*
 * token.h - one-time form tokens for vm-connect (CSRF).
 *
 * A token is "NONCE.EXPIRES.MAC": 16 random bytes in hex, a Unix time,
 * and HMAC-SHA256 over user, action, nonce and expiry under a key kept in
 * the VMDB (kv 'form-key', made on first use; the VMDB is 0600).  It is
 * tied to one user and one form: another user's token, another form's or
 * an altered one fails the MAC.  vdi_token_spend() records its nonce
 * until it expires, so a replayed POST is refused.
 */
#ifndef VDI_TOKEN_H
#define VDI_TOKEN_H

#include <stdint.h>

#include "db.h"
#include "err.h"

#define VDI_TOKEN_KEY 32
#define VDI_TOKEN_MAX 128

/* The key, made (from getrandom) and stored on first use. */
int vdi_token_key(struct vdi_db *db, unsigned char key[VDI_TOKEN_KEY], struct vdi_err *err);
/* A fresh token for user's form action, valid until expires. */
int vdi_token_make(const unsigned char key[VDI_TOKEN_KEY], const char *user, const char *action, int64_t expires,
		   char out[VDI_TOKEN_MAX], struct vdi_err *err);
/* 0: tok is user's for action and not expired; -1 with a reason (code 2 malformed, 5 bad or expired). */
int vdi_token_check(const unsigned char key[VDI_TOKEN_KEY], const char *user, const char *action, const char *tok,
		    int64_t now, struct vdi_err *err);
/* Spend a checked token: 0 first use; -1 code 5 when it was used before. Forgets expired ones. */
int vdi_token_spend(struct vdi_db *db, const char *tok, int64_t now, struct vdi_err *err);

#endif
