/* SPDX-License-Identifier: Apache-2.0 */
/* Handoff message payloads: strict encoders and cursor-based parsers. */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "keyd/cursor.h"
#include "keyd/error.h"
#include "keyd/handoff.h"

/* A growable output buffer, wiped on free (no message carries secrets today,
 * but an encoder should not be the place that decides). */
struct obuf {
	uint8_t *p;
	size_t len, cap;
	int err;
};

static void ob_put(struct obuf *b, const void *d, size_t n)
{
	if (b->err)
		return;
	if (b->len + n > KD_FRAME_PAYLOAD_MAX) {
		b->err = kd_fail(KD_EINVAL, "message exceeds the frame cap");
		return;
	}
	if (b->len + n > b->cap) {
		size_t cap = KD_FRAME_PAYLOAD_MAX;
		uint8_t *np = malloc(cap);

		if (!np) {
			b->err = kd_fail(KD_ENOMEM, "out of memory (handoff message)");
			return;
		}
		if (b->p) {
			memcpy(np, b->p, b->len);
			kd_wipe(b->p, b->len);
			free(b->p);
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
}

static void ob_u8(struct obuf *b, uint8_t v)
{
	ob_put(b, &v, 1);
}
static void ob_u16(struct obuf *b, uint16_t v)
{
	uint8_t t[2];

	kd_put_le16(t, v);
	ob_put(b, t, 2);
}
static void ob_u32(struct obuf *b, uint32_t v)
{
	uint8_t t[4];

	kd_put_le32(t, v);
	ob_put(b, t, 4);
}

static int ob_finish(struct obuf *b, uint8_t **ret, size_t *ret_len)
{
	if (b->err) {
		if (b->p) {
			kd_wipe(b->p, b->len);
			free(b->p);
		}
		return b->err;
	}
	*ret = b->p;
	*ret_len = b->len;
	return 0;
}

int kd_hello_encode(const struct kd_hello *h, uint8_t **ret, size_t *ret_len)
{
	struct obuf b = {0};

	ob_u8(&b, h->role);
	ob_u8(&b, 0);
	ob_u16(&b, 0);
	ob_u32(&b, (uint32_t)h->report_len);
	ob_put(&b, h->report, h->report_len);
	ob_u32(&b, (uint32_t)h->certs_len);
	ob_put(&b, h->certs, h->certs_len);
	ob_u32(&b, (uint32_t)h->manifest_len);
	ob_put(&b, h->manifest, h->manifest_len);
	ob_u32(&b, (uint32_t)h->kex_len);
	ob_put(&b, h->kex, h->kex_len);
	return ob_finish(&b, ret, ret_len);
}

static int get_blob(struct kd_cursor *c, const uint8_t **p, size_t *n, const char *what)
{
	uint32_t len;
	size_t save = c->off;

	if (kd_cur_u32(c, &len))
		return kd_fail(KD_ETRUNC, "HELLO truncated at the %s length", what);
	if (kd_cur_ptr(c, p, len)) {
		c->off = save;
		return kd_fail(KD_ETRUNC, "HELLO %s of %u bytes is truncated", what, len);
	}
	*n = len;
	return 0;
}

int kd_hello_parse(const uint8_t *buf, size_t len, struct kd_hello *ret)
{
	struct kd_cursor c;
	struct kd_hello h;
	int r;

	memset(&h, 0, sizeof(h));
	kd_cur_init(&c, buf, len);
	if (kd_cur_u8(&c, &h.role))
		return kd_fail(KD_ETRUNC, "HELLO is empty");
	if (h.role != KD_ROLE_OLD && h.role != KD_ROLE_NEW)
		return kd_fail(KD_EMALFORMED, "HELLO role byte 0x%02x is neither O nor N", h.role);
	if (kd_cur_zero(&c, 3))
		return kd_fail(KD_ERESERVED, "HELLO reserved bytes are not zero");
	if ((r = get_blob(&c, &h.report, &h.report_len, "report")) ||
	    (r = get_blob(&c, &h.certs, &h.certs_len, "certificate table")) ||
	    (r = get_blob(&c, &h.manifest, &h.manifest_len, "manifest")) ||
	    (r = get_blob(&c, &h.kex, &h.kex_len, "handoff key")))
		return r;
	if (kd_cur_expect_end(&c))
		return kd_fail(KD_EMALFORMED, "HELLO has %zu trailing bytes", kd_cur_remaining(&c));
	if (h.report_len != KD_REPORT_SIZE)
		return kd_fail(KD_EMALFORMED, "HELLO report is %zu bytes, not %u", h.report_len,
			       KD_REPORT_SIZE);
	if (h.manifest_len == 0 || h.manifest_len > KD_MANIFEST_MAX_BYTES)
		return kd_fail(KD_EMALFORMED, "HELLO manifest size %zu outside 1..%u",
			       h.manifest_len, KD_MANIFEST_MAX_BYTES);
	/* Each side vouches for exactly one key: N's X25519, O's Ed25519. */
	if (h.kex_len != KD_KEX_PUB_LEN)
		return kd_fail(KD_EMALFORMED, "HELLO of %c carries a %zu-byte handoff key, not %u",
			       h.role, h.kex_len, KD_KEX_PUB_LEN);
	*ret = h;
	return 0;
}

int kd_handoff_binding(const uint8_t exporter[KD_HANDOFF_EXPORTER_LEN], const uint8_t *kex,
		       size_t kex_len, uint8_t out[KD_HANDOFF_EXPORTER_LEN])
{
	EVP_MD_CTX *md;
	uint8_t l = (uint8_t)kex_len;
	unsigned n = 0;
	int ok;

	if (kex_len != 0 && kex_len != KD_KEX_PUB_LEN)
		return kd_fail(KD_EINVAL, "binding: key-agreement key of %zu bytes", kex_len);
	md = EVP_MD_CTX_new();
	ok = md && EVP_DigestInit_ex(md, EVP_sha384(), NULL) == 1 &&
	     EVP_DigestUpdate(md, KD_HANDOFF_BIND_CONTEXT, strlen(KD_HANDOFF_BIND_CONTEXT)) == 1 &&
	     EVP_DigestUpdate(md, exporter, KD_HANDOFF_EXPORTER_LEN) == 1 &&
	     EVP_DigestUpdate(md, &l, 1) == 1 && (!kex_len || EVP_DigestUpdate(md, kex, kex_len) == 1) &&
	     EVP_DigestFinal_ex(md, out, &n) == 1 && n == KD_HANDOFF_EXPORTER_LEN;
	EVP_MD_CTX_free(md);
	return ok ? 0 : kd_fail(KD_ECRYPTO, "SHA-384 of the session binding failed");
}

/* Canonical lowercase UUID text: 8-4-4-4-12 hex. */
static int uuid_ok(const char *u)
{
	for (size_t i = 0; i < KD_UUID_LEN; i++) {
		char ch = u[i];

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (ch != '-')
				return 0;
		} else if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) {
			return 0;
		}
	}
	return 1;
}

