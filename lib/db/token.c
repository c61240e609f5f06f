/* token.c - one-time form tokens (see token.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <nettle/hmac.h>

#include "token.h"

static void
hex(const unsigned char *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static int
unhex(const char *s, unsigned char *b, size_t n)
{
	for (size_t i = 0; i < 2 * n; i++) {
		int v = s[i] >= '0' && s[i] <= '9' ? s[i] - '0' : s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10 : -1;
		if (v < 0)
			return -1;
		b[i / 2] = (unsigned char)(i % 2 ? (b[i / 2] << 4) | v : v);
	}
	return s[2 * n] == '\0' ? 0 : -1;
}

/* The stored key into key: 1 read, 0 none yet, -1 error (damaged). */
static int
key_read(struct vdi_db *db, unsigned char key[VDI_TOKEN_KEY], struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	int rc, ret = -1;

	if (vdi_db_prepare(db, &st, "SELECT value FROM kv WHERE key = 'form-key'", err) < 0)
		return -1;
	rc = vdi_stmt_step(st);
	if (rc == VDI_DB_DONE)
		ret = 0;
	else if (rc != VDI_DB_ROW)
		vdi_db_fail(db, "reading the form key", err);
	else if (!vdi_stmt_text(st, 0) || unhex(vdi_stmt_text(st, 0), key, VDI_TOKEN_KEY) < 0)
		vdi_err_set(err, VDI_R_FAIL, "the form key in the VMDB is damaged");
	else
		ret = 1;
	vdi_stmt_finalize(st);
	return ret;
}

int
vdi_token_key(struct vdi_db *db, unsigned char key[VDI_TOKEN_KEY], struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	unsigned char fresh[VDI_TOKEN_KEY];
	char fresh_hex[2 * VDI_TOKEN_KEY + 1];
	int ret = -1;

	/* Every page load reads it: a read, no write lock, once it exists. */
	if ((ret = key_read(db, key, err)) != 0)
		return ret < 0 ? -1 : 0;
	ret = -1;
	if (getrandom(fresh, sizeof(fresh), 0) != (ssize_t)sizeof(fresh))
		return vdi_err_set(err, VDI_R_FAIL, "no random bytes for the form key: %s", strerror(errno));
	hex(fresh, sizeof(fresh), fresh_hex);
	/* The first one stored wins; everyone reads it back. */
	if (vdi_db_prepare(db, &st, "INSERT INTO kv (key, value) VALUES ('form-key', ?) "
			   "ON CONFLICT DO NOTHING", err) < 0)
		goto out;
	vdi_stmt_bind_text(st, 1, fresh_hex);
	if (vdi_db_step(db, st, "storing the form key", err) < 0)
		goto out;
	if (key_read(db, key, err) == 1)
		ret = 0;
	else if (!err->code)
		vdi_err_set(err, VDI_R_FAIL, "the form key was not stored");
out:
	vdi_stmt_finalize(st);
	explicit_bzero(fresh, sizeof(fresh));
	explicit_bzero(fresh_hex, sizeof(fresh_hex));
	return ret;
}

static void
mac(const unsigned char key[VDI_TOKEN_KEY], const char *user, const char *action, const char *nonce,
    long long expires, char out[2 * SHA256_DIGEST_SIZE + 1])
{
	struct hmac_sha256_ctx c;
	unsigned char d[SHA256_DIGEST_SIZE];
	char exp[32];

	snprintf(exp, sizeof(exp), "%lld", expires);
	hmac_sha256_set_key(&c, VDI_TOKEN_KEY, key);
	/* NUL-separated: no two (user, action) pairs give the same bytes. */
	hmac_sha256_update(&c, strlen(user) + 1, (const uint8_t *)user);
	hmac_sha256_update(&c, strlen(action) + 1, (const uint8_t *)action);
	hmac_sha256_update(&c, strlen(nonce) + 1, (const uint8_t *)nonce);
	hmac_sha256_update(&c, strlen(exp), (const uint8_t *)exp);
	hmac_sha256_digest(&c, sizeof(d), d);
	hex(d, sizeof(d), out);
}

