/* SPDX-License-Identifier: Apache-2.0 */
/* The escrow on a volume: its keyslot and token (escrow.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "internal.h"
#include "keyd/error.h"
#include "keyd/escrow.h"
#include "keyd/failpoint.h"
#include "keyd/header.h"
#include "keyd/luks2json.h"

/* Prefix the current detail (copied first: kd_fail writes the same buffer). */
static int kd_fail_prefixed(int r, const char *what)
{
	char d[300];

	snprintf(d, sizeof(d), "%s", kd_err_detail(r));
	return kd_fail(r, "%s: %s", what, d);
}
#include "keyd/util.h"

#define MAX_ESCROWS 4u

/* Every keyd-escrow token in meta, newest first. */
static int find_all(json_object *meta, struct kd_escrow_token *out, size_t max, size_t *ret_n)
{
	json_object *tokens, *slots;
	size_t n = 0;
	int r;

	if ((r = kd_lj_obj(meta, "LUKS2 metadata", "tokens", &tokens)) ||
	    (r = kd_lj_obj(meta, "LUKS2 metadata", "keyslots", &slots)))
		return r;
	json_object_object_foreach(tokens, id, tok) {
		const char *type, *txt;
		char ks[12], where[24];

		kd_lj_where(where, sizeof(where), "token", id);
		if (kd_lj_id(id, "LUKS2 tokens", "token") < 0 || kd_lj_str(tok, where, "type", &type) ||
		    strcmp(type, KD_ESCROW_TOKEN_TYPE))
			continue;
		if (n == max) {
			for (size_t i = 0; i < n; i++)
				kd_escrow_token_clear(&out[i]);
			return kd_fail(KD_ETAMPER, "more than %zu keyd-escrow tokens", max);
		}
		txt = json_object_to_json_string_ext(tok, JSON_C_TO_STRING_PLAIN);
		if ((r = kd_escrow_token_parse(txt, strlen(txt), &out[n]))) {
			for (size_t i = 0; i < n; i++)
				kd_escrow_token_clear(&out[i]);
			return kd_fail_prefixed(r, "keyd-escrow token");
		}
		out[n].token_id = atoi(id);
		snprintf(ks, sizeof(ks), "%d", out[n].keyslot);
		if (!kd_lj_has(slots, ks)) {
			for (size_t i = 0; i <= n; i++)
				kd_escrow_token_clear(&out[i]);
			return kd_fail(KD_ETAMPER, "keyd-escrow token %s names keyslot %s, which does "
						   "not exist", id, ks);
		}
		n++;
	}
	/* After an interrupted rotation two escrows exist; the newer first. */
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && strcmp(out[j].created, out[j - 1].created) > 0; j--) {
			struct kd_escrow_token t = out[j];

			out[j] = out[j - 1];
			out[j - 1] = t;
		}
	*ret_n = n;
	return 0;
}

int kd_escrow_find_all(struct kd_volume *v, struct kd_escrow_token *ret, size_t max, size_t *ret_n)
{
	struct kd_header_health h;
	json_object *meta = NULL;
	int r;

	if ((r = kd_header_read_file(kd_volume_path(v), &h, &meta)))
		return r;
	if (!meta)
		return kd_fail(KD_EMALFORMED, "no LUKS2 metadata");
	r = find_all(meta, ret, max, ret_n);
	json_object_put(meta);
	return r;
}

int kd_escrow_find(struct kd_volume *v, struct kd_escrow_token *ret)
{
	struct kd_escrow_token all[MAX_ESCROWS];
	size_t n = 0;
	int r;

	if ((r = kd_escrow_find_all(v, all, MAX_ESCROWS, &n)))
		return r;
	if (!n)
		return kd_fail(KD_ENOENT, "%.200s has no keyd-escrow token (no recovery escrow)",
			       kd_volume_path(v));
	for (size_t i = 1; i < n; i++)
		kd_escrow_token_clear(&all[i]);
	*ret = all[0];
	return 0;
}

static int hex_pass(const struct kd_secret *key, struct kd_secret **ret)
{
	static const char hexd[] = "0123456789abcdef";
	struct kd_secret *p = NULL;
	int r;

	if ((r = kd_secret_new(2 * key->len, &p)))
		return r;
	for (size_t i = 0; i < key->len; i++) {
		p->data[2 * i] = (uint8_t)hexd[key->data[i] >> 4];
		p->data[2 * i + 1] = (uint8_t)hexd[key->data[i] & 15];
	}
	*ret = p;
	return 0;
}

