/* SPDX-License-Identifier: Apache-2.0 */
/* The operator's share files: decrypt, identify, combine (recover.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyd/error.h"
#include "keyd/recover.h"
#include "keyd/util.h"

#define MAX_ESCROWS 4u

/* Prefix the current detail (copied first: kd_fail writes the same buffer). */
static int fail_prefixed(int r, const char *file)
{
	char d[300];

	snprintf(d, sizeof(d), "%s", kd_err_detail(r));
	return kd_fail(r, "%.200s: %s", file, d);
}

void kd_recover_free_shares(struct kd_secret *s[], size_t n)
{
	for (size_t i = 0; i < n; i++) {
		kd_secret_free(s[i]);
		s[i] = NULL;
	}
}

int kd_recover_read_shares(const char *const files[], size_t n, const char *key_path,
			   const char *cert_path, struct kd_secret *ret[])
{
	struct kd_secret *out[KD_ESCROW_MAX_SHARES] = {0};
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	int r;

	if (n > KD_ESCROW_MAX_SHARES)
		return kd_fail(KD_EINVAL, "more than %u share files", KD_ESCROW_MAX_SHARES);
	if ((r = kd_escrow_load_key(key_path, &key)) || (r = kd_escrow_load_cert(cert_path, &cert)))
		goto out;
	for (size_t i = 0; i < n; i++) {
		uint8_t *der = NULL;
		size_t len = 0;

		if ((r = kd_read_file(files[i], KD_ESCROW_CMS_MAX, &der, &len))) {
			r = fail_prefixed(r, files[i]);
			break;
		}
		r = kd_escrow_decrypt(der, len, key, cert, &out[i]);
		free(der);
		if (r) {
			r = fail_prefixed(r, files[i]);
			break;
		}
	}
	if (r) {
		kd_recover_free_shares(out, n);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		ret[i] = out[i];
out:
	EVP_PKEY_free(key);
	X509_free(cert);
	return r;
}

void kd_recover_commitment_hex(const uint8_t c[KD_ESCROW_COMMIT_SIZE],
			       char out[2 * KD_ESCROW_COMMIT_SIZE + 1])
{
	kd_hex(c, KD_ESCROW_COMMIT_SIZE, out);
}

int kd_recover_commitment_parse(const char *hex, uint8_t out[KD_ESCROW_COMMIT_SIZE])
{
	uint8_t c[KD_ESCROW_COMMIT_SIZE];

	if (!hex || strlen(hex) != 2 * KD_ESCROW_COMMIT_SIZE)
		return kd_fail(KD_EINVAL, "a commitment is %u hex digits (as status and the "
					  "provisioning output print it)", 2 * KD_ESCROW_COMMIT_SIZE);
	for (size_t i = 0; i < KD_ESCROW_COMMIT_SIZE; i++) {
		unsigned v = 0;

		for (size_t j = 0; j < 2; j++) {
			char ch = hex[2 * i + j];

			v <<= 4;
			if (ch >= '0' && ch <= '9')
				v |= (unsigned)(ch - '0');
			else if (ch >= 'a' && ch <= 'f')
				v |= (unsigned)(ch - 'a' + 10);
			else if (ch >= 'A' && ch <= 'F')
				v |= (unsigned)(ch - 'A' + 10);
			else
				return kd_fail(KD_EINVAL, "the commitment is not hex (position %zu)",
					       2 * i + j);
		}
		c[i] = (uint8_t)v;
	}
	memcpy(out, c, sizeof(c));
	return 0;
}

/*
 * Which escrow does share i belong to? Identity first (volume, escrow
 * generation), then the digest: a share from another volume or an older
 * escrow is not "altered", and the admin needs to know which file to replace.
 */
static int identify(struct kd_volume *v, const struct kd_escrow_token *all, size_t n_all,
		    const char *const files[], struct kd_secret *const shares[], size_t i,
		    const struct kd_escrow_share_info *first, unsigned *seen_from)
{
	struct kd_escrow_share_info info;
	char a[2 * KD_ESCROW_COMMIT_SIZE + 1], b[2 * KD_ESCROW_COMMIT_SIZE + 1];
	const struct kd_escrow_token *t = NULL;
	int r;

	if ((r = kd_escrow_share_parse(shares[i], &info)))
		return fail_prefixed(r, files[i]);
	if (strcmp(info.uuid, kd_volume_uuid(v)))
		return kd_fail(KD_EREFUSED, "%.200s: share %u belongs to another volume (%s), not to "
					    "this one (%s)", files[i], info.index, info.uuid,
			       kd_volume_uuid(v));
	for (size_t j = 0; j < n_all; j++)
		if (!memcmp(all[j].commitment, info.commitment, KD_ESCROW_COMMIT_SIZE))
			t = &all[j];
	if (!t) {
		kd_recover_commitment_hex(info.commitment, a);
		kd_recover_commitment_hex(all[0].commitment, b);
		return kd_fail(KD_EREFUSED, "%.200s: share %u is from an older escrow of this volume, "
					    "rotated since (its commitment %.16s\u2026, the current "
					    "escrow's %.16s\u2026): it no longer opens anything; ask "
					    "its admin for a share of the current escrow",
			       files[i], info.index, a, b);
	}
	if (i && memcmp(info.commitment, first->commitment, KD_ESCROW_COMMIT_SIZE))
		return kd_fail(KD_EREFUSED, "%.200s: share %u is of another escrow generation than "
					    "%.200s (an interrupted rotation left two escrows): give "
					    "shares of one escrow", files[i], info.index, files[0]);
	if (seen_from[info.index] && seen_from[info.index] - 1 != i)
		return kd_fail(KD_EREFUSED, "%.200s: share %u was given twice (also %.200s)", files[i],
			       info.index, files[seen_from[info.index] - 1]);
	seen_from[info.index] = (unsigned)i + 1;
	if ((r = kd_escrow_check_share(t, shares[i])))
		return fail_prefixed(r, files[i]);
	return 0;
}

int kd_recover_volume_key(struct kd_volume *v, const char *const files[],
			  struct kd_secret *const shares[], size_t n, struct kd_secret **ret_vk)
{
	struct kd_escrow_token all[MAX_ESCROWS];
	struct kd_escrow_share_info first;
	unsigned seen_from[KD_ESCROW_MAX_SHARES + 1] = {0};
	size_t n_all = 0;
	int r;

	if (!n)
		return kd_fail(KD_EINVAL, "no shares given");
	if ((r = kd_escrow_find_all(v, all, MAX_ESCROWS, &n_all)))
		return r;
	if (!n_all)
		return kd_fail(KD_ENOENT, "%.200s has no keyd-escrow token (no recovery escrow)",
			       kd_volume_path(v));
	if ((r = kd_escrow_share_parse(shares[0], &first))) {
		r = fail_prefixed(r, files[0]);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if ((r = identify(v, all, n_all, files, shares, i, &first, seen_from)))
			goto out;
	if (n < first.threshold)
		r = kd_fail(KD_EREFUSED, "%zu share%s given; this escrow needs %u of %u", n,
			    n == 1 ? "" : "s", first.threshold, first.count);
out:
	for (size_t i = 0; i < n_all; i++)
		kd_escrow_token_clear(&all[i]);
	return r ? r : kd_escrow_volume_key(v, shares, n, ret_vk);
}