static int get_uuid(struct kd_cursor *c, char out[KD_UUID_LEN + 1])
{
	char tmp[KD_UUID_LEN + 1];

	if (kd_cur_bytes(c, tmp, KD_UUID_LEN))
		return kd_fail(KD_ETRUNC, "message truncated in a volume UUID");
	tmp[KD_UUID_LEN] = '\0';
	if (!uuid_ok(tmp))
		return kd_fail(KD_EMALFORMED, "volume UUID is not canonical lowercase text");
	memcpy(out, tmp, sizeof(tmp));
	return 0;
}

static int get_count(struct kd_cursor *c, const char *what, uint16_t *n)
{
	if (kd_cur_u16(c, n))
		return kd_fail(KD_ETRUNC, "%s is empty", what);
	if (*n == 0 || *n > KD_HANDOFF_MAX_VOLUMES)
		return kd_fail(KD_EMALFORMED, "%s lists %u volumes (1..%u allowed)", what, *n,
			       KD_HANDOFF_MAX_VOLUMES);
	return 0;
}

int kd_volumes_encode(const char (*uuids)[KD_UUID_LEN + 1], size_t n, uint8_t **ret,
		      size_t *ret_len)
{
	struct obuf b = {0};

	if (n == 0 || n > KD_HANDOFF_MAX_VOLUMES)
		return kd_fail(KD_EINVAL, "1..%u volumes per handoff", KD_HANDOFF_MAX_VOLUMES);
	ob_u16(&b, (uint16_t)n);
	for (size_t i = 0; i < n; i++) {
		if (strlen(uuids[i]) != KD_UUID_LEN || !uuid_ok(uuids[i]))
			b.err = b.err ? b.err : kd_fail(KD_EINVAL, "bad volume UUID");
		ob_put(&b, uuids[i], KD_UUID_LEN);
	}
	return ob_finish(&b, ret, ret_len);
}