static int drop(struct crypt_device *cd, const struct kd_escrow_token *t, const char *fp)
{
	/* Token first, keyslot after: a crash in between leaves a keyslot no
	 * token describes (keyd's PBKDF profile, so the allow-list tolerates
	 * it), never a token naming a missing keyslot. */
	int r = crypt_token_json_set(cd, t->token_id, NULL);

	if (r < 0)
		return kd_fail(KD_ELUKS, "cannot remove keyd-escrow token %d: %s", t->token_id,
			       strerror(-r));
	if (fp)
		kd_failpoint(fp);
	if ((r = crypt_keyslot_destroy(cd, t->keyslot)) < 0)
		return kd_fail(KD_ELUKS, "cannot kill escrow keyslot %d: %s", t->keyslot, strerror(-r));
	return 0;
}

int kd_escrow_add(struct kd_volume *v, const struct kd_secret *vk, unsigned k, X509 *const certs[],
		  size_t n, bool replace, int *ret_keyslot)
{
	_kd_secret_ struct kd_secret *key = NULL, *pass = NULL;
	struct kd_escrow_token old[MAX_ESCROWS], t;
	struct kd_checked_cd c;
	struct crypt_device *cd;
	size_t n_old = 0;
	char *json = NULL;
	int slot = -1, r;

	memset(&t, 0, sizeof(t));
	if (!vk || vk->len != kd_volume_key_size(v))
		return kd_fail(KD_EINVAL, "escrow: the volume key is needed");
	if ((r = kd_volume_checked_cd(v, KD_CD_WRITE, &c)))
		return r;
	cd = c.cd;
	if ((r = find_all(c.meta, old, MAX_ESCROWS, &n_old)))
		goto out;
	if (n_old && !replace) {
		r = kd_fail(KD_EEXIST, "volume already has a %u-of-%zu escrow on keyslot %d; rotate it "
				       "instead", old[0].threshold, old[0].n, old[0].keyslot);
		goto out;
	}
	if (crypt_volume_key_verify(cd, (const char *)vk->data, vk->len) < 0) {
		r = kd_fail(KD_EINVAL, "the key given is not this volume's key");
		goto out;
	}
	if ((r = kd_secret_new(KD_ESCROW_KEY_SIZE, &key)))
		goto out;
	if (RAND_priv_bytes(key->data, (int)key->len) != 1) {
		r = kd_fail(KD_ECRYPTO, "no randomness for the recovery key");
		goto out;
	}
	if ((r = hex_pass(key, &pass)) ||
	    (r = kd_escrow_build(key, kd_volume_uuid(v), k, certs, n, &t)) ||
	    (r = kd_volume_set_pbkdf(cd)))
		goto out;
	slot = crypt_keyslot_add_by_volume_key(cd, CRYPT_ANY_SLOT, (const char *)vk->data, vk->len,
					       (const char *)pass->data, pass->len);
	if (slot < 0) {
		r = kd_fail(KD_ELUKS, "cannot add the escrow keyslot: %s", strerror(-slot));
		goto out;
	}
	kd_failpoint("escrow.after-keyslot");
	t.keyslot = slot;
	if ((r = kd_escrow_token_format(&t, &json)))
		goto undo;
	if ((r = crypt_token_json_set(cd, CRYPT_ANY_TOKEN, json)) < 0) {
		r = kd_fail(KD_ELUKS, "cannot write the keyd-escrow token (%zu bytes): %s",
			    strlen(json), strerror(-r));
		goto undo;
	}
	kd_failpoint("escrow.after-token");
	/* The new escrow is in; only now do the old ones go. */
	for (size_t i = 0; i < n_old; i++)
		if ((r = drop(cd, &old[i], "escrow.after-old-token")))
			goto out;
	r = 0;
	if (ret_keyslot)
		*ret_keyslot = slot;
	goto out;
undo:
	/* A keyslot whose key nobody holds helps no one. */
	crypt_keyslot_destroy(cd, slot);
out:
	free(json);
	for (size_t i = 0; i < n_old; i++)
		kd_escrow_token_clear(&old[i]);
	kd_escrow_token_clear(&t);
	kd_checked_cd_free(&c);
	return r;
}

/* The volume key from shares that all belong to escrow t, checked against its keyslot. */
static int open_escrow_slot(struct kd_volume *v, struct crypt_device *cd,
			    const struct kd_escrow_token *t, struct kd_secret *const shares[],
			    size_t n, struct kd_secret **ret_vk)
{
	_kd_secret_ struct kd_secret *key = NULL, *pass = NULL, *vk = NULL;
	size_t vk_len = kd_volume_key_size(v);
	int got, r;

	for (size_t i = 0; i < n; i++) {
		r = kd_escrow_check_share(t, shares[i]);
		if (r)
			return r;
	}
	r = kd_escrow_combine(shares, n, kd_volume_uuid(v), t->commitment, &key);
	if (r)
		return r;
	r = hex_pass(key, &pass);
	if (r)
		return r;
	r = kd_secret_new(kd_volume_key_size(v), &vk);
	if (r)
		return r;
	got = crypt_volume_key_get(cd, t->keyslot, (char *)vk->data, &vk_len,
				   (const char *)pass->data, pass->len);
	if (got != t->keyslot || vk_len != kd_volume_key_size(v))
		return kd_fail(KD_ETAMPER, "escrow keyslot %d does not open with the recovered key",
			       t->keyslot);
	*ret_vk = kd_secret_take(&vk);
	return 0;
}

