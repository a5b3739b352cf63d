/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shamir k-of-n split and combine of the recovery key (escrow.h), through
 * libgfshare, and the share plaintext format.
 */
#include <stdio.h>
#include <string.h>

#include <libgfshare.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "keyd/cursor.h"
#include "keyd/error.h"
#include "keyd/escrow.h"

static const char share_magic[8] = {'K', 'D', 'S', 'H', 'A', 'R', 'E', '1'};
#define COMMIT_LABEL "keyd-escrow-v1"

int kd_escrow_commitment(const struct kd_secret *key, uint8_t out[KD_ESCROW_COMMIT_SIZE])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned len = 0;
	int ok;

	ok = md && EVP_DigestInit_ex(md, EVP_sha384(), NULL) &&
	     EVP_DigestUpdate(md, COMMIT_LABEL, strlen(COMMIT_LABEL)) &&
	     EVP_DigestUpdate(md, key->data, key->len) && EVP_DigestFinal_ex(md, out, &len) &&
	     len == KD_ESCROW_COMMIT_SIZE;
	EVP_MD_CTX_free(md);
	return ok ? 0 : kd_fail(KD_ECRYPTO, "SHA-384 of the recovery key failed");
}

/*
 * libgfshare draws its polynomial coefficients from random(3) unless told
 * otherwise; the coefficients are as secret as the key itself.
 */
static __thread int rand_failed;

static void fill_rand(unsigned char *buf, unsigned int len)
{
	if (RAND_priv_bytes(buf, (int)len) != 1) {
		rand_failed = 1;
		memset(buf, 0, len);
	}
}

int kd_escrow_split(const struct kd_secret *key, const char *uuid, unsigned k, unsigned n,
		    struct kd_secret *ret_shares[])
{
	struct kd_secret *out[KD_ESCROW_MAX_SHARES] = {0};
	_kd_secret_ struct kd_secret *secret = NULL, *raw = NULL;
	unsigned char nrs[KD_ESCROW_MAX_SHARES];
	uint8_t commit[KD_ESCROW_COMMIT_SIZE];
	size_t ul = uuid ? strlen(uuid) : 0, plen;
	gfshare_ctx *g;
	int r;

	if (!key || key->len != KD_ESCROW_KEY_SIZE || !ul || ul > 40)
		return kd_fail(KD_EINVAL, "split: a %u-byte key and a volume UUID are needed",
			       KD_ESCROW_KEY_SIZE);
	if (k < 1 || k > n || n > KD_ESCROW_MAX_SHARES)
		return kd_fail(KD_EINVAL, "threshold %u of %u admins: need 1 <= k <= n <= %u", k, n,
			       KD_ESCROW_MAX_SHARES);
	if ((r = kd_escrow_commitment(key, commit)) || (r = kd_secret_dup(key->data, key->len, &secret)) ||
	    (r = kd_secret_new(KD_ESCROW_KEY_SIZE, &raw)))
		return r;
	for (unsigned i = 0; i < n; i++)
		nrs[i] = (unsigned char)(i + 1);
	gfshare_fill_rand = fill_rand;
	rand_failed = 0;
	if (!(g = gfshare_ctx_init_enc(nrs, n, (unsigned char)k, KD_ESCROW_KEY_SIZE)))
		return kd_fail(KD_ENOMEM, "libgfshare cannot set up the split");
	gfshare_ctx_enc_setsecret(g, secret->data);
	plen = 8 + 5 + ul + KD_ESCROW_COMMIT_SIZE + KD_ESCROW_KEY_SIZE;
	r = 0;
	for (unsigned i = 0; i < n && !r; i++) {
		uint8_t *p;

		if ((r = kd_secret_new(plen, &out[i])))
			break;
		gfshare_ctx_enc_getshare(g, (unsigned char)i, raw->data);
		p = out[i]->data;
		memcpy(p, share_magic, 8);
		p += 8;
		*p++ = (uint8_t)k;
		*p++ = (uint8_t)n;
		*p++ = nrs[i];
		*p++ = KD_ESCROW_KEY_SIZE;
		*p++ = (uint8_t)ul;
		memcpy(p, uuid, ul);
		p += ul;
		memcpy(p, commit, sizeof(commit));
		p += sizeof(commit);
		memcpy(p, raw->data, KD_ESCROW_KEY_SIZE);
	}
	gfshare_ctx_free(g);
	if (!r && rand_failed)
		r = kd_fail(KD_ECRYPTO, "no randomness for the share polynomial");
	if (r) {
		for (unsigned i = 0; i < n; i++)
			kd_secret_free(out[i]);
		return r;
	}
	for (unsigned i = 0; i < n; i++)
		ret_shares[i] = out[i];
	return 0;
}