int
vdi_token_make(const unsigned char key[VDI_TOKEN_KEY], const char *user, const char *action, int64_t expires,
	       char out[VDI_TOKEN_MAX], struct vdi_err *err)
{
	unsigned char r[16];
	char nonce[33], m[2 * SHA256_DIGEST_SIZE + 1];

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return vdi_err_set(err, VDI_R_FAIL, "no random bytes for a form token: %s", strerror(errno));
	hex(r, sizeof(r), nonce);
	mac(key, user, action, nonce, (long long)expires, m);
	snprintf(out, VDI_TOKEN_MAX, "%s.%lld.%s", nonce, (long long)expires, m);
	return 0;
}

int
vdi_token_check(const unsigned char key[VDI_TOKEN_KEY], const char *user, const char *action, const char *tok,
		int64_t now, struct vdi_err *err)
{
	char nonce[33], m[2 * SHA256_DIGEST_SIZE + 1];
	unsigned char got[SHA256_DIGEST_SIZE], want[SHA256_DIGEST_SIZE], scratch[16];
	const char *dot1, *dot2;
	char *end;
	long long expires;
	unsigned diff = 0;

	dot1 = strchr(tok, '.');
	dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	if (!dot1 || !dot2 || dot1 - tok != 32 || strlen(dot2 + 1) != 2 * SHA256_DIGEST_SIZE)
		return vdi_err_set(err, VDI_R_USAGE, "malformed form token");
	memcpy(nonce, tok, 32);
	nonce[32] = '\0';
	errno = 0;
	expires = strtoll(dot1 + 1, &end, 10);
	if (end != dot2 || dot1[1] < '1' || dot1[1] > '9' || errno || unhex(nonce, scratch, 16) < 0 ||
	    unhex(dot2 + 1, got, sizeof(got)) < 0)
		return vdi_err_set(err, VDI_R_USAGE, "malformed form token");
	mac(key, user, action, nonce, expires, m);
	unhex(m, want, sizeof(want));
	/* Constant time: the MAC is never leaked byte by byte. */
	for (size_t i = 0; i < sizeof(want); i++)
		diff |= (unsigned)(got[i] ^ want[i]);
	if (diff)
		return vdi_err_set(err, VDI_R_CONFLICT, "the form token is not yours or not for this form");
	if (expires < now)
		return vdi_err_set(err, VDI_R_TOKEN_EXPIRED, "the form has expired: reload the page");
	return 0;
}

int
vdi_token_spend(struct vdi_db *db, const char *tok, int64_t now, struct vdi_err *err)
{
	struct vdi_stmt *st = NULL;
	const char *dot = strchr(tok, '.');
	int rc, ret = -1;

	if (!dot)
		return vdi_err_set(err, VDI_R_USAGE, "malformed form token");
	if (vdi_db_begin(db, true, err) < 0)
		return -1;
	if (vdi_db_prepare(db, &st, "DELETE FROM form_tokens WHERE expires < ?", err) < 0)
		goto out;
	vdi_stmt_bind_int64(st, 1, now);
	if (vdi_db_step(db, st, "forgetting old form tokens", err) < 0)
		goto out;
	vdi_stmt_finalize(st);
	if (vdi_db_prepare(db, &st, "INSERT INTO form_tokens (nonce, expires) VALUES (?, ?) "
			   "ON CONFLICT DO NOTHING", err) < 0)
		goto out;
	vdi_stmt_bind_textn(st, 1, tok, (size_t)(dot - tok));
	vdi_stmt_bind_int64(st, 2, strtoll(dot + 1, NULL, 10));
	rc = vdi_stmt_step(st);
	if (rc != VDI_DB_DONE) {
		vdi_db_fail(db, "spending the form token", err);
		goto out;
	}
	if (vdi_db_changes(db) == 0) {
		vdi_err_set(err, VDI_R_TOKEN_SPENT, "this form was sent already: reload the page");
		goto out;
	}
	ret = 0;
out:
	vdi_stmt_finalize(st);
	return vdi_db_finish(db, ret, err);
}
