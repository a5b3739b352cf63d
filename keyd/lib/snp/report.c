/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SEV-SNP ATTESTATION_REPORT codec. Layout and reserved ranges: docs/snp-facts.md §2
 * (go-sev-guest abi.ReportToProto, virtee AttestationReport, checked against
 * every real vector). The parser walks the report front to back through one
 * cursor so that no byte is skipped unchecked: every range is either a field
 * or must-be-zero for the report's version.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "keyd/cursor.h"
#include "keyd/error.h"
#include "keyd/report.h"
#include "keyd/util.h"

/* ------------------------------------------------------------ products */

const char *kd_product_name(enum kd_product p)
{
	switch (p) {
	case KD_PRODUCT_MILAN:
		return "Milan";
	case KD_PRODUCT_GENOA:
		return "Genoa";
	case KD_PRODUCT_TURIN:
		return "Turin";
	case KD_PRODUCT_UNKNOWN:
		break;
	}
	return "unknown";
}

int kd_product_from_name(const char *s, enum kd_product *ret)
{
	static const enum kd_product all[] = {KD_PRODUCT_MILAN, KD_PRODUCT_GENOA,
					      KD_PRODUCT_TURIN};

	if (!s || !ret)
		return kd_fail(KD_EINVAL, "kd_product_from_name: NULL argument");
	for (size_t i = 0; i < KD_ARRAY_SIZE(all); i++) {
		const char *n = kd_product_name(all[i]);
		size_t l = strlen(n);

		/*
		 * The VCEK productName carries a stepping suffix ("Milan-B0"),
		 * so "<name>-<anything>" names the same product line.
		 */
		if (!strncasecmp(s, n, l) && (s[l] == '\0' || (s[l] == '-' && s[l + 1]))) {
			*ret = all[i];
			return 0;
		}
	}
	return kd_fail(KD_EINVAL, "unknown SEV-SNP product '%s' (Milan, Genoa or Turin)", s);
}