/* Parse; *ret_bytes points at the share bytes inside s. */
static int share_parse(const struct kd_secret *s, struct kd_escrow_share_info *ret,
		       const uint8_t **ret_bytes)
{
	struct kd_escrow_share_info info;
	struct kd_cursor c;
	const uint8_t *p;
	uint8_t k, n, idx, kl, ul;

	if (!s || s->len > KD_ESCROW_SHARE_MAX)
		return kd_fail(KD_EMALFORMED, "escrow share: wrong size");
	memset(&info, 0, sizeof(info));
	kd_cur_init(&c, s->data, s->len);
	if (kd_cur_ptr(&c, &p, 8) || memcmp(p, share_magic, 8))
		return kd_fail(KD_EMALFORMED, "escrow share: not a keyd share (magic)");
	if (kd_cur_u8(&c, &k) || kd_cur_u8(&c, &n) || kd_cur_u8(&c, &idx) || kd_cur_u8(&c, &kl) ||
	    kd_cur_u8(&c, &ul))
		return kd_fail(KD_ETRUNC, "escrow share: truncated");
	if (k < 1 || k > n || n > KD_ESCROW_MAX_SHARES || idx < 1 || idx > n)
		return kd_fail(KD_EMALFORMED, "escrow share: threshold %u, count %u, index %u are "
					      "inconsistent", k, n, idx);
	if (kl != KD_ESCROW_KEY_SIZE)
		return kd_fail(KD_EUNSUPP, "escrow share: key size %u is not %u", kl,
			       KD_ESCROW_KEY_SIZE);
	if (ul < 1 || ul > 40 || kd_cur_ptr(&c, &p, ul))
		return kd_fail(KD_EMALFORMED, "escrow share: bad volume UUID field");
	for (unsigned i = 0; i < ul; i++)
		if (p[i] < 0x21 || p[i] > 0x7e)
			return kd_fail(KD_EMALFORMED, "escrow share: volume UUID is not printable");
	memcpy(info.uuid, p, ul);
	if (kd_cur_bytes(&c, info.commitment, sizeof(info.commitment)) ||
	    kd_cur_ptr(&c, &p, KD_ESCROW_KEY_SIZE))
		return kd_fail(KD_ETRUNC, "escrow share: truncated");
	if (kd_cur_expect_end(&c))
		return kd_fail(KD_EMALFORMED, "escrow share: trailing bytes");
	info.threshold = k;
	info.count = n;
	info.index = idx;
	*ret = info;
	if (ret_bytes)
		*ret_bytes = p;
	return 0;
}

int kd_escrow_share_parse(const struct kd_secret *share, struct kd_escrow_share_info *ret)
{
	return share_parse(share, ret, NULL);
}

