/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MSG_KEY_REQ / MSG_KEY_RSP codec (docs/snp-facts.md §1.2). The request layout is the
 * Linux uapi struct snp_derived_key_req: the kernel copies exactly 32 bytes,
 * so the 40-byte form with LAUNCH_MIT_VECTOR cannot be sent through it.
 */
#include <stdio.h>
#include <string.h>

#include "keyd/cursor.h"
#include "keyd/error.h"
#include "keyd/keyreq.h"
#include "keyd/util.h"

/* ROOT_KEY_SELECT: bit 0 root key, bits 2:1 KEY_SEL, the rest reserved. */
#define ROOT_KEY_VALID_MASK (KD_ROOT_KEY_VMRK | KD_KEY_SEL_MASK)
#define KEY_SEL_RESERVED 3u

int kd_key_req_validate(const struct kd_key_req *req)
{
	uint32_t sel;

	if (!req)
		return kd_fail(KD_EINVAL, "kd_key_req_validate: NULL argument");
	if (req->root_key_select & ~ROOT_KEY_VALID_MASK)
		return kd_fail(KD_EINVAL, "key request root_key_select 0x%x has reserved bits 31:3 set",
			       req->root_key_select);
	sel = (req->root_key_select & KD_KEY_SEL_MASK) >> KD_KEY_SEL_SHIFT;
	if (sel == KEY_SEL_RESERVED)
		return kd_fail(KD_EINVAL, "key request KEY_SEL 3 is reserved");
	if (req->guest_field_select & KD_FIELD_LAUNCH_MIT)
		return kd_fail(KD_EINVAL, "key request field LAUNCH_MIT_VECTOR needs the 40-byte "
					  "request, which Linux /dev/sev-guest cannot send");
	if (req->guest_field_select & ~KD_FIELD_VALID_MASK)
		return kd_fail(KD_EINVAL, "key request guest_field_select 0x%llx has reserved bits set",
			       (unsigned long long)req->guest_field_select);
	if (req->vmpl > 3)
		return kd_fail(KD_EINVAL, "key request VMPL %u is above 3", req->vmpl);
	return 0;
}

static const struct {
	const char *name;
	uint32_t sel;
} roots[] = {
	{"vcek", KD_KEY_SEL_VCEK << KD_KEY_SEL_SHIFT},
	{"vlek", KD_KEY_SEL_VLEK << KD_KEY_SEL_SHIFT},
	{"vmrk", KD_ROOT_KEY_VMRK},
};

int kd_root_parse(const char *name, uint32_t *ret)
{
	for (size_t i = 0; name && i < KD_ARRAY_SIZE(roots); i++)
		if (!strcmp(name, roots[i].name)) {
			*ret = roots[i].sel;
			return 0;
		}
	return kd_fail(KD_EINVAL, "root key '%.16s' is not vcek, vlek or vmrk", name ? name : "");
}

const char *kd_root_name(uint32_t root_key_select)
{
	for (size_t i = 0; i < KD_ARRAY_SIZE(roots); i++)
		if (root_key_select == roots[i].sel)
			return roots[i].name;
	return NULL;
}

void kd_key_req_encode(const struct kd_key_req *req, uint8_t out[KD_KEY_REQ_SIZE])
{
	memset(out, 0, KD_KEY_REQ_SIZE);
	kd_put_le32(out + 0x00, req->root_key_select);
	/* 0x04 rsvd stays zero */
	kd_put_le64(out + 0x08, req->guest_field_select);
	kd_put_le32(out + 0x10, req->vmpl);
	kd_put_le32(out + 0x14, req->guest_svn);
	kd_put_le64(out + 0x18, req->tcb_version);
}

int kd_key_req_decode(const uint8_t *buf, size_t len, struct kd_key_req *ret)
{
	struct kd_key_req r;
	struct kd_cursor c;
	int e;

	if ((!buf && len) || !ret)
		return kd_fail(KD_EINVAL, "kd_key_req_decode: NULL argument");
	if (len < KD_KEY_REQ_SIZE)
		return kd_fail(KD_ETRUNC, "key request is %zu bytes, expected %u", len,
			       KD_KEY_REQ_SIZE);
	if (len > KD_KEY_REQ_SIZE)
		return kd_fail(KD_EMALFORMED, "key request is %zu bytes, expected %u", len,
			       KD_KEY_REQ_SIZE);
	memset(&r, 0, sizeof(r));
	kd_cur_init(&c, buf, len);
	if ((e = kd_cur_u32(&c, &r.root_key_select)) < 0)
		return e;
	if ((e = kd_cur_zero(&c, 4)) < 0)
		return kd_fail(e, "key request reserved bytes 0x04..0x07 are not zero");
	if ((e = kd_cur_u64(&c, &r.guest_field_select)) < 0 ||
	    (e = kd_cur_u32(&c, &r.vmpl)) < 0 || (e = kd_cur_u32(&c, &r.guest_svn)) < 0 ||
	    (e = kd_cur_u64(&c, &r.tcb_version)) < 0 || (e = kd_cur_expect_end(&c)) < 0)
		return e;
	*ret = r;
	return 0;
}

