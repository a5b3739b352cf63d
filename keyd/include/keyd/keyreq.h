/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MSG_KEY_REQ / MSG_KEY_RSP: the derived-key request of the AMD-SP and its
 * response (docs/snp-facts.md §1.2; Linux struct snp_derived_key_req, 32 bytes).
 */
#ifndef KEYD_KEYREQ_H
#define KEYD_KEYREQ_H

#include <stdint.h>

#include "keyd/secret.h"

#define KD_KEY_REQ_SIZE 32u
#define KD_KEY_RSP_SIZE 64u
#define KD_DERIVED_KEY_SIZE 32u

/* root_key_select */
#define KD_ROOT_KEY_VMRK (1u << 0)
#define KD_KEY_SEL_SHIFT 1
#define KD_KEY_SEL_MASK (3u << 1)
enum { KD_KEY_SEL_DEFAULT = 0, KD_KEY_SEL_VCEK = 1, KD_KEY_SEL_VLEK = 2 };

/*
 * The root-key names of the command line and the token, one meaning
 * everywhere: "vcek" is KEY_SEL 1 (the VCEK even when a VLEK is installed;
 * KEY_SEL 0 would silently pick the VLEK there), "vlek" KEY_SEL 2, "vmrk"
 * the VM root key of this launch. kd_root_parse: KD_EINVAL for another
 * name. kd_root_name: the name of a root_key_select, or NULL if it has none.
 */
int kd_root_parse(const char *name, uint32_t *ret);
const char *kd_root_name(uint32_t root_key_select);

/* guest_field_select bits */
#define KD_FIELD_POLICY (1ull << 0)
#define KD_FIELD_IMAGE_ID (1ull << 1)
#define KD_FIELD_FAMILY_ID (1ull << 2)
#define KD_FIELD_MEASUREMENT (1ull << 3)
#define KD_FIELD_GUEST_SVN (1ull << 4)
#define KD_FIELD_TCB_VERSION (1ull << 5)
#define KD_FIELD_LAUNCH_MIT (1ull << 6) /* needs the 40-byte request; unusable via Linux uapi */
#define KD_FIELD_VALID_MASK 0x3full    /* what keyd sends through a 32-byte request */

/* The sealing binding (docs/formats.md §2). */
#define KD_FIELDS_SEAL (KD_FIELD_MEASUREMENT | KD_FIELD_POLICY | KD_FIELD_TCB_VERSION)

/* MSG_KEY_RSP status */
#define KD_FW_SUCCESS 0x00u
#define KD_FW_INVALID_PARAMS 0x16u
#define KD_FW_INVALID_KEY 0x27u

struct kd_key_req {
	uint32_t root_key_select;
	uint64_t guest_field_select;
	uint32_t vmpl;
	uint32_t guest_svn;
	uint64_t tcb_version;
};

/*
 * Check a request against what the firmware accepts structurally: reserved
 * root-key bits, KEY_SEL 3, field bits above 5, vmpl > 3. (Launch-dependent
 * rules -- svn, committed TCB, launch VMPL -- are the firmware's, see
 * kd_sim_check_key_req.) KD_EINVAL with a detail on violation.
 */
int kd_key_req_validate(const struct kd_key_req *req);

/* Encode exactly as struct snp_derived_key_req (rsvd = 0). */
void kd_key_req_encode(const struct kd_key_req *req, uint8_t out[KD_KEY_REQ_SIZE]);
/* Decode (the simulator's side); KD_ERESERVED if rsvd != 0. */
int kd_key_req_decode(const uint8_t *buf, size_t len, struct kd_key_req *ret);

/*
 * Parse MSG_KEY_RSP: status at 0, reserved 0x04..0x1F MBZ, key at 0x20.
 * status != 0 -> KD_EFIRMWARE with detail "firmware refused key request:
 * status 0x16 (INVALID_PARAMS)". On success *ret is a new 32-byte secret.
 */
int kd_key_rsp_parse(const uint8_t *buf, size_t len, struct kd_secret **ret);
/* "SUCCESS", "INVALID_PARAMS", "INVALID_KEY" or "unknown". */
const char *kd_fw_status_name(uint32_t status);
/* Encode MSG_KEY_RSP (simulator). key may be NULL when status != 0. */
void kd_key_rsp_encode(uint32_t status, const uint8_t *key, uint8_t out[KD_KEY_RSP_SIZE]);

/*
 * Parse a field list "policy,measurement,tcb" (docs/formats.md §5, "fields") into select bits.
 * Names: policy, image-id, family-id, measurement, guest-svn, tcb; "none"
 * means 0. KD_EINVAL for an empty list or element, an unknown name or a
 * name given twice.
 */
int kd_fields_parse(const char *list, uint64_t *ret);
/*
 * Format select bits as a comma list into buf, in bit order ("none" for 0;
 * bit 6 "launch-mit", other unknown bits "bitN"). Truncates to len.
 */
void kd_fields_format(uint64_t fields, char *buf, size_t len);

#endif