enum kd_product kd_product_from_cpuid(uint8_t family, uint8_t model)
{
	/* trustee get_processor_generation; Siena/Bergamo are Genoa parts. */
	if (family == 0x19) {
		if (model <= 0x0f)
			return KD_PRODUCT_MILAN;
		if ((model >= 0x10 && model <= 0x1f) || (model >= 0xa0 && model <= 0xaf))
			return KD_PRODUCT_GENOA;
	} else if (family == 0x1a && model <= 0x11) {
		return KD_PRODUCT_TURIN;
	}
	return KD_PRODUCT_UNKNOWN;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

enum kd_product kd_report_product(const struct kd_report *r)
{
	if (r->version >= 3)
		return kd_product_from_cpuid(r->cpuid_fam_id, r->cpuid_mod_id);
	/*
	 * v2 has no CPUID bytes. Turin's CHIP_ID is 8 bytes wide (the rest is
	 * zero); a masked CHIP_ID is all zero and tells nothing.
	 */
	if (!all_zero(r->chip_id, 8) && all_zero(r->chip_id + 8, 56))
		return KD_PRODUCT_TURIN;
	return KD_PRODUCT_UNKNOWN;
}

/* ------------------------------------------------------------ TCB */

/* Byte positions of each component; -1 = absent (docs/snp-facts.md §2.6). */
struct tcb_layout {
	int fmc, bl, tee, snp, ucode;
};
static const struct tcb_layout legacy_layout = {-1, 0, 1, 6, 7};
static const struct tcb_layout turin_layout = {0, 1, 2, 3, 7};

static const struct tcb_layout *layout_of(enum kd_product p)
{
	/* UNKNOWN decodes as legacy: every pre-Turin part and v2 report. */
	return p == KD_PRODUCT_TURIN ? &turin_layout : &legacy_layout;
}

static uint8_t tcb_byte(uint64_t raw, int i)
{
	return i < 0 ? 0 : (uint8_t)(raw >> (8 * i));
}

void kd_tcb_decode(uint64_t raw, enum kd_product p, struct kd_tcb *ret)
{
	const struct tcb_layout *l = layout_of(p);

	ret->raw = raw;
	ret->fmc = tcb_byte(raw, l->fmc);
	ret->bootloader = tcb_byte(raw, l->bl);
	ret->tee = tcb_byte(raw, l->tee);
	ret->snp = tcb_byte(raw, l->snp);
	ret->microcode = tcb_byte(raw, l->ucode);
}

uint64_t kd_tcb_encode(const struct kd_tcb *t, enum kd_product p)
{
	const struct tcb_layout *l = layout_of(p);
	uint64_t v = 0;

	if (l->fmc >= 0)
		v |= (uint64_t)t->fmc << (8 * l->fmc);
	v |= (uint64_t)t->bootloader << (8 * l->bl);
	v |= (uint64_t)t->tee << (8 * l->tee);
	v |= (uint64_t)t->snp << (8 * l->snp);
	v |= (uint64_t)t->microcode << (8 * l->ucode);
	return v;
}

bool kd_tcb_ge(uint64_t a, uint64_t b, enum kd_product p)
{
	struct kd_tcb ta, tb;

	if (p == KD_PRODUCT_UNKNOWN) {
		for (int i = 0; i < 8; i++)
			if (tcb_byte(a, i) < tcb_byte(b, i))
				return false;
		return true;
	}
	kd_tcb_decode(a, p, &ta);
	kd_tcb_decode(b, p, &tb);
	return ta.fmc >= tb.fmc && ta.bootloader >= tb.bootloader && ta.tee >= tb.tee &&
	       ta.snp >= tb.snp && ta.microcode >= tb.microcode;
}

void kd_tcb_hex(uint64_t raw, char out[KD_TCB_HEX_LEN])
{
	uint8_t b[8];

	kd_put_le64(b, raw);
	kd_hex(b, sizeof(b), out);
}

int kd_tcb_parse_hex(const char *s, uint64_t *ret)
{
	uint8_t b[8];

	if (!s || !ret)
		return kd_fail(KD_EINVAL, "kd_tcb_parse_hex: NULL argument");
	if (kd_unhex(s, b, sizeof(b)) < 0)
		return kd_fail(KD_EMALFORMED,
			       "TCB '%s' is not 16 hex digits in report byte order", s);
	*ret = kd_get_le64(b);
	return 0;
}

void kd_tcb_format(uint64_t raw, enum kd_product p, char *buf, size_t len)
{
	struct kd_tcb t;
	char fmc[16] = "";

	if (!buf || !len)
		return;
	kd_tcb_decode(raw, p, &t);
	if (p == KD_PRODUCT_TURIN)
		snprintf(fmc, sizeof(fmc), "fmc=%u ", t.fmc);
	snprintf(buf, len, "%sbl=%u tee=%u snp=%u ucode=%u", fmc, t.bootloader, t.tee, t.snp,
		 t.microcode);
}

/* ------------------------------------------------------------ parse */

/* Offsets of the version-dependent reserved ranges (docs/snp-facts.md §2.7). */
#define OFF_CPUID 0x188u
#define OFF_CPUID_RSVD 0x18Bu
#define OFF_CHIP_ID 0x1A0u
#define OFF_MIT 0x1F8u
#define OFF_RSVD_TAIL 0x208u
#define OFF_SIG_R 0x2A0u
#define OFF_SIG_RSVD 0x330u
#define SIG_COMPONENT 72u

/* Consume an MBZ range and name it on failure. */
static int mbz(struct kd_cursor *c, size_t n)
{
	size_t start = c->off;
	int r = kd_cur_zero(c, n);

	if (r == KD_ERESERVED)
		return kd_fail(r, "report reserved bytes 0x%03zx..0x%03zx are not zero", start,
			       start + n - 1);
	return r;
}

static int check_bits(const struct kd_report *r, int err)
{
	if (r->policy & KD_POLICY_MBZ_MASK)
		return kd_fail(err, "report policy 0x%llx has reserved bits 63:26 set",
			       (unsigned long long)r->policy);
	if (!(r->policy & KD_POLICY_RSVD1))
		return kd_fail(err, "report policy 0x%llx has bit 17 (must be one) clear",
			       (unsigned long long)r->policy);
	if (r->signer_info & ~0x1fu)
		return kd_fail(err, "report signer info 0x%x has reserved bits 31:5 set",
			       r->signer_info);
	return 0;
}

static int check_version(uint32_t v, int err)
{
	if (v < 2 || v > 5)
		return kd_fail(err, "attestation report version %u is not supported (2..5)", v);
	return 0;
}

int kd_report_parse(const uint8_t *buf, size_t len, struct kd_report *ret)
{
	struct kd_report r;
	struct kd_cursor c;
	int e = 0;

	if ((!buf && len) || !ret)
		return kd_fail(KD_EINVAL, "kd_report_parse: NULL argument");
	/* Cheap sanity first: size and version before any field work. */
	if (len < KD_REPORT_SIZE)
		return kd_fail(KD_ETRUNC, "attestation report is %zu bytes, expected %u", len,
			       KD_REPORT_SIZE);
	if (len > KD_REPORT_SIZE)
		return kd_fail(KD_EMALFORMED,
			       "attestation report is %zu bytes, expected %u (trailing bytes)", len,
			       KD_REPORT_SIZE);

	memset(&r, 0, sizeof(r));
	kd_cur_init(&c, buf, len);
	e = kd_cur_u32(&c, &r.version);
	if (e < 0)
		return e;
	e = check_version(r.version, KD_EUNSUPP);
	if (e < 0)
		return e;

	if ((e = kd_cur_u32(&c, &r.guest_svn)) < 0 || (e = kd_cur_u64(&c, &r.policy)) < 0 ||
	    (e = kd_cur_bytes(&c, r.family_id, 16)) < 0 ||
	    (e = kd_cur_bytes(&c, r.image_id, 16)) < 0 || (e = kd_cur_u32(&c, &r.vmpl)) < 0 ||
	    (e = kd_cur_u32(&c, &r.signature_algo)) < 0 ||
	    (e = kd_cur_u64(&c, &r.current_tcb)) < 0 ||
	    (e = kd_cur_u64(&c, &r.platform_info)) < 0 ||
	    (e = kd_cur_u32(&c, &r.signer_info)) < 0 || (e = mbz(&c, 4)) < 0 ||
	    (e = kd_cur_bytes(&c, r.report_data, 64)) < 0 ||
	    (e = kd_cur_bytes(&c, r.measurement, 48)) < 0 ||
	    (e = kd_cur_bytes(&c, r.host_data, 32)) < 0 ||
	    (e = kd_cur_bytes(&c, r.id_key_digest, 48)) < 0 ||
	    (e = kd_cur_bytes(&c, r.author_key_digest, 48)) < 0 ||
	    (e = kd_cur_bytes(&c, r.report_id, 32)) < 0 ||
	    (e = kd_cur_bytes(&c, r.report_id_ma, 32)) < 0 ||
	    (e = kd_cur_u64(&c, &r.reported_tcb)) < 0)
		return e;

	/* v3 put CPUID family/model/stepping into what v2 reserved. */
	if (r.version >= 3) {
		if ((e = kd_cur_u8(&c, &r.cpuid_fam_id)) < 0 ||
		    (e = kd_cur_u8(&c, &r.cpuid_mod_id)) < 0 ||
		    (e = kd_cur_u8(&c, &r.cpuid_step)) < 0 ||
		    (e = mbz(&c, OFF_CHIP_ID - OFF_CPUID_RSVD)) < 0)
			return e;
	} else if ((e = mbz(&c, OFF_CHIP_ID - OFF_CPUID)) < 0) {
		return e;
	}

	if ((e = kd_cur_bytes(&c, r.chip_id, 64)) < 0 ||
	    (e = kd_cur_u64(&c, &r.committed_tcb)) < 0 ||
	    (e = kd_cur_u8(&c, &r.current_build)) < 0 ||
	    (e = kd_cur_u8(&c, &r.current_minor)) < 0 ||
	    (e = kd_cur_u8(&c, &r.current_major)) < 0 || (e = mbz(&c, 1)) < 0 ||
	    (e = kd_cur_u8(&c, &r.committed_build)) < 0 ||
	    (e = kd_cur_u8(&c, &r.committed_minor)) < 0 ||
	    (e = kd_cur_u8(&c, &r.committed_major)) < 0 || (e = mbz(&c, 1)) < 0 ||
	    (e = kd_cur_u64(&c, &r.launch_tcb)) < 0)
		return e;

	/* The mitigation vectors exist from v5 on; before, reserved. */
	if (r.version >= 5) {
		if ((e = kd_cur_u64(&c, &r.launch_mit_vector)) < 0 ||
		    (e = kd_cur_u64(&c, &r.current_mit_vector)) < 0)
			return e;
	} else if ((e = mbz(&c, OFF_RSVD_TAIL - OFF_MIT)) < 0) {
		return e;
	}

	if ((e = mbz(&c, OFF_SIG_R - OFF_RSVD_TAIL)) < 0 ||
	    (e = kd_cur_bytes(&c, r.sig_r, SIG_COMPONENT)) < 0 ||
	    (e = kd_cur_bytes(&c, r.sig_s, SIG_COMPONENT)) < 0 ||
	    (e = mbz(&c, KD_REPORT_SIZE - OFF_SIG_RSVD)) < 0)
		return e;
	if ((e = kd_cur_expect_end(&c)) < 0)
		return kd_fail(e, "attestation report has trailing bytes");

	e = check_bits(&r, KD_ERESERVED);
	if (e < 0)
		return e;

	r.product = kd_report_product(&r);
	r.signing_key = (int)((r.signer_info & KD_SIGNER_KEY_MASK) >> KD_SIGNER_KEY_SHIFT);
	*ret = r;
	return 0;
}

/* ------------------------------------------------------------ encode */

int kd_report_encode(const struct kd_report *r, uint8_t out[KD_REPORT_SIZE])
{
	uint8_t b[KD_REPORT_SIZE];
	int e;

	if (!r || !out)
		return kd_fail(KD_EINVAL, "kd_report_encode: NULL argument");
	if ((e = check_version(r->version, KD_EINVAL)) < 0 || (e = check_bits(r, KD_EINVAL)) < 0)
		return e;
	if (r->version < 3 && (r->cpuid_fam_id || r->cpuid_mod_id || r->cpuid_step))
		return kd_fail(KD_EINVAL, "a version 2 report has no CPUID bytes");
	if (r->version < 5 && (r->launch_mit_vector || r->current_mit_vector))
		return kd_fail(KD_EINVAL, "a version %u report has no mitigation vectors",
			       r->version);

	memset(b, 0, sizeof(b));
	kd_put_le32(b + 0x000, r->version);
	kd_put_le32(b + 0x004, r->guest_svn);
	kd_put_le64(b + 0x008, r->policy);
	memcpy(b + 0x010, r->family_id, 16);
	memcpy(b + 0x020, r->image_id, 16);
	kd_put_le32(b + 0x030, r->vmpl);
	kd_put_le32(b + 0x034, r->signature_algo);
	kd_put_le64(b + 0x038, r->current_tcb);
	kd_put_le64(b + 0x040, r->platform_info);
	kd_put_le32(b + 0x048, r->signer_info);
	memcpy(b + 0x050, r->report_data, 64);
	memcpy(b + 0x090, r->measurement, 48);
	memcpy(b + 0x0C0, r->host_data, 32);
	memcpy(b + 0x0E0, r->id_key_digest, 48);
	memcpy(b + 0x110, r->author_key_digest, 48);
	memcpy(b + 0x140, r->report_id, 32);
	memcpy(b + 0x160, r->report_id_ma, 32);
	kd_put_le64(b + 0x180, r->reported_tcb);
	b[OFF_CPUID] = r->cpuid_fam_id;
	b[OFF_CPUID + 1] = r->cpuid_mod_id;
	b[OFF_CPUID + 2] = r->cpuid_step;
	memcpy(b + OFF_CHIP_ID, r->chip_id, 64);
	kd_put_le64(b + 0x1E0, r->committed_tcb);
	b[0x1E8] = r->current_build;
	b[0x1E9] = r->current_minor;
	b[0x1EA] = r->current_major;
	b[0x1EC] = r->committed_build;
	b[0x1ED] = r->committed_minor;
	b[0x1EE] = r->committed_major;
	kd_put_le64(b + 0x1F0, r->launch_tcb);
	kd_put_le64(b + 0x1F8, r->launch_mit_vector);
	kd_put_le64(b + 0x200, r->current_mit_vector);
	memcpy(b + OFF_SIG_R, r->sig_r, SIG_COMPONENT);
	memcpy(b + OFF_SIG_R + SIG_COMPONENT, r->sig_s, SIG_COMPONENT);
	memcpy(out, b, sizeof(b));
	return 0;
}

/* ------------------------------------------------------------ JSON */

static int put(struct json_object *o, const char *k, struct json_object *v)
{
	if (!v)
		return -1;
	if (json_object_object_add(o, k, v) < 0) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

static struct json_object *jhex(const uint8_t *p, size_t n)
{
	char s[2 * 72 + 1];

	if (n > 72)
		return NULL;
	kd_hex(p, n, s);
	return json_object_new_string(s);
}

static struct json_object *jx64(uint64_t v)
{
	char s[24];

	snprintf(s, sizeof(s), "0x%llx", (unsigned long long)v);
	return json_object_new_string(s);
}

static struct json_object *jbool(uint64_t bits, uint64_t mask)
{
	return json_object_new_boolean((bits & mask) != 0);
}

static struct json_object *tcb_json(uint64_t raw, enum kd_product p)
{
	struct json_object *o = json_object_new_object();
	char hex[KD_TCB_HEX_LEN];
	struct kd_tcb t;
	int e = 0;

	if (!o)
		return NULL;
	kd_tcb_decode(raw, p, &t);
	kd_tcb_hex(raw, hex);
	e |= put(o, "raw", json_object_new_string(hex));
	if (p == KD_PRODUCT_TURIN)
		e |= put(o, "fmc", json_object_new_int(t.fmc));
	e |= put(o, "bootloader", json_object_new_int(t.bootloader));
	e |= put(o, "tee", json_object_new_int(t.tee));
	e |= put(o, "snp", json_object_new_int(t.snp));
	e |= put(o, "microcode", json_object_new_int(t.microcode));
	if (e) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static const struct {
	const char *name;
	uint64_t bit;
} policy_bits[] = {
	{"smt", KD_POLICY_SMT},
	{"reserved_must_be_one", KD_POLICY_RSVD1},
	{"migrate_ma", KD_POLICY_MIGRATE_MA},
	{"debug", KD_POLICY_DEBUG},
	{"single_socket", KD_POLICY_SINGLE_SOCKET},
	{"cxl_allow", KD_POLICY_CXL_ALLOW},
	{"mem_aes_256_xts", KD_POLICY_MEM_AES_256_XTS},
	{"rapl_dis", KD_POLICY_RAPL_DIS},
	{"ciphertext_hiding", KD_POLICY_CIPHERTEXT_HIDING},
	{"page_swap_disable", KD_POLICY_PAGE_SWAP_DISABLE},
};

/* Bit 6 per tinfoil-go PR #115 (set on real Turin); docs/snp-facts.md §2.4. */
static const struct {
	const char *name;
	uint64_t bit;
} platform_bits[] = {
	{"smt_en", 1ull << 0},
	{"tsme_en", 1ull << 1},
	{"ecc_en", 1ull << 2},
	{"rapl_dis", 1ull << 3},
	{"ciphertext_hiding_en", 1ull << 4},
	{"alias_check_complete", 1ull << 5},
	{"iommu_write_safe", 1ull << 6},
	{"sev_tio_en", 1ull << 7},
};

#define PLATFORM_KNOWN_MASK 0xffull

const char *kd_policy_bit_name(size_t i, uint64_t *bit)
{
	if (i >= KD_ARRAY_SIZE(policy_bits))
		return NULL;
	*bit = policy_bits[i].bit;
	return policy_bits[i].name;
}

const char *kd_platform_bit_name(size_t i, uint64_t *bit)
{
	if (i >= KD_ARRAY_SIZE(platform_bits))
		return NULL;
	*bit = platform_bits[i].bit;
	return platform_bits[i].name;
}

const char *kd_signing_key_name(int k)
{
	switch (k) {
	case KD_SIGNING_KEY_VCEK:
		return "VCEK";
	case KD_SIGNING_KEY_VLEK:
		return "VLEK";
	case KD_SIGNING_KEY_NONE:
		return "none";
	default:
		return "reserved";
	}
}

static struct json_object *policy_json(uint64_t pol)
{
	struct json_object *o = json_object_new_object();
	int e = 0;

	if (!o)
		return NULL;
	e |= put(o, "raw", jx64(pol));
	e |= put(o, "abi_major", json_object_new_int((int)((pol >> 8) & 0xff)));
	e |= put(o, "abi_minor", json_object_new_int((int)(pol & 0xff)));
	for (size_t i = 0; i < KD_ARRAY_SIZE(policy_bits); i++)
		e |= put(o, policy_bits[i].name, jbool(pol, policy_bits[i].bit));
	if (e) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *platform_json(uint64_t pi)
{
	struct json_object *o = json_object_new_object();
	int e = 0;

	if (!o)
		return NULL;
	e |= put(o, "raw", jx64(pi));
	for (size_t i = 0; i < KD_ARRAY_SIZE(platform_bits); i++)
		e |= put(o, platform_bits[i].name, jbool(pi, platform_bits[i].bit));
	e |= put(o, "unknown_bits", jx64(pi & ~PLATFORM_KNOWN_MASK));
	if (e) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *signer_json(uint32_t si)
{
	struct json_object *o = json_object_new_object();
	int k = (int)((si & KD_SIGNER_KEY_MASK) >> KD_SIGNER_KEY_SHIFT);
	int e = 0;

	if (!o)
		return NULL;
	e |= put(o, "raw", jx64(si));
	e |= put(o, "author_key_en", jbool(si, KD_SIGNER_AUTHOR_KEY_EN));
	e |= put(o, "mask_chip_key", jbool(si, KD_SIGNER_MASK_CHIP_KEY));
	e |= put(o, "signing_key", json_object_new_int(k));
	e |= put(o, "signing_key_name", json_object_new_string(kd_signing_key_name(k)));
	if (e) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *fw_json(uint8_t major, uint8_t minor, uint8_t build)
{
	struct json_object *o = json_object_new_object();
	char s[16];
	int e = 0;

	if (!o)
		return NULL;
	snprintf(s, sizeof(s), "%u.%u.%u", major, minor, build);
	e |= put(o, "major", json_object_new_int(major));
	e |= put(o, "minor", json_object_new_int(minor));
	e |= put(o, "build", json_object_new_int(build));
	e |= put(o, "version", json_object_new_string(s));
	if (e) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

struct json_object *kd_report_to_json(const struct kd_report *rep)
{
	struct json_object *o, *cpuid, *sig;
	enum kd_product p;
	int e = 0;

	if (!rep)
		return NULL;
	o = json_object_new_object();
	if (!o)
		return NULL;
	p = rep->product;
	e |= put(o, "version", json_object_new_int64(rep->version));
	e |= put(o, "guest_svn", json_object_new_int64(rep->guest_svn));
	e |= put(o, "policy", policy_json(rep->policy));
	e |= put(o, "family_id", jhex(rep->family_id, 16));
	e |= put(o, "image_id", jhex(rep->image_id, 16));
	e |= put(o, "vmpl", json_object_new_int64(rep->vmpl));
	e |= put(o, "signature_algo", json_object_new_int64(rep->signature_algo));
	e |= put(o, "current_tcb", tcb_json(rep->current_tcb, p));
	e |= put(o, "platform_info", platform_json(rep->platform_info));
	e |= put(o, "signer_info", signer_json(rep->signer_info));
	e |= put(o, "report_data", jhex(rep->report_data, 64));
	e |= put(o, "measurement", jhex(rep->measurement, 48));
	e |= put(o, "host_data", jhex(rep->host_data, 32));
	e |= put(o, "id_key_digest", jhex(rep->id_key_digest, 48));
	e |= put(o, "author_key_digest", jhex(rep->author_key_digest, 48));
	e |= put(o, "report_id", jhex(rep->report_id, 32));
	e |= put(o, "report_id_ma", jhex(rep->report_id_ma, 32));
	e |= put(o, "reported_tcb", tcb_json(rep->reported_tcb, p));
	if (rep->version >= 3) {
		cpuid = json_object_new_object();
		if (cpuid) {
			e |= put(cpuid, "family", json_object_new_int(rep->cpuid_fam_id));
			e |= put(cpuid, "model", json_object_new_int(rep->cpuid_mod_id));
			e |= put(cpuid, "stepping", json_object_new_int(rep->cpuid_step));
		}
		e |= put(o, "cpuid", cpuid);
	}
	e |= put(o, "chip_id", jhex(rep->chip_id, 64));
	e |= put(o, "committed_tcb", tcb_json(rep->committed_tcb, p));
	e |= put(o, "current_firmware",
		 fw_json(rep->current_major, rep->current_minor, rep->current_build));
	e |= put(o, "committed_firmware",
		 fw_json(rep->committed_major, rep->committed_minor, rep->committed_build));
	e |= put(o, "launch_tcb", tcb_json(rep->launch_tcb, p));
	if (rep->version >= 5) {
		e |= put(o, "launch_mit_vector", jx64(rep->launch_mit_vector));
		e |= put(o, "current_mit_vector", jx64(rep->current_mit_vector));
	}
	sig = json_object_new_object();
	if (sig) {
		e |= put(sig, "r", jhex(rep->sig_r, SIG_COMPONENT));
		e |= put(sig, "s", jhex(rep->sig_s, SIG_COMPONENT));
	}
	e |= put(o, "signature", sig);
	e |= put(o, "product", json_object_new_string(kd_product_name(p)));
	e |= put(o, "product_source",
		 json_object_new_string(rep->version >= 3 ? "cpuid" : "v2-heuristic"));
	if (e) {
		json_object_put(o);
		return NULL;
	}
	return o;
}
