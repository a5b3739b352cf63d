/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sealed LUKS2 volumes (volume.h): discovery, the keyd unlock order,
 * enrollment, keyslot management and the TCB roll-forward.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <blkid/blkid.h>
#include <json-c/json.h>
#include <libcryptsetup.h>
#include <libdevmapper.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "keyd/error.h"
#include "keyd/failpoint.h"
#include "keyd/luks2json.h"
#include "keyd/rotate.h"
#include "keyd/util.h"
#include "keyd/volume.h"

#define MAX_TOKENS 32u

struct kd_volume {
	char *path;
	char *want_uuid; /* from a UUID= spec: the header must carry it */
	struct kd_header_health health;
	json_object *meta;
	char uuid[KD_LUKS2_UUID_MAX + 1];
	struct kd_token toks[MAX_TOKENS];
	size_t n_toks;
	kd_pending_open_fn pending_open; /* NULL: the process default */
	const void *pending_ctx;         /* borrowed */
};

static kd_pending_open_fn default_pending_open;
static const void *default_pending_ctx;

void kd_volume_set_pending_opener(struct kd_volume *v, kd_pending_open_fn fn, const void *ctx)
{
	v->pending_open = fn;
	v->pending_ctx = ctx;
}

void kd_volume_default_pending_opener(kd_pending_open_fn fn, const void *ctx)
{
	default_pending_open = fn;
	default_pending_ctx = ctx;
}

/* A pending handoff slot's secrets, through the installed opener (volume.h). */
static int open_pending(const struct kd_volume *v, struct kd_backend *b, const struct kd_launch *l,
			const struct kd_token *t, struct kd_secret **ret_pass,
			struct kd_secret **ret_pin_key)
{
	if (v->pending_open)
		return v->pending_open(v->pending_ctx, b, &l->report, v->uuid, t, ret_pass,
				       ret_pin_key);
	if (default_pending_open)
		return default_pending_open(default_pending_ctx, b, &l->report, v->uuid, t, ret_pass,
					    ret_pin_key);
	return kd_fail(KD_EUNSUPP, "keyd slot %d is a pending handoff slot and this program "
				   "cannot judge its evidence (use keyd unlock)", t->keyslot);
}

/* ---------------------------------------------------------------- discovery */

int kd_device_resolve(const char *spec, char **ret_path)
{
	char *p;

	if (!spec || !*spec)
		return kd_fail(KD_EINVAL, "no device given");
	if (!strncmp(spec, "UUID=", 5) || !strncmp(spec, "LABEL=", 6) ||
	    !strncmp(spec, "PARTLABEL=", 10) || !strncmp(spec, "PARTUUID=", 9)) {
		p = blkid_evaluate_tag(spec, NULL, NULL);
		if (!p)
			return kd_fail(KD_ENOENT, "no device with %.80s", spec);
	} else {
		p = strdup(spec);
		if (!p)
			return kd_fail(KD_ENOMEM, "out of memory (luks2)");
	}
	*ret_path = p;
	return 0;
}

/* ---------------------------------------------------------------- launch */

static int launch_get(struct kd_backend *b, struct kd_launch *ret, uint8_t **ret_certs,
		      size_t *ret_certs_len)
{
	static const uint8_t zero[64];
	struct kd_launch l;
	uint8_t *rep = NULL, *certs = NULL;
	size_t len = 0, certs_len = 0;
	int r;

	memset(&l, 0, sizeof(l));
	r = kd_backend_report(b, zero, 0, &rep, &len, ret_certs ? &certs : NULL,
			      ret_certs ? &certs_len : NULL);
	if (r)
		return r;
	r = kd_report_parse(rep, len, &l.report);
	free(rep);
	if (r) {
		free(certs);
		return r;
	}
	snprintf(l.backend, sizeof(l.backend), "%s", b->ops && b->ops->name ? b->ops->name : "unknown");
	*ret = l;
	if (ret_certs) {
		*ret_certs = certs;
		*ret_certs_len = certs_len;
	}
	return 0;
}

int kd_launch_get(struct kd_backend *b, struct kd_launch *ret)
{
	return launch_get(b, ret, NULL, NULL);
}

int kd_launch_get_certs(struct kd_backend *b, struct kd_launch *ret, uint8_t **ret_certs,
			size_t *ret_certs_len)
{
	return launch_get(b, ret, ret_certs, ret_certs_len);
}

static bool chip_is_zero(const uint8_t chip[64])
{
	for (int i = 0; i < 64; i++)
		if (chip[i])
			return false;
	return true;
}

int kd_token_for_launch(const struct kd_launch *l, const char *label, uint32_t svn,
			enum kd_token_state state, struct kd_token *ret)
{
	struct kd_token t;
	time_t now = time(NULL);
	struct tm tm;