int kd_escrow_volume_key(struct kd_volume *v, struct kd_secret *const shares[], size_t n,
			 struct kd_secret **ret_vk)
{
	struct kd_escrow_token all[MAX_ESCROWS];
	struct kd_escrow_share_info info;
	const struct kd_escrow_token *t = NULL;
	struct kd_checked_cd c;
	size_t n_all = 0;
	int r;

	if (!n)
		return kd_fail(KD_EINVAL, "no shares given");
	r = kd_escrow_share_parse(shares[0], &info);
	if (r)
		return r;
	/* Only reads: a private copy of the header and keyslot areas. */
	r = kd_volume_checked_cd(v, KD_CD_READ_KEYSLOTS, &c);
	if (r)
		return r;
	r = find_all(c.meta, all, MAX_ESCROWS, &n_all);
	if (r)
		goto out;
	/* The shares name their escrow generation: pick that token. */
	for (size_t i = 0; i < n_all; i++)
		if (!memcmp(all[i].commitment, info.commitment, sizeof(info.commitment)))
			t = &all[i];
	if (!n_all) {
		r = kd_fail(KD_ENOENT, "%.200s has no keyd-escrow token (no recovery escrow)",
			    kd_volume_path(v));
		goto out;
	}
	if (!t) {
		r = kd_fail(KD_EREFUSED, "the shares belong to an escrow this volume no longer has "
					 "(rotated, or another volume)");
		goto out;
	}
	r = open_escrow_slot(v, c.cd, t, shares, n, ret_vk);
out:
	for (size_t i = 0; i < n_all; i++)
		kd_escrow_token_clear(&all[i]);
	kd_checked_cd_free(&c);
	return r;
}

int kd_escrow_remove(struct kd_volume *v, bool force)
{
	struct kd_escrow_token all[MAX_ESCROWS];
	struct kd_checked_cd c;
	const struct kd_token *toks;
	size_t n_all = 0, n_tok = 0, live = 0;
	int r;

	toks = kd_volume_tokens(v, &n_tok);
	for (size_t i = 0; i < n_tok; i++)
		live += toks[i].state == KD_TOKEN_ACTIVE;
	if (!live && !force)
		return kd_fail(KD_EREFUSED, "the escrow is the only way into this volume (no "
					    "active keyd slot); refusing to remove it");
	r = kd_volume_checked_cd(v, KD_CD_WRITE, &c);
	if (r)
		return r;
	r = find_all(c.meta, all, MAX_ESCROWS, &n_all);
	if (r)
		goto out;
	if (!n_all) {
		r = kd_fail(KD_ENOENT, "volume has no escrow");
		goto out;
	}
	for (size_t i = 0; i < n_all; i++) {
		r = drop(c.cd, &all[i], "escrow.after-old-token");
		if (r)
			goto out;
	}
out:
	for (size_t i = 0; i < n_all; i++)
		kd_escrow_token_clear(&all[i]);
	kd_checked_cd_free(&c);
	return r;
}

int kd_escrow_enroll(const char *device, struct kd_backend *b, const struct kd_launch *l,
		     const char *const cert_paths[], size_t n, unsigned k)
{
	_kd_secret_ struct kd_secret *vk = NULL;
	X509 *certs[KD_ESCROW_MAX_SHARES] = {0};
	struct kd_volume *v = NULL;
	struct kd_token tok;
	int r;

	if (n < 1 || n > KD_ESCROW_MAX_SHARES)
		return kd_fail(KD_EINVAL, "escrow needs 1..%u admin certificates", KD_ESCROW_MAX_SHARES);
	for (size_t i = 0; i < n; i++) {
		r = kd_escrow_load_cert(cert_paths[i], &certs[i]);
		if (r)
			goto out;
	}
	r = kd_volume_open(device, &v);
	if (r)
		goto out;
	r = kd_volume_get_key(v, b, l, &vk, &tok);
	if (r)
		goto out;
	r = kd_escrow_add(v, vk, k, certs, n, false, NULL);
out:
	kd_volume_close(v);
	for (size_t i = 0; i < n; i++)
		X509_free(certs[i]);
	return r;
}