const char *kd_fw_status_name(uint32_t status)
{
	switch (status) {
	case KD_FW_SUCCESS:
		return "SUCCESS";
	case KD_FW_INVALID_PARAMS:
		return "INVALID_PARAMS";
	case KD_FW_INVALID_KEY:
		return "INVALID_KEY";
	default:
		return "unknown";
	}
}

int kd_key_rsp_parse(const uint8_t *buf, size_t len, struct kd_secret **ret)
{
	struct kd_secret *key = NULL;
	const uint8_t *k;
	struct kd_cursor c;
	uint32_t status;
	int e;

	if ((!buf && len) || !ret)
		return kd_fail(KD_EINVAL, "kd_key_rsp_parse: NULL argument");
	if (len < KD_KEY_RSP_SIZE)
		return kd_fail(KD_ETRUNC, "key response is %zu bytes, expected %u", len,
			       KD_KEY_RSP_SIZE);
	if (len > KD_KEY_RSP_SIZE)
		return kd_fail(KD_EMALFORMED, "key response is %zu bytes, expected %u", len,
			       KD_KEY_RSP_SIZE);
	kd_cur_init(&c, buf, len);
	if ((e = kd_cur_u32(&c, &status)) < 0)
		return e;
	/*
	 * The ioctl succeeds even when the firmware refused the parameters;
	 * only this status says so (docs/snp-facts.md §1.2).
	 */
	if (status != KD_FW_SUCCESS)
		return kd_fail(KD_EFIRMWARE, "firmware refused key request: status 0x%02x (%s)",
			       status, kd_fw_status_name(status));
	if ((e = kd_cur_zero(&c, 0x20 - 4)) < 0)
		return kd_fail(e, "key response reserved bytes 0x04..0x1f are not zero");
	if ((e = kd_cur_ptr(&c, &k, KD_DERIVED_KEY_SIZE)) < 0 || (e = kd_cur_expect_end(&c)) < 0)
		return e;
	e = kd_secret_dup(k, KD_DERIVED_KEY_SIZE, &key);
	if (e < 0)
		return e;
	*ret = key;
	return 0;
}

void kd_key_rsp_encode(uint32_t status, const uint8_t *key, uint8_t out[KD_KEY_RSP_SIZE])
{
	memset(out, 0, KD_KEY_RSP_SIZE);
	kd_put_le32(out, status);
	if (key)
		memcpy(out + 0x20, key, KD_DERIVED_KEY_SIZE);
}

/* ------------------------------------------------------------ field lists */

static const struct {
	const char *name;
	uint64_t bit;
} field_names[] = {
	{"policy", KD_FIELD_POLICY},
	{"image-id", KD_FIELD_IMAGE_ID},
	{"family-id", KD_FIELD_FAMILY_ID},
	{"measurement", KD_FIELD_MEASUREMENT},
	{"guest-svn", KD_FIELD_GUEST_SVN},
	{"tcb", KD_FIELD_TCB_VERSION},
};

#define FIELD_NAME_MAX 32

int kd_fields_parse(const char *list, uint64_t *ret)
{
	uint64_t bits = 0;
	const char *p;

	if (!list || !ret)
		return kd_fail(KD_EINVAL, "kd_fields_parse: NULL argument");
	/* "none" is what kd_fields_format prints for 0: an explicit choice. */
	if (!strcmp(list, "none")) {
		*ret = 0;
		return 0;
	}
	if (!*list)
		return kd_fail(KD_EINVAL, "empty field list (use 'none' for no fields)");
	for (p = list;;) {
		size_t n = strcspn(p, ",");
		uint64_t bit = 0;

		for (size_t i = 0; i < KD_ARRAY_SIZE(field_names); i++)
			if (strlen(field_names[i].name) == n && !strncmp(p, field_names[i].name, n))
				bit = field_names[i].bit;
		if (!bit)
			return kd_fail(KD_EINVAL,
				       "unknown key field '%.*s' (policy, image-id, family-id, "
				       "measurement, guest-svn, tcb)",
				       (int)(n < FIELD_NAME_MAX ? n : FIELD_NAME_MAX), p);
		if (bits & bit)
			return kd_fail(KD_EINVAL, "key field '%.*s' is given twice", (int)n, p);
		bits |= bit;
		if (p[n] == '\0')
			break;
		p += n + 1;
	}
	*ret = bits;
	return 0;
}

void kd_fields_format(uint64_t fields, char *buf, size_t len)
{
	size_t used = 0;

	if (!buf || !len)
		return;
	buf[0] = '\0';
	if (!fields) {
		snprintf(buf, len, "none");
		return;
	}
	for (int bit = 0; bit < 64; bit++) {
		uint64_t m = 1ull << bit;
		char other[16];
		const char *name = NULL;
		int w;

		if (!(fields & m))
			continue;
		for (size_t i = 0; i < KD_ARRAY_SIZE(field_names); i++)
			if (field_names[i].bit == m)
				name = field_names[i].name;
		if (!name) {
			snprintf(other, sizeof(other), "bit%d", bit);
			name = m == KD_FIELD_LAUNCH_MIT ? "launch-mit" : other;
		}
		w = snprintf(buf + used, len - used, "%s%s", used ? "," : "", name);
		if (w < 0 || (size_t)w >= len - used) {
			buf[used] = '\0'; /* keep only whole names */
			return;
		}
		used += (size_t)w;
	}
}