	if (label && strlen(label) > KD_TOKEN_LABEL_MAX)
		return kd_fail(KD_EINVAL, "label longer than %u characters", KD_TOKEN_LABEL_MAX);
	for (const char *p = label ? label : ""; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			return kd_fail(KD_EINVAL, "label must be printable ASCII");
	memset(&t, 0, sizeof(t));
	t.token_id = -1;
	t.keyslot = -1;
	t.version = KD_TOKEN_VERSION;
	snprintf(t.backend, sizeof(t.backend), "%s", l->backend);
	t.root_key_select = KD_KEY_SEL_VCEK << KD_KEY_SEL_SHIFT;
	t.fields = KD_FIELDS_SEAL;
	t.vmpl = 0;
	t.guest_svn = 0;
	/* Seal at the committed TCB: the firmware refuses anything above it,
	 * and the current TCB may still be rolled back (SNP ABI §7.2). */
	t.tcb = l->report.committed_tcb;
	memcpy(t.measurement, l->report.measurement, sizeof(t.measurement));
	t.policy = l->report.policy;
	/* A masked chip ID (MASK_CHIP_ID) is all zero: nothing to record. */
	t.has_chip = !chip_is_zero(l->report.chip_id);
	if (t.has_chip && kd_chip_digest(l->report.chip_id, t.chip))
		return kd_fail(KD_ECRYPTO, "cannot digest this launch's chip ID");
	snprintf(t.label, sizeof(t.label), "%s", label ? label : "");
	t.state = state;
	t.svn = svn;
	gmtime_r(&now, &tm);
	strftime(t.created, sizeof(t.created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	*ret = t;
	return 0;
}

void kd_token_key_req(const struct kd_token *t, struct kd_key_req *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->root_key_select = t->root_key_select;
	ret->guest_field_select = t->fields;
	ret->vmpl = t->vmpl;
	ret->guest_svn = t->guest_svn;
	ret->tcb_version = t->tcb;
}

int kd_token_derive(struct kd_backend *b, const struct kd_token *t, struct kd_secret **ret)
{
	struct kd_key_req req;

	kd_token_key_req(t, &req);
	return kd_backend_derive(b, &req, ret);
}

int kd_seal_keys_from_derived(const struct kd_secret *derived, const char *uuid,
			      struct kd_secret **ret_pass, struct kd_secret **ret_pin_key)
{
	static const char hexd[] = "0123456789abcdef";
	_kd_secret_ struct kd_secret *raw = NULL, *pass = NULL, *pin = NULL;
	int r;

	if (!derived || !uuid || !*uuid || strlen(uuid) > KD_LUKS2_UUID_MAX)
		return kd_fail(KD_EINVAL, "seal keys need a derived key and a volume UUID");
	if ((r = kd_hkdf(derived, uuid, strlen(uuid), KD_INFO_KEYSLOT, KD_PASSPHRASE_RAW, &raw)) ||
	    (r = kd_hkdf(derived, uuid, strlen(uuid), KD_INFO_PIN, KD_PIN_KEY_SIZE, &pin)) ||
	    (r = kd_secret_new(KD_PASSPHRASE_LEN, &pass)))
		return r;
	/* Printable, so the same passphrase passes through a keyscript's
	 * stdout, a token plugin buffer and cryptsetup --key-file alike. */
	for (size_t i = 0; i < KD_PASSPHRASE_RAW; i++) {
		pass->data[2 * i] = (uint8_t)hexd[raw->data[i] >> 4];
		pass->data[2 * i + 1] = (uint8_t)hexd[raw->data[i] & 15];
	}
	*ret_pass = kd_secret_take(&pass);
	*ret_pin_key = kd_secret_take(&pin);
	return 0;
}

int kd_seal_keys_for_token(struct kd_backend *b, const struct kd_token *t, const char *uuid,
			   struct kd_secret **ret_pass, struct kd_secret **ret_pin_key)
{
	_kd_secret_ struct kd_secret *derived = NULL;
	int r;

	if ((r = kd_token_derive(b, t, &derived)))
		return r;
	return kd_seal_keys_from_derived(derived, uuid, ret_pass, ret_pin_key);
}

/* HMAC-SHA384(pin key, volume key || header parameters). */
int kd_volume_pin(const struct kd_secret *pin_key, const struct kd_secret *vk, json_object *meta,
		  const char *uuid, int keyslot, uint8_t out[KD_PIN_SIZE])
{
	uint8_t *params = NULL;
	size_t plen = 0, olen = 0;
	EVP_MAC *mac = NULL;
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM p[2];
	int r;
	bool ok;

	if ((r = kd_header_pin_params(meta, uuid, keyslot, &params, &plen)))
		return r;
	p[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA384", 0);
	p[1] = OSSL_PARAM_construct_end();
	mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	ok = mac && (ctx = EVP_MAC_CTX_new(mac)) &&
	     EVP_MAC_init(ctx, pin_key->data, pin_key->len, p) &&
	     EVP_MAC_update(ctx, vk->data, vk->len) && EVP_MAC_update(ctx, params, plen) &&
	     EVP_MAC_final(ctx, out, &olen, KD_PIN_SIZE) && olen == KD_PIN_SIZE;
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	free(params);
	return ok ? 0 : kd_fail(KD_ECRYPTO, "HMAC-SHA384 of the volume-key pin failed");
}

/* ---------------------------------------------------------------- open */

static void volume_clear(struct kd_volume *v)
{
	json_object_put(v->meta);
	v->meta = NULL;
	v->n_toks = 0;
}

static int volume_tokens(struct kd_volume *v);

/* (Re)read both header copies and the keyd tokens; never writes. */
static int volume_load(struct kd_volume *v)
{
	struct stat st;
	int fd, r;

	volume_clear(v);
	fd = open(v->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kd_fail(errno == ENOENT ? KD_ENOENT : KD_EIO, "cannot open %.200s: %s", v->path,
			       strerror(errno));
	/* libcryptsetup flock()s image files while it writes metadata; a shared
	 * lock here means we never read a half-written header. */
	if (!fstat(fd, &st) && S_ISREG(st.st_mode))
		(void)flock(fd, LOCK_SH);
	r = kd_header_read(fd, &v->health, &v->meta);
	close(fd);
	if (r)
		return r;
	snprintf(v->uuid, sizeof(v->uuid), "%s",
		 v->health.used ? v->health.secondary.uuid : v->health.primary.uuid);
	if (v->want_uuid && strcasecmp(v->want_uuid, v->uuid) && !v->health.allow_err) {
		v->health.allow_err = kd_fail(KD_ETAMPER, "header UUID %s is not the requested %s",
					      v->uuid, v->want_uuid);
		snprintf(v->health.allow_detail, sizeof(v->health.allow_detail), "%s",
			 kd_err_detail(v->health.allow_err));
	}
	if (!v->meta)
		return 0;
	return volume_tokens(v);
}

/*
 * The keyd tokens of v->meta. A header the allow-list refused may hold any
 * JSON here; a token that is not even well-formed is skipped (status shows
 * the allow-list's refusal), a keyd token that does not parse is recorded
 * as the refusal if there is none yet.
 */
static int volume_tokens(struct kd_volume *v)
{
	json_object *tokens;
	char where[24];
	int r;

	if (kd_lj_obj(v->meta, "LUKS2 metadata", "tokens", &tokens))
		return 0;
	json_object_object_foreach(tokens, id, tok) {
		const char *type, *txt;
		struct kd_token t;
		int tid = kd_lj_id(id, "LUKS2 tokens", "token");

		kd_lj_where(where, sizeof(where), "token", id);
		if (tid < 0 || kd_lj_str(tok, where, "type", &type) || strcmp(type, KD_TOKEN_TYPE))
			continue;
		txt = json_object_to_json_string_ext(tok, JSON_C_TO_STRING_PLAIN);
		r = kd_token_parse(txt, strlen(txt), &t);
		if (r) {
			if (!v->health.allow_err) {
				v->health.allow_err = r;
				snprintf(v->health.allow_detail, sizeof(v->health.allow_detail),
					 "keyd token %s: %s", id, kd_err_detail(r));
			}
			continue;
		}
		t.token_id = tid;
		if (v->n_toks < MAX_TOKENS)
			v->toks[v->n_toks++] = t;
	}
	return 0;
}

int kd_volume_open(const char *device, struct kd_volume **ret)
{
	struct kd_volume *v = calloc(1, sizeof(*v));
	int r;

	if (!v)
		return kd_fail(KD_ENOMEM, "out of memory (luks2)");
	if ((r = kd_device_resolve(device, &v->path))) {
		free(v);
		return r;
	}
	if (!strncmp(device, "UUID=", 5) && !(v->want_uuid = strdup(device + 5))) {
		kd_volume_close(v);
		return kd_fail(KD_ENOMEM, "out of memory (luks2)");
	}
	if ((r = volume_load(v))) {
		kd_volume_close(v);
		return r;
	}
	*ret = v;
	return 0;
}

void kd_volume_close(struct kd_volume *v)
{
	if (!v)
		return;
	volume_clear(v);
	free(v->path);
	free(v->want_uuid);
	free(v);
}

const char *kd_volume_path(const struct kd_volume *v)
{
	return v->path;
}

const char *kd_volume_uuid(const struct kd_volume *v)
{
	return v->uuid;
}

const struct kd_header_health *kd_volume_health(const struct kd_volume *v)
{
	return &v->health;
}

/* Segment 0 of v's metadata, or NULL. */
static json_object *volume_seg0(const struct kd_volume *v)
{
	json_object *segs, *seg;

	if (!v->meta || kd_lj_obj(v->meta, "LUKS2 metadata", "segments", &segs) ||
	    kd_lj_obj(segs, "LUKS2 segments", "0", &seg))
		return NULL;
	return seg;
}

size_t kd_volume_key_size(const struct kd_volume *v)
{
	json_object *integ = NULL;

	/* The allow-list admits integrity on segment 0 only in keyd's profile. */
	return !kd_lj_opt(volume_seg0(v), "segment 0", "integrity", json_type_object, &integ) && integ
		       ? KD_VOLUME_KEY_SIZE_MAX
		       : KD_VOLUME_KEY_SIZE;
}

const struct kd_token *kd_volume_tokens(const struct kd_volume *v, size_t *ret_n)
{
	*ret_n = v->n_toks;
	return v->toks;
}

size_t kd_volume_untokened_keyslots(const struct kd_volume *v)
{
	json_object *slots;
	size_t n = 0;

	if (!v->meta || kd_lj_obj(v->meta, "LUKS2 metadata", "keyslots", &slots))
		return (size_t)-1;
	json_object_object_foreach(slots, id, slot) {
		bool described = false;

		(void)slot;
		for (size_t i = 0; i < v->n_toks; i++)
			described |= v->toks[i].keyslot == atoi(id);
		n += !described;
	}
	return n;
}

static const char *used_label(const struct kd_volume *v)
{
	return v->health.used ? v->health.secondary.label : v->health.primary.label;
}

static int volume_usable(const struct kd_volume *v)
{
	if (v->health.allow_err)
		return kd_fail(v->health.allow_err, "header refused: %s", v->health.allow_detail);
	if (!strcmp(used_label(v), KD_PROVISIONING_LABEL))
		return kd_fail(KD_EREFUSED, "provisioning of this volume never finished (it holds no "
					    "data); run keyd enroll --format on it again");
	return 0;
}

/* ---------------------------------------------------------------- match */

static void short_hex(const uint8_t *b, size_t n, char *out /* 2n+1 */)
{
	kd_hex(b, n, out);
}

static int state_rank(enum kd_token_state s)
{
	return s == KD_TOKEN_ACTIVE ? 2 : s == KD_TOKEN_PENDING ? 1 : 0;
}

int kd_volume_match(const struct kd_volume *v, const struct kd_launch *l, size_t *ret_index)
{
	const struct kd_report *rep = &l->report;
	uint8_t chip[KD_CHIP_DIGEST_SIZE];
	bool launch_chip = !chip_is_zero(rep->chip_id);
	int best = -1, r;
	const struct kd_token *near_policy = NULL, *near_chip = NULL, *near_tcb = NULL, *any = NULL;

	if ((r = volume_usable(v)))
		return r;
	if (launch_chip && kd_chip_digest(rep->chip_id, chip))
		return kd_fail(KD_ECRYPTO, "cannot digest this launch's chip ID");
	for (size_t i = 0; i < v->n_toks; i++) {
		const struct kd_token *t = &v->toks[i];
		bool meas = !memcmp(t->measurement, rep->measurement, sizeof(t->measurement));
		bool pol = t->policy == rep->policy;
		bool chip_ok = !t->has_chip || !launch_chip || !memcmp(t->chip, chip, sizeof(chip));
		bool tcb_ok = kd_tcb_ge(rep->committed_tcb, t->tcb, rep->product);

		if (!any || t->state == KD_TOKEN_ACTIVE)
			any = any && any->state == KD_TOKEN_ACTIVE ? any : t;
		if (meas && !pol)
			near_policy = t;
		if (meas && pol && !chip_ok)
			near_chip = t;
		if (meas && pol && chip_ok && !tcb_ok)
			near_tcb = t;
		if (!(meas && pol && chip_ok && tcb_ok))
			continue;
		/*
		 * Active before pending before retired; then the highest TCB (after
		 * an interrupted re-key both the old and the new slot are there). A
		 * retired token is the previous version kept by `keyd commit
		 * --keep-previous` for one rollback (docs/architecture.md#upgrade-path): it still
		 * opens for its own launch, last of all.
		 */
		if (best < 0 || state_rank(t->state) > state_rank(v->toks[best].state) ||
		    (t->state == v->toks[best].state && t->tcb != v->toks[best].tcb &&
		     kd_tcb_ge(t->tcb, v->toks[best].tcb, rep->product)))
			best = (int)i;
	}
	if (best >= 0) {
		*ret_index = (size_t)best;
		return 0;
	}
	if (near_tcb) {
		char a[KD_TCB_HEX_LEN], b[KD_TCB_HEX_LEN];

		kd_tcb_hex(near_tcb->tcb, a);
		kd_tcb_hex(rep->committed_tcb, b);
		return kd_fail(KD_EFIRMWARE, "firmware TCB rolled back below the sealed TCB; no key can "
					     "be derived (sealed at TCB %s, committed TCB is %s)", a, b);
	}
	if (near_chip)
		return kd_fail(KD_EPOLICY, "sealed to another chip (label %s); this launch runs on a "
					   "different AMD-SP, whose keys differ", near_chip->label);
	if (near_policy) {
		if (rep->policy & KD_POLICY_DEBUG)
			return kd_fail(KD_EPOLICY, "this launch has a debug policy (0x%llx); the volume is "
						   "sealed to policy 0x%llx (label %s), and a debug "
						   "launch can never derive its key",
				       (unsigned long long)rep->policy,
				       (unsigned long long)near_policy->policy, near_policy->label);
		return kd_fail(KD_EPOLICY, "launch policy 0x%llx differs from the sealed policy 0x%llx "
					   "(label %s)", (unsigned long long)rep->policy,
			       (unsigned long long)near_policy->policy, near_policy->label);
	}
	if (any) {
		char a[2 * KD_MEASUREMENT_SIZE + 1], b[2 * KD_MEASUREMENT_SIZE + 1];

		short_hex(any->measurement, 6, a);
		short_hex(rep->measurement, 6, b);
		return kd_fail(KD_ENOKEY, "sealed to measurement %s\u2026 (label %s), this launch is "
					  "%s\u2026; no handoff enrolled it", a, any->label, b);
	}
	return kd_fail(KD_ENOKEY, "the volume has no usable keyd token; this launch cannot open it");
}

/* ---------------------------------------------------------------- libcryptsetup */

static int checked_fail(struct kd_checked_cd *c, int r)
{
	kd_checked_cd_free(c);
	return r;
}

void kd_checked_cd_free(struct kd_checked_cd *c)
{
	if (!c)
		return;
	crypt_free(c->cd);
	c->cd = NULL;
	json_object_put(c->meta);
	c->meta = NULL;
	if (c->snap_fd >= 0)
		close(c->snap_fd);
	c->snap_fd = -1;
}

int kd_volume_checked_cd(struct kd_volume *v, enum kd_cd_mode mode, struct kd_checked_cd *ret)
{
	struct kd_checked_cd c = {.snap_fd = -1};
	struct kd_header_snap s; /* s.path names the copy until crypt_init */
	struct kd_header_health h;
	const char *json = NULL, *dev = v->path, *uuid;
	json_object *now;
	bool same;
	int r, fd;

	if (v->health.allow_err)
		return kd_fail(v->health.allow_err, "header refused: %s", v->health.allow_detail);
	if (mode == KD_CD_WRITE) {
		struct stat st;

		fd = open(v->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return kd_fail(KD_EIO, "cannot open %.200s: %s", v->path, strerror(errno));
		/* As in volume_load: never read a half-written header. */
		if (!fstat(fd, &st) && S_ISREG(st.st_mode))
			(void)flock(fd, LOCK_SH);
		r = kd_header_read(fd, &h, &c.meta);
		close(fd);
		if (r)
			return checked_fail(&c, r);
		if (!h.allow_err && (r = kd_header_require_agree(&h)))
			return checked_fail(&c, r);
	} else {
		if ((r = kd_header_snapshot(v->path, mode == KD_CD_READ_KEYSLOTS ? KD_SNAP_KEYSLOTS
										  : KD_SNAP_HEADER,
					    &s)))
			return r;
		h = s.health;
		c.meta = s.meta;
		c.snap_fd = s.fd;
		dev = s.path;
	}
	if (h.allow_err)
		return checked_fail(&c, kd_fail(h.allow_err, "header refused: %s", h.allow_detail));
	uuid = h.used ? h.secondary.uuid : h.primary.uuid;
	if (strcmp(uuid, v->uuid))
		return checked_fail(&c, kd_fail(KD_ETAMPER, "LUKS2 header UUID changed since the "
							    "volume was opened"));
	if ((r = crypt_init(&c.cd, dev)) < 0)
		return checked_fail(&c, kd_fail(KD_ELUKS, "cannot open %.200s: %s", v->path,
						strerror(-r)));
	if ((r = crypt_load(c.cd, CRYPT_LUKS2, NULL)) < 0)
		return checked_fail(&c, kd_fail(KD_ELUKS, "libcryptsetup cannot load the LUKS2 "
							  "header: %s", strerror(-r)));
	if (crypt_dump_json(c.cd, &json, 0) < 0 || !json)
		return checked_fail(&c, kd_fail(KD_ELUKS, "libcryptsetup cannot dump the LUKS2 "
							  "metadata"));
	now = json_tokener_parse(json);
	same = now && json_object_equal(now, c.meta) && !strcmp(crypt_get_uuid(c.cd) ?: "", v->uuid);
	json_object_put(now);
	if (!same)
		return checked_fail(&c, kd_fail(KD_ETAMPER, "LUKS2 header changed between the "
							    "allow-list and its use"));
	*ret = c;
	return 0;
}

/* As kd_volume_checked_cd, and the metadata is still what v was opened with. */
static int volume_cd(struct kd_volume *v, enum kd_cd_mode mode, struct kd_checked_cd *ret)
{
	struct kd_checked_cd c;
	int r;

	if ((r = kd_volume_checked_cd(v, mode, &c)))
		return r;
	if (!json_object_equal(c.meta, v->meta))
		return checked_fail(&c, kd_fail(KD_ETAMPER, "LUKS2 header changed between the "
							    "allow-list and its use"));
	*ret = c;
	return 0;
}

int kd_volume_unlock_keys(struct kd_volume *v, struct kd_backend *b, const struct kd_launch *l,
			  struct kd_secret **ret_vk, struct kd_secret **ret_pass,
			  struct kd_secret **ret_pin_key, struct kd_token *ret_tok)
{
	_kd_secret_ struct kd_secret *pass = NULL, *pin_key = NULL, *vk = NULL;
	struct kd_checked_cd c;
	const struct kd_token *t;
	uint8_t pin[KD_PIN_SIZE];
	size_t idx, vk_want = kd_volume_key_size(v), vk_len = vk_want;
	int r;

	/* 1 + 2: allow-list (in volume_usable), token for this launch. */
	if ((r = kd_volume_match(v, l, &idx)))
		return r;
	t = &v->toks[idx];
	/*
	 * A pending slot from a handoff holds secrets O made: unwrap them with
	 * this launch's key-agreement key, after checking O's evidence
	 * (pending.h). Any other slot is sealed to this launch.
	 */
	if (t->state == KD_TOKEN_PENDING)
		r = open_pending(v, b, l, t, &pass, &pin_key);
	else
		r = kd_seal_keys_for_token(b, t, v->uuid, &pass, &pin_key);
	if (r)
		return r;
	if ((r = kd_secret_new(vk_want, &vk)))
		return r;
	/* 3: the volume key, without activating anything, from a private copy
	 * of the header and keyslot areas: nothing here may write the device. */
	if ((r = volume_cd(v, KD_CD_READ_KEYSLOTS, &c)))
		return r;
	r = crypt_volume_key_get(c.cd, t->keyslot, (char *)vk->data, &vk_len,
				 (const char *)pass->data, pass->len);
	kd_checked_cd_free(&c);
	if (r < 0 || vk_len != vk_want)
		return kd_fail(KD_ETAMPER, "keyd keyslot %d does not open with this launch's key (label "
					   "%s): header replaced or keyslot damaged", t->keyslot, t->label);
	/* 4: the pin, in constant time, before anything uses the key. */
	if ((r = kd_volume_pin(pin_key, vk, v->meta, v->uuid, t->keyslot, pin)))
		return r;
	if (!kd_ct_equal(pin, t->pin, sizeof(pin))) {
		kd_wipe(pin, sizeof(pin));
		return kd_fail(KD_ETAMPER, "volume-key pin of keyd token %d does not verify: the header "
					   "was altered (known-volume-key attack?)", t->token_id);
	}
	kd_wipe(pin, sizeof(pin));
	if (ret_tok)
		*ret_tok = *t;
	if (ret_pass)
		*ret_pass = kd_secret_take(&pass);
	if (ret_pin_key)
		*ret_pin_key = kd_secret_take(&pin_key);
	*ret_vk = kd_secret_take(&vk);
	return 0;
}

int kd_volume_unlock_secrets(struct kd_volume *v, struct kd_backend *b, const struct kd_launch *l,
			     struct kd_secret **ret_vk, struct kd_secret **ret_pass,
			     struct kd_token *ret_tok)
{
	return kd_volume_unlock_keys(v, b, l, ret_vk, ret_pass, NULL, ret_tok);
}

int kd_volume_get_key(struct kd_volume *v, struct kd_backend *b, const struct kd_launch *l,
		      struct kd_secret **ret_vk, struct kd_token *ret_tok)
{
	return kd_volume_unlock_secrets(v, b, l, ret_vk, NULL, ret_tok);
}

/* ---------------------------------------------------------------- activation */

/* Does dm device number (maj, min) stand for the path we were asked for? */
static bool dm_device_is(const char *devfield, const char *path)
{
	unsigned maj, min;
	struct stat st;
	char sys[96], back[4096], real[4096];
	FILE *f;
	bool ok = false;

	if (sscanf(devfield, "%u:%u", &maj, &min) != 2 || stat(path, &st))
		return false;
	if (S_ISBLK(st.st_mode))
		return st.st_rdev == makedev(maj, min);
	/* An image file is mapped through a loop device: check its backing file. */
	snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u/loop/backing_file", maj, min);
	if (!(f = fopen(sys, "re")))
		return false;
	if (fgets(back, sizeof(back), f)) {
		back[strcspn(back, "\n")] = 0;
		ok = realpath(path, real) && !strcmp(back, real);
	}
	fclose(f);
	return ok;
}

/*
 * An --integrity volume maps crypt on top of a dm-integrity device: that one
 * must be a single integrity target over our device at the segment offset,
 * journalled, with 32-byte tags and 4096-byte blocks.
 */
static bool dm_integrity_is(const char *devfield, const char *path, uint64_t seg_off)
{
	struct dm_task *dmt;
	uint64_t start, length;
	char *type = NULL, *params = NULL, devf[32], mode;
	unsigned maj, min, tag;
	unsigned long long off;
	bool ok = false;
	void *next;

	if (sscanf(devfield, "%u:%u", &maj, &min) != 2 || !(dmt = dm_task_create(DM_DEVICE_TABLE)))
		return false;
	if (dm_task_set_major(dmt, (int)maj) && dm_task_set_minor(dmt, (int)min) && dm_task_run(dmt)) {
		next = dm_get_next_target(dmt, NULL, &start, &length, &type, &params);
		ok = !next && start == 0 && type && params && !strcmp(type, "integrity") &&
		     sscanf(params, "%31s %llu %u %c", devf, &off, &tag, &mode) == 4 &&
		     off == seg_off / 512 && tag == 32 && mode == 'J' &&
		     strstr(params, " block_size:4096") && dm_device_is(devf, path);
	}
	dm_task_destroy(dmt);
	return ok;
}

static int dm_check(const char *name, const char *path, const struct kd_volume *v)
{
	struct dm_task *dmt;
	uint64_t start, length, seg_off = 0;
	char *type = NULL, *params = NULL;
	char cipher[64], key[8], devf[32];
	unsigned long long iv, off;
	int n = 0;
	bool match = false;
	json_object *seg;
	bool integ;

	if (!(dmt = dm_task_create(DM_DEVICE_TABLE)))
		return kd_fail(KD_EIO, "libdevmapper: cannot create a table task");
	/* The table may carry the key in hex: keep it out of logs and wipe it. */
	dm_task_secure_data(dmt);
	if (!dm_task_set_name(dmt, name) || !dm_task_run(dmt)) {
		dm_task_destroy(dmt);
		return kd_fail(KD_EIO, "libdevmapper: cannot read the table of %.64s", name);
	}
	dm_get_next_target(dmt, NULL, &start, &length, &type, &params);
	seg = volume_seg0(v);
	integ = kd_lj_has(seg, "integrity");
	if (kd_lj_u64(seg, "segment 0", "offset", &seg_off))
		seg_off = UINT64_MAX; /* matches no table */
	if (type && params && !strcmp(type, "crypt") &&
	    sscanf(params, "%63s %7s%*s %llu %31s %llu%n", cipher, key, &iv, devf, &off, &n) == 5 &&
	    iv == 0 && strstr(params + n, "sector_size:4096") &&
	    (integ ? !strcmp(cipher, "capi:authenc(hmac(sha256),xts(aes))-plain64") && off == 0 &&
			     strstr(params + n, "integrity:32:aead") &&
			     dm_integrity_is(devf, path, seg_off)
		   : !strcmp(cipher, "aes-xts-plain64") && off == seg_off / 512 &&
			     dm_device_is(devf, path)))
		match = true;
	if (params)
		kd_wipe(params, strlen(params));
	dm_task_destroy(dmt);
	return match ? 0 : kd_fail(KD_ETAMPER, "active dm table of %.64s is not the crypt mapping "
						"that was asked for", name);
}

int kd_volume_activate(struct kd_volume *v, const char *name, const struct kd_secret *vk,
		       uint32_t extra_flags)
{
	struct kd_checked_cd c;
	struct crypt_device *cd;
	int r;

	if ((r = volume_usable(v)) || (r = volume_cd(v, KD_CD_WRITE, &c)))
		return r;
	cd = c.cd;
	r = crypt_activate_by_volume_key(cd, name, (const char *)vk->data, vk->len,
					 CRYPT_ACTIVATE_NO_READ_WORKQUEUE |
						 CRYPT_ACTIVATE_NO_WRITE_WORKQUEUE | extra_flags);
	if (r < 0) {
		kd_checked_cd_free(&c);
		return kd_fail(KD_ELUKS, "activation of %.64s failed: %s", name, strerror(-r));
	}
	if ((r = dm_check(name, v->path, v))) {
		int e = r;

		crypt_deactivate(cd, name);
		kd_checked_cd_free(&c);
		return e;
	}
	kd_checked_cd_free(&c);
	return 0;
}

/* ---------------------------------------------------------------- writing */

int kd_volume_set_pbkdf(struct crypt_device *cd)
{
	/* Explicit on every keyslot operation: the default is Argon2id with up
	 * to 1 GiB, which an initramfs cannot afford (docs/formats.md §1). */
	const struct crypt_pbkdf_type pbkdf = {
		.type = CRYPT_KDF_PBKDF2,
		.hash = "sha512",
		.iterations = KD_KEYSLOT_PBKDF_ITER,
		.flags = CRYPT_PBKDF_NO_BENCHMARK,
	};
	int r = crypt_set_pbkdf_type(cd, &pbkdf);

	return r < 0 ? kd_fail(KD_ELUKS, "cannot set PBKDF2-SHA512/1000: %s", strerror(-r)) : 0;
}

static int cd_meta(struct crypt_device *cd, json_object **ret)
{
	const char *json = NULL;
	json_object *o;

	if (crypt_dump_json(cd, &json, 0) < 0 || !json || !(o = json_tokener_parse(json)))
		return kd_fail(KD_ELUKS, "libcryptsetup cannot dump the LUKS2 metadata");
	*ret = o;
	return 0;
}

/* Add a keyslot, then its token; fp_* name the failpoints of the caller's flow. */
static int add_slot_cd(struct crypt_device *cd, const struct kd_secret *vk,
		       const struct kd_secret *pass, const struct kd_secret *pin_key,
		       const struct kd_token *meta, const char *fp_slot, const char *fp_token,
		       kd_slot_seal_fn seal, void *seal_ctx, int *ret_keyslot)
{
	struct kd_token t = *meta;
	json_object *m = NULL;
	char *json = NULL;
	const char *uuid = crypt_get_uuid(cd);
	int slot, r;

	if (!uuid)
		return kd_fail(KD_ELUKS, "volume has no UUID");
	if ((r = kd_volume_set_pbkdf(cd)))
		return r;
	/*
	 * libcryptsetup checks vk against this header's digest before it
	 * writes anything (-EPERM: "Volume key does not match the volume"), in
	 * this same context: a separate crypt_volume_key_verify first would
	 * run the digest's PBKDF2 twice for the same answer.
	 */
	slot = crypt_keyslot_add_by_volume_key(cd, CRYPT_ANY_SLOT, (const char *)vk->data, vk->len,
					       (const char *)pass->data, pass->len);
	if (slot == -EPERM)
		return kd_fail(KD_EINVAL, "the key given is not this volume's key");
	if (slot < 0)
		return kd_fail(KD_ELUKS, "cannot add a keyslot: %s", strerror(-slot));
	if (fp_slot)
		kd_failpoint(fp_slot);
	if ((r = cd_meta(cd, &m)))
		return r;
	t.keyslot = slot;
	t.token_id = -1;
	r = kd_volume_pin(pin_key, vk, m, uuid, slot, t.pin);
	json_object_put(m);
	if (r)
		goto undo;
	if (seal) {
		r = seal(seal_ctx, uuid, &t);
		if (r)
			goto undo;
	}
	r = kd_token_format(&t, &json);
	if (r)
		goto undo;
	r = crypt_token_json_set(cd, CRYPT_ANY_TOKEN, json);
	free(json);
	if (r < 0) {
		/* Undo the slot: a keyslot nobody describes helps no one. */
		crypt_keyslot_destroy(cd, slot);
		return kd_fail(KD_ELUKS, "cannot write the keyd token: %s", strerror(-r));
	}
	if (fp_token)
		kd_failpoint(fp_token);
	if (ret_keyslot)
		*ret_keyslot = slot;
	return 0;
undo:
	/* Undo the slot: a keyslot nobody describes helps no one. */
	crypt_keyslot_destroy(cd, slot);
	return r;
}

static int write_cd(struct kd_volume *v, struct kd_checked_cd *ret)
{
	int r = volume_usable(v);

	return r ? r : volume_cd(v, KD_CD_WRITE, ret);
}

static int add_slot(struct kd_volume *v, const struct kd_secret *vk, const struct kd_secret *pass,
		    const struct kd_secret *pin_key, const struct kd_token *meta, const char *fp_slot,
		    const char *fp_token, kd_slot_seal_fn seal, void *seal_ctx, int *ret_keyslot)
{
	struct kd_checked_cd c;
	int r, r2;

	if (!vk || vk->len != kd_volume_key_size(v) || !pass || !pin_key || !meta)
		return kd_fail(KD_EINVAL, "add slot: volume key, passphrase, pin key and token needed");
	if ((r = write_cd(v, &c)))
		return r;
	r = add_slot_cd(c.cd, vk, pass, pin_key, meta, fp_slot, fp_token, seal, seal_ctx,
			ret_keyslot);
	kd_checked_cd_free(&c);
	if (r) {
		/* The reload must not overwrite the reason the add failed. */
		char d[512];

		snprintf(d, sizeof(d), "%s", kd_err_detail(r));
		(void)volume_load(v);
		return kd_fail(r, "%s", d);
	}
	r2 = volume_load(v);
	return r2;
}

int kd_volume_add_slot_fp(struct kd_volume *v, const struct kd_secret *vk,
			  const struct kd_secret *pass, const struct kd_secret *pin_key,
			  const struct kd_token *meta, const char *fp_slot, const char *fp_token,
			  int *ret_keyslot)
{
	return add_slot(v, vk, pass, pin_key, meta, fp_slot, fp_token, NULL, NULL, ret_keyslot);
}

int kd_volume_add_slot_sealed(struct kd_volume *v, const struct kd_secret *vk,
			      const struct kd_secret *pass, const struct kd_secret *pin_key,
			      const struct kd_token *meta, const char *fp_slot, const char *fp_token,
			      kd_slot_seal_fn seal, void *seal_ctx, int *ret_keyslot)
{
	return add_slot(v, vk, pass, pin_key, meta, fp_slot, fp_token, seal, seal_ctx, ret_keyslot);
}

static struct kd_token *token_by_slot(struct kd_volume *v, int keyslot)
{
	for (size_t i = 0; i < v->n_toks; i++)
		if (v->toks[i].keyslot == keyslot)
			return &v->toks[i];
	return NULL;
}

int kd_volume_set_state(struct kd_volume *v, int keyslot, enum kd_token_state state)
{
	struct kd_checked_cd c;
	struct kd_token *t = token_by_slot(v, keyslot), n;
	char *json = NULL;
	int r;

	if (!t)
		return kd_fail(KD_ENOENT, "no keyd token on keyslot %d", keyslot);
	n = *t;
	n.state = state;
	if ((r = kd_token_format(&n, &json)))
		return r;
	if ((r = write_cd(v, &c))) {
		free(json);
		return r;
	}
	r = crypt_token_json_set(c.cd, n.token_id, json);
	free(json);
	kd_checked_cd_free(&c);
	if (r < 0)
		return kd_fail(KD_ELUKS, "cannot update keyd token %d: %s", n.token_id, strerror(-r));
	return volume_load(v);
}

static int retire_fp(struct kd_volume *v, int keyslot, bool force, const char *fp_before,
		     const char *fp_after)
{
	struct kd_checked_cd c;
	struct kd_token *t = token_by_slot(v, keyslot);
	size_t others = 0;
	int r;

	if (!t)
		return kd_fail(KD_ENOENT, "no keyd token on keyslot %d", keyslot);
	/*
	 * Only an ACTIVE slot counts as another way in: a pending slot belongs
	 * to a launch that has not yet proven it boots and unlocks (model
	 * property 5, threat-model/model: retiring O while N is only pending
	 * loses the volume if N never boots).
	 */
	for (size_t i = 0; i < v->n_toks; i++)
		others += v->toks[i].keyslot != keyslot && v->toks[i].state == KD_TOKEN_ACTIVE;
	if (!others && !force)
		return kd_fail(KD_EREFUSED, "keyslot %d is the last active keyd slot that opens this "
					    "volume; refusing to retire it", keyslot);
	if ((r = write_cd(v, &c)))
		return r;
	/* Token first, keyslot after: a crash in between leaves a keyslot with
	 * no token (harmless), never a token naming a missing keyslot, which
	 * the allow-list would refuse. */
	r = crypt_token_json_set(c.cd, t->token_id, NULL);
	if (r >= 0) {
		kd_failpoint(fp_before);
		r = crypt_keyslot_destroy(c.cd, keyslot);
		kd_failpoint(fp_after);
	}
	kd_checked_cd_free(&c);
	if (r < 0)
		return kd_fail(KD_ELUKS, "cannot retire keyslot %d: %s", keyslot, strerror(-r));
	return volume_load(v);
}

int kd_volume_retire(struct kd_volume *v, int keyslot, bool force)
{
	return retire_fp(v, keyslot, force, "retire.before-kill", "retire.after-kill");
}

int kd_volume_retire_fp(struct kd_volume *v, int keyslot, const char *fp_before,
			const char *fp_after)
{
	return retire_fp(v, keyslot, false, fp_before, fp_after);
}

int kd_volume_reclaim_orphans(struct kd_volume *v, const char *fp_after, size_t *ret_n)
{
	struct kd_checked_cd c;
	json_object *slots, *tokens;
	uint32_t used = 0, orphans = 0;
	char where[24];
	size_t n = 0;
	int r;

	if (!v->meta)
		return kd_fail(KD_EINVAL, "reclaim: no parsed metadata");
	/* Host-written JSON: through the typed getters (luks2json.h). */
	if ((r = kd_lj_obj(v->meta, "LUKS2 metadata", "keyslots", &slots)) ||
	    (r = kd_lj_obj(v->meta, "LUKS2 metadata", "tokens", &tokens)))
		return r;
	json_object_object_foreach(tokens, tid, tok) {
		uint32_t m;

		if ((r = kd_lj_id(tid, "LUKS2 tokens", "token")) < 0)
			return r;
		kd_lj_where(where, sizeof(where), "token", tid);
		if ((r = kd_lj_id_set(tok, where, "keyslots", &m)))
			return r;
		used |= m;
	}
	json_object_object_foreach(slots, kid, ks) {
		int id = kd_lj_id(kid, "LUKS2 keyslots", "keyslot");

		(void)ks;
		if (id < 0)
			return id;
		/* A rotation's old-key and journal keyslots have no token by
		 * design (rotate.h): never an orphan. */
		if (!(used & (1u << id)) && !kd_rotate_keyslot_role(v->meta, id))
			orphans |= 1u << id;
	}
	if (!orphans) {
		if (ret_n)
			*ret_n = 0;
		return 0;
	}
	if ((r = write_cd(v, &c)))
		return r;
	for (int slot = 0; slot < (int)KD_LJ_MAX_ID; slot++) {
		if (!(orphans & (1u << slot)) ||
		    crypt_keyslot_status(c.cd, slot) != CRYPT_SLOT_ACTIVE)
			continue;
		r = crypt_keyslot_destroy(c.cd, slot);
		if (r < 0) {
			kd_checked_cd_free(&c);
			return kd_fail(KD_ELUKS, "cannot kill orphaned keyslot %d: %s", slot,
				       strerror(-r));
		}
		if (fp_after)
			kd_failpoint(fp_after);
		n++;
	}
	kd_checked_cd_free(&c);
	if ((r = volume_load(v)))
		return r;
	if (ret_n)
		*ret_n = n;
	return 0;
}

int kd_volume_rekey(struct kd_volume *v, struct kd_backend *b, const struct kd_launch *l,
		    const struct kd_secret *vk, const struct kd_token *used, bool *ret_done)
{
	_kd_secret_ struct kd_secret *pass = NULL, *pin_key = NULL;
	struct kd_token n = *used;
	time_t now = time(NULL);
	struct tm tm;
	int slot = -1, r;
	bool done = false;

	/* A pending handoff slot holds O's secrets: `keyd commit` replaces it
	 * with a sealed slot at the committed TCB; nothing to re-key here. */
	if (used->has_wrap) {
		if (ret_done)
			*ret_done = false;
		return 0;
	}
	if (used->tcb != l->report.committed_tcb &&
	    kd_tcb_ge(l->report.committed_tcb, used->tcb, l->report.product)) {
		n.tcb = l->report.committed_tcb;
		gmtime_r(&now, &tm);
		strftime(n.created, sizeof(n.created), "%Y-%m-%dT%H:%M:%SZ", &tm);
		if ((r = kd_seal_keys_for_token(b, &n, v->uuid, &pass, &pin_key)) ||
		    (r = add_slot(v, vk, pass, pin_key, &n, "rekey.after-keyslot", "rekey.after-token",
				  NULL, NULL, &slot)))
			return r;
		done = true;
	} else {
		slot = used->keyslot;
	}
	/* Retire every older slot of the same binding: the one just replaced,
	 * and any an interrupted earlier re-key left behind. */
	for (size_t i = 0; i < v->n_toks;) {
		const struct kd_token *o = &v->toks[i];
		const struct kd_token *cur = token_by_slot(v, slot);

		if (cur && o->keyslot != slot && o->state != KD_TOKEN_RETIRED &&
		    !memcmp(o->measurement, cur->measurement, sizeof(o->measurement)) &&
		    o->policy == cur->policy && o->has_chip == cur->has_chip &&
		    !memcmp(o->chip, cur->chip, sizeof(o->chip)) && o->tcb != cur->tcb &&
		    kd_tcb_ge(cur->tcb, o->tcb, l->report.product)) {
			if ((r = retire_fp(v, o->keyslot, false, "rekey.before-retire",
					   "rekey.after-retire")))
				return r;
			done = true;
			i = 0; /* the token list was reloaded */
			continue;
		}
		i++;
	}
	if (ret_done)
		*ret_done = done;
	return 0;
}

/* ---------------------------------------------------------------- enroll */

/* What signature, if any, is on the device (superblocks and partition tables). */
static int probe_signature(const char *path, char *type, size_t type_len)
{
	blkid_probe pr = blkid_new_probe_from_filename(path);
	const char *val = NULL;
	int r;

	type[0] = 0;
	if (!pr)
		return kd_fail(KD_EIO, "libblkid cannot probe %.200s", path);
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE);
	blkid_probe_enable_partitions(pr, 1);
	blkid_probe_set_partitions_flags(pr, BLKID_PARTS_ENTRY_DETAILS);
	r = blkid_do_safeprobe(pr);
	if (r == 0) {
		if (!blkid_probe_lookup_value(pr, "TYPE", &val, NULL) ||
		    !blkid_probe_lookup_value(pr, "PTTYPE", &val, NULL))
			snprintf(type, type_len, "%s", val);
		else
			snprintf(type, type_len, "unknown");
	} else if (r == -2) {
		snprintf(type, type_len, "ambiguous (several signatures)");
	}
	blkid_free_probe(pr);
	if (r == -1)
		return kd_fail(KD_EIO, "libblkid probe of %.200s failed", path);
	return 0;
}

/*
 * Formatting with integrity runs dm-integrity (superblock, and the tags when
 * wiping): without device-mapper it cannot work, so say so before touching
 * the device. The control node may exist while the driver does not (ENODEV).
 */
static int dm_available(void)
{
	int fd = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return kd_fail(KD_EREFUSED, "--integrity needs device-mapper with dm-integrity, which "
					    "is not available here (%s); provision inside the guest",
			       strerror(errno));
	close(fd);
	return 0;
}

/*
 * Write every sector once through a private mapping, so that every
 * integrity tag is valid (cryptsetup's default for --integrity; without it
 * unwritten sectors read as integrity errors). The journal is bypassed: a
 * crash during this only means provisioning is redone.
 */
static int integrity_wipe(struct crypt_device *cd, const struct kd_secret *vk)
{
	char name[64], path[96];
	int r;

	snprintf(name, sizeof(name), "keyd-wipe-%.36s", crypt_get_uuid(cd) ?: "new");
	r = crypt_activate_by_volume_key(cd, name, (const char *)vk->data, vk->len,
					 CRYPT_ACTIVATE_PRIVATE | CRYPT_ACTIVATE_NO_JOURNAL);
	if (r < 0)
		return kd_fail(KD_ELUKS, "cannot map the new volume to initialise its integrity tags: "
					 "%s", strerror(-r));
	snprintf(path, sizeof(path), "/dev/mapper/%s", name);
	r = crypt_wipe(cd, path, CRYPT_WIPE_ZERO, 0, 0, 1024 * 1024, 0, NULL, NULL);
	crypt_deactivate(cd, name);
	return r < 0 ? kd_fail(KD_EIO, "initialising the integrity tags failed: %s", strerror(-r)) : 0;
}

int kd_volume_enroll(const char *device, struct kd_backend *b, const struct kd_launch *l,
		     const struct kd_enroll_opts *o, bool *ret_redone)
{
	_kd_secret_ struct kd_secret *vk = NULL, *pass = NULL, *pin_key = NULL;
	struct crypt_params_luks2 params = {.sector_size = KD_VOLUME_SECTOR_SIZE,
					    .label = KD_PROVISIONING_LABEL};
	struct crypt_device *cd = NULL;
	struct kd_volume *v = NULL;
	struct kd_token tok;
	char *path = NULL, sig[64];
	bool redone = false;
	int r;

	if (o->integrity_no_wipe && !o->integrity)
		return kd_fail(KD_EINVAL, "--integrity-no-wipe needs --integrity");
	if (o->integrity) {
		params.integrity = KD_VOLUME_INTEGRITY;
		if ((r = dm_available()))
			return r;
	}
	if ((r = kd_device_resolve(device, &path)))
		return r;
	if ((r = probe_signature(path, sig, sizeof(sig))))
		goto out;
	if (!strcmp(sig, "crypto_LUKS") && !kd_volume_open(path, &v)) {
		bool active = false;

		for (size_t i = 0; i < v->n_toks; i++)
			active |= v->toks[i].state == KD_TOKEN_ACTIVE;
		/* The provisioning label is cleared only after the first token is
		 * written, and unlock refuses a labelled volume: such a volume was
		 * never opened for use, so it holds no data and is redone. */
		redone = !v->health.allow_err && !strcmp(used_label(v), KD_PROVISIONING_LABEL) && !active;
		if (!redone && !o->force) {
			r = kd_fail(KD_EREFUSED, "%.200s is a %s LUKS2 volume that may hold data; refusing "
						 "to reformat it (--force destroys it)", path,
				    v->n_toks ? "provisioned keyd" : "non-keyd");
			goto out;
		}
	} else if (sig[0] && !o->force) {
		r = kd_fail(KD_EREFUSED, "%.200s carries a %s signature; refusing to format it "
					 "(--force destroys it)", path, sig);
		goto out;
	}
	kd_volume_close(v);
	v = NULL;
	if ((r = kd_token_for_launch(l, o->label, o->svn, KD_TOKEN_ACTIVE, &tok)))
		goto out;
	if ((r = kd_secret_new(o->integrity ? KD_VOLUME_KEY_SIZE_MAX : KD_VOLUME_KEY_SIZE, &vk)))
		goto out;
	if (RAND_priv_bytes(vk->data, (int)vk->len) != 1) {
		r = kd_fail(KD_ECRYPTO, "no randomness for the volume key");
		goto out;
	}
	if ((r = crypt_init(&cd, path)) < 0) {
		r = kd_fail(KD_ELUKS, "cannot open %.200s: %s", path, strerror(-r));
		goto out;
	}
	if ((r = kd_volume_set_pbkdf(cd)))
		goto out;
	r = crypt_format(cd, CRYPT_LUKS2, KD_VOLUME_CIPHER, KD_VOLUME_CIPHER_MODE, NULL,
			 (const char *)vk->data, vk->len, &params);
	if (r < 0) {
		r = kd_fail(KD_ELUKS, "LUKS2 format of %.200s failed: %s", path, strerror(-r));
		goto out;
	}
	kd_failpoint("enroll.after-format");
	if ((r = kd_seal_keys_for_token(b, &tok, crypt_get_uuid(cd), &pass, &pin_key)) ||
	    (r = add_slot_cd(cd, vk, pass, pin_key, &tok, "enroll.after-keyslot", "enroll.after-token",
			     NULL, NULL, NULL)))
		goto out;
	/* Before the label is cleared: an interrupted wipe is redone as an
	 * unfinished provisioning. */
	if (o->integrity && !o->integrity_no_wipe && (r = integrity_wipe(cd, vk)))
		goto out;
	if ((r = crypt_set_label(cd, NULL, NULL)) < 0) {
		r = kd_fail(KD_ELUKS, "cannot clear the provisioning label: %s", strerror(-r));
		goto out;
	}
	r = 0;
	if (ret_redone)
		*ret_redone = redone;
out:
	crypt_free(cd);
	kd_volume_close(v);
	free(path);
	return r;
}