int kd_volumes_parse(const uint8_t *buf, size_t len, char (*ret)[KD_UUID_LEN + 1], size_t *ret_n)
{
	char tmp[KD_HANDOFF_MAX_VOLUMES][KD_UUID_LEN + 1];
	struct kd_cursor c;
	uint16_t n;
	int r;

	kd_cur_init(&c, buf, len);
	if ((r = get_count(&c, "VOLUMES", &n)))
		return r;
	for (size_t i = 0; i < n; i++) {
		if ((r = get_uuid(&c, tmp[i])))
			return r;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(tmp[i], tmp[j]))
				return kd_fail(KD_EMALFORMED, "VOLUMES lists a UUID twice");
	}
	if (kd_cur_expect_end(&c))
		return kd_fail(KD_EMALFORMED, "VOLUMES has %zu trailing bytes", kd_cur_remaining(&c));
	memcpy(ret, tmp, n * sizeof(tmp[0]));
	*ret_n = n;
	return 0;
}

int kd_accept_encode(const char (*uuids)[KD_UUID_LEN + 1], size_t n, uint8_t **ret,
		     size_t *ret_len)
{
	return kd_volumes_encode(uuids, n, ret, ret_len);
}

int kd_accept_parse(const uint8_t *buf, size_t len, const char (*uuids)[KD_UUID_LEN + 1],
		    size_t n)
{
	struct kd_cursor c;
	uint16_t cnt;
	int r;

	kd_cur_init(&c, buf, len);
	if ((r = get_count(&c, "ACCEPT", &cnt)))
		return r;
	if (cnt != n)
		return kd_fail(KD_EPROTO, "ACCEPT answers %u volumes, %zu were offered", cnt, n);
	for (size_t i = 0; i < n; i++) {
		char u[KD_UUID_LEN + 1];

		if ((r = get_uuid(&c, u)))
			return r;
		if (strcmp(u, uuids[i]))
			return kd_fail(KD_EPROTO, "ACCEPT entry %zu is for another volume", i);
	}
	if (kd_cur_expect_end(&c))
		return kd_fail(KD_EMALFORMED, "ACCEPT has %zu trailing bytes", kd_cur_remaining(&c));
	return 0;
}

int kd_done_encode(const char (*uuids)[KD_UUID_LEN + 1], const uint32_t *slots, size_t n,
		   uint8_t **ret, size_t *ret_len)
{
	struct obuf b = {0};

	if (n == 0 || n > KD_HANDOFF_MAX_VOLUMES)
		return kd_fail(KD_EINVAL, "1..%u volumes per handoff", KD_HANDOFF_MAX_VOLUMES);
	ob_u16(&b, (uint16_t)n);
	for (size_t i = 0; i < n; i++) {
		ob_put(&b, uuids[i], KD_UUID_LEN);
		ob_u32(&b, slots[i]);
	}
	return ob_finish(&b, ret, ret_len);
}

int kd_done_parse(const uint8_t *buf, size_t len, const char (*uuids)[KD_UUID_LEN + 1], size_t n,
		  uint32_t *ret_slots)
{
	uint32_t slots[KD_HANDOFF_MAX_VOLUMES];
	struct kd_cursor c;
	uint16_t cnt;
	int r;

	kd_cur_init(&c, buf, len);
	if ((r = get_count(&c, "DONE", &cnt)))
		return r;
	if (cnt != n)
		return kd_fail(KD_EPROTO, "DONE reports %u volumes, %zu were handed over", cnt, n);
	for (size_t i = 0; i < n; i++) {
		char u[KD_UUID_LEN + 1];

		if ((r = get_uuid(&c, u)))
			return r;
		if (strcmp(u, uuids[i]))
			return kd_fail(KD_EPROTO, "DONE entry %zu is for another volume", i);
		if (kd_cur_u32(&c, &slots[i]))
			return kd_fail(KD_ETRUNC, "DONE truncated");
	}
	if (kd_cur_expect_end(&c))
		return kd_fail(KD_EMALFORMED, "DONE has %zu trailing bytes", kd_cur_remaining(&c));
	memcpy(ret_slots, slots, n * sizeof(slots[0]));
	return 0;
}

int kd_handoff_stall_parse(const char *s, enum kd_handoff_stall *ret)
{
	static const char *const names[] = {"none", "tls", "hello", "volumes", "accept"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(s, names[i])) {
			*ret = (enum kd_handoff_stall)i;
			return 0;
		}
	return kd_fail(KD_EINVAL, "unknown stall point '%s' (tls, hello, volumes, accept)", s);
}
