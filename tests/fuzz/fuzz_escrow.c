/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Recovery escrow inputs: the keyd-escrow LUKS2 token (host-controlled
 * header), a decrypted share plaintext, and the CMS EnvelopedData a share
 * arrives in. The first input byte picks the parser.
 * Properties: a parsed token formats to JSON that parses to the same token
 * (CMS bytes included) and formatting is then a fixed point; a parsed share
 * has 1 <= threshold <= count and 1 <= index <= count; a share alone never
 * combines to a key unless its commitment matches; hostile CMS never
 * decrypts under a key it was not made for.
 */
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "keyd/error.h"
#include "keyd/escrow.h"

static EVP_PKEY *admin_key;
static X509 *admin_cert;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	admin_key = EVP_EC_gen("P-256");
	admin_cert = X509_new();
	FUZZ_ASSERT(admin_key && admin_cert);
	X509_set_version(admin_cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(admin_cert), 1);
	X509_gmtime_adj(X509_getm_notBefore(admin_cert), 0);
	X509_gmtime_adj(X509_getm_notAfter(admin_cert), 3600);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(admin_cert), "CN", MBSTRING_ASC,
				   (const unsigned char *)"fuzz-admin", -1, -1, 0);
	X509_set_issuer_name(admin_cert, X509_get_subject_name(admin_cert));
	X509_set_pubkey(admin_cert, admin_key);
	FUZZ_ASSERT(X509_sign(admin_cert, admin_key, EVP_sha256()) > 0);
	return 0;
}

static void same(const struct kd_escrow_token *a, const struct kd_escrow_token *b)
{
	FUZZ_ASSERT(a->keyslot == b->keyslot && a->version == b->version);
	FUZZ_ASSERT(a->threshold == b->threshold && a->n == b->n);
	FUZZ_ASSERT(memcmp(a->commitment, b->commitment, sizeof(a->commitment)) == 0);
	FUZZ_ASSERT(strcmp(a->created, b->created) == 0);
	for (size_t i = 0; i < a->n; i++) {
		const struct kd_escrow_slot *x = &a->shares[i], *y = &b->shares[i];

		FUZZ_ASSERT(x->index == y->index && strcmp(x->subject, y->subject) == 0);
		FUZZ_ASSERT(memcmp(x->admin, y->admin, sizeof(x->admin)) == 0);
		FUZZ_ASSERT(memcmp(x->digest, y->digest, sizeof(x->digest)) == 0);
		FUZZ_ASSERT(x->cms_len == y->cms_len && memcmp(x->cms, y->cms, x->cms_len) == 0);
	}
}

static void token(const uint8_t *p, size_t n)
{
	struct kd_escrow_token t, t2, t3;
	char *s1 = NULL, *s2 = NULL;

	memset(&t, 0, sizeof(t));
	if (kd_escrow_token_parse((const char *)p, n, &t))
		return;
	FUZZ_ASSERT(t.n >= 1 && t.n <= KD_ESCROW_MAX_SHARES);
	FUZZ_ASSERT(t.threshold >= 1 && t.threshold <= t.n);
	for (size_t i = 0; i < t.n; i++) {
		FUZZ_ASSERT(t.shares[i].index >= 1 && t.shares[i].index <= t.n);
		for (size_t j = 0; j < i; j++)
			FUZZ_ASSERT(t.shares[i].index != t.shares[j].index);
	}
	FUZZ_ASSERT(kd_escrow_token_format(&t, &s1) == 0);
	memset(&t2, 0, sizeof(t2));
	FUZZ_ASSERT(kd_escrow_token_parse(s1, strlen(s1), &t2) == 0);
	same(&t, &t2);
	FUZZ_ASSERT(kd_escrow_token_format(&t2, &s2) == 0);
	FUZZ_ASSERT(strcmp(s1, s2) == 0);
	memset(&t3, 0, sizeof(t3));
	FUZZ_ASSERT(kd_escrow_token_parse(s2, strlen(s2), &t3) == 0);
	same(&t2, &t3);
	/* Hostile CMS from the header, as keyd-recover would try to open it. */
	for (size_t i = 0; i < t.n; i++) {
		struct kd_secret *sh = NULL;

		FUZZ_ASSERT(kd_escrow_decrypt(t.shares[i].cms, t.shares[i].cms_len, admin_key,
					      admin_cert, &sh) != 0);
		FUZZ_ASSERT(sh == NULL);
	}
	kd_escrow_token_clear(&t);
	kd_escrow_token_clear(&t2);
	kd_escrow_token_clear(&t3);
	free(s1);
	free(s2);
}

static void share(const uint8_t *p, size_t n)
{
	struct kd_secret *s = NULL, *key = NULL;
	struct kd_escrow_share_info info;
	static const uint8_t zero[KD_ESCROW_COMMIT_SIZE];

	if (n == 0 || n > KD_ESCROW_SHARE_MAX || kd_secret_dup(p, n, &s))
		return;
	if (kd_escrow_share_parse(s, &info) == 0) {
		FUZZ_ASSERT(info.threshold >= 1 && info.threshold <= info.count);
		FUZZ_ASSERT(info.index >= 1 && info.index <= info.count);
		FUZZ_ASSERT(memchr(info.uuid, 0, sizeof(info.uuid)));
		/* One share, claimed threshold 1: combining must still check the
		 * commitment (the fuzzer cannot forge SHA-384). */
		if (kd_escrow_combine(&s, 1, info.uuid, NULL, &key) == 0) {
			FUZZ_ASSERT(memcmp(info.commitment, zero, sizeof(zero)) != 0);
			kd_secret_free(key);
		}
	}
	kd_secret_free(s);
}

static void cms(const uint8_t *p, size_t n)
{
	struct kd_secret *sh = NULL;

	if (kd_escrow_decrypt(p, n, admin_key, admin_cert, &sh) == 0)
		kd_secret_free(sh);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0: token(data + 1, size - 1); break;
	case 1: share(data + 1, size - 1); break;
	default: cms(data + 1, size - 1); break;
	}
	kd_err_clear();
	return 0;
}