int kd_escrow_combine(struct kd_secret *const shares[], size_t n, const char *uuid,
		      const uint8_t *commitment, struct kd_secret **ret_key)
{
	struct kd_escrow_share_info first, info;
	const uint8_t *cbytes;
	uint8_t *bytes[KD_ESCROW_MAX_SHARES];
	unsigned char nrs[KD_ESCROW_MAX_SHARES];
	uint8_t check[KD_ESCROW_COMMIT_SIZE];
	_kd_secret_ struct kd_secret *key = NULL;
	unsigned seen = 0;
	gfshare_ctx *g;
	int r;

	if (!n)
		return kd_fail(KD_EINVAL, "no shares given");
	if (n > KD_ESCROW_MAX_SHARES)
		return kd_fail(KD_EINVAL, "more than %u shares given", KD_ESCROW_MAX_SHARES);
	for (size_t i = 0; i < n; i++) {
		if ((r = share_parse(shares[i], i ? &info : &first, &cbytes)))
			return r;
		/* libgfshare takes non-const pointers; the bytes are the caller's secret. */
		bytes[i] = shares[i]->data + (cbytes - shares[i]->data);
		if (!i)
			info = first;
		if (strcmp(info.uuid, first.uuid) || info.threshold != first.threshold ||
		    info.count != first.count ||
		    memcmp(info.commitment, first.commitment, sizeof(info.commitment)))
			return kd_fail(KD_EREFUSED, "share %u belongs to another escrow than share %u "
						    "(different volume or escrow generation)",
				       info.index, first.index);
		if (seen & (1u << info.index))
			return kd_fail(KD_EREFUSED, "share %u was given twice", info.index);
		seen |= 1u << info.index;
		nrs[i] = (unsigned char)info.index;
	}
	if (uuid && strcmp(uuid, first.uuid))
		return kd_fail(KD_EREFUSED, "the shares are for volume %s, not %.40s", first.uuid, uuid);
	if (commitment && memcmp(commitment, first.commitment, KD_ESCROW_COMMIT_SIZE))
		return kd_fail(KD_ETAMPER, "the shares belong to another escrow generation than the "
					   "volume's escrow token");
	if (n < first.threshold)
		return kd_fail(KD_EREFUSED, "%zu share%s given; this escrow needs %u of %u", n,
			       n == 1 ? "" : "s", first.threshold, first.count);
	if ((r = kd_secret_new(KD_ESCROW_KEY_SIZE, &key)))
		return r;
	/* gfshare_ctx_free() scrubs through gfshare_fill_rand, which is NULL
	 * until someone sets it. */
	gfshare_fill_rand = fill_rand;
	/* Exactly threshold shares: any extra one would only be a further
	 * chance for a tampered share to go unnoticed by the interpolation. */
	if (!(g = gfshare_ctx_init_dec(nrs, first.threshold, KD_ESCROW_KEY_SIZE)))
		return kd_fail(KD_ENOMEM, "libgfshare cannot set up the combination");
	for (unsigned i = 0; i < first.threshold; i++)
		gfshare_ctx_dec_giveshare(g, (unsigned char)i, bytes[i]);
	gfshare_ctx_dec_extract(g, key->data);
	gfshare_ctx_free(g);
	if ((r = kd_escrow_commitment(key, check)))
		return r;
	if (!kd_ct_equal(check, first.commitment, sizeof(check)))
		return kd_fail(KD_ETAMPER, "the combined recovery key does not match the escrow "
					   "commitment: a share was altered");
	/* Extra shares beyond the threshold must agree too. */
	for (size_t i = first.threshold; i < n; i++) {
		_kd_secret_ struct kd_secret *alt = NULL;
		unsigned char nrs2[KD_ESCROW_MAX_SHARES];

		if ((r = kd_secret_new(KD_ESCROW_KEY_SIZE, &alt)))
			return r;
		memcpy(nrs2, nrs, first.threshold);
		nrs2[first.threshold - 1] = nrs[i];
		if (!(g = gfshare_ctx_init_dec(nrs2, first.threshold, KD_ESCROW_KEY_SIZE)))
			return kd_fail(KD_ENOMEM, "libgfshare cannot set up the combination");
		for (unsigned j = 0; j + 1 < first.threshold; j++)
			gfshare_ctx_dec_giveshare(g, (unsigned char)j, bytes[j]);
		gfshare_ctx_dec_giveshare(g, (unsigned char)(first.threshold - 1),
					  bytes[i]);
		gfshare_ctx_dec_extract(g, alt->data);
		gfshare_ctx_free(g);
		if (!kd_ct_equal(alt->data, key->data, KD_ESCROW_KEY_SIZE))
			return kd_fail(KD_ETAMPER, "share %u does not agree with the others: it was "
						   "altered", (unsigned)nrs[i]);
	}
	*ret_key = kd_secret_take(&key);
	return 0;
}
