/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The simulated AMD Secure Processor (keyd-simfw): a test double of the
 * firmware, linked only by keyd-simfw and the tests (never by libkeyd).
 * Its wire protocol is keyd/simwire.h.
 *
 * ---------------------------------------------------------------- keys
 * Derived key = HKDF-SHA384(ikm = root, salt = "keyd-sim-derive-v1",
 * info = context), where root is the chip secret (VCEK and the default
 * KEY_SEL) or the per-launch random VMRK, and context is
 *   root_key_select u32, guest_field_select u64, vmpl u32,
 * followed by the value of every selected field in bit order: policy u64,
 * image_id[16], family_id[16], measurement[48], guest_svn u32,
 * tcb_version u64. A requested tcb_version thus picks "the VCEK of that
 * TCB" exactly when TCB_VERSION is selected. The firmware rules of
 * docs/snp-facts.md §1.2 and docs/simulator.md §6 are checked first; a violation gives status 0x16.
 */
#ifndef KEYD_SIM_H
#define KEYD_SIM_H

#include "keyd/simwire.h"

/* ---------------------------------------------------------------- chip */

struct kd_sim_chip;

struct kd_sim_init_opts {
	enum kd_product product; /* default Milan */
	const uint8_t *chip_id;  /* 64 bytes or NULL for random (Turin: 8 random + zeros) */
	bool have_tcb;
	uint64_t tcb;            /* current = committed; default per product */
};

/*
 * Create a chip in dir (created 0700 if missing; must not hold a chip):
 * chip.json (product, chip_id, TCBs), chip-secret (32 random bytes, 0600),
 * the ARK and ASK (RSA-4096, RSASSA-PSS SHA-384 salt 48; keys 0600).
 * Errors: KD_EEXIST, KD_EIO, KD_ECRYPTO, KD_EINVAL.
 */
int kd_sim_chip_init(const char *dir, const struct kd_sim_init_opts *opts);
/* Load a chip. KD_ENOENT if dir holds none; KD_EMALFORMED for a bad state. */
int kd_sim_chip_load(const char *dir, struct kd_sim_chip **ret);
void kd_sim_chip_free(struct kd_sim_chip *c);

enum kd_product kd_sim_chip_product(const struct kd_sim_chip *c);
const uint8_t *kd_sim_chip_id(const struct kd_sim_chip *c); /* 64 bytes */
uint64_t kd_sim_chip_current_tcb(const struct kd_sim_chip *c);
uint64_t kd_sim_chip_committed_tcb(const struct kd_sim_chip *c);
/* Re-read the TCBs from chip.json (a firmware update by another process). */
int kd_sim_chip_reload(struct kd_sim_chip *c);

/*
 * Firmware update or rollback: set the current and committed TCB and save.
 * Committed must not exceed current in any component (KD_EINVAL).
 */
int kd_sim_chip_set_tcb(struct kd_sim_chip *c, uint64_t current, uint64_t committed);

/* DER certificates. The VCEK of a TCB is made (and kept) on first use. */
enum kd_sim_cert { KD_SIM_CERT_ARK, KD_SIM_CERT_ASK, KD_SIM_CERT_VCEK };
int kd_sim_chip_cert_der(struct kd_sim_chip *c, enum kd_sim_cert which, uint64_t tcb,
			 uint8_t **ret, size_t *ret_len);
/* The same certificate as PEM text (NUL-terminated, malloc'ed). */
int kd_sim_chip_cert_pem(struct kd_sim_chip *c, enum kd_sim_cert which, uint64_t tcb,
			 char **ret);

/* ---------------------------------------------------------------- launch */

struct kd_sim_launch {
	uint8_t measurement[48];
	uint64_t policy;      /* default 0x30000 */
	uint32_t guest_svn;
	uint8_t family_id[16];
	uint8_t image_id[16];
	uint8_t host_data[32];
	uint32_t vmpl;        /* the VMPL the guest runs at */
};

struct kd_sim_fw;

/*
 * Start one launch on a chip (the fw takes ownership of chip): fresh VMRK
 * and report_id, launch TCB = the current TCB. Also makes sure the VCEK of
 * the current TCB exists.
 */
int kd_sim_fw_new(struct kd_sim_chip *chip, const struct kd_sim_launch *l, struct kd_sim_fw **ret);
void kd_sim_fw_free(struct kd_sim_fw *fw);
struct kd_sim_chip *kd_sim_fw_chip(struct kd_sim_fw *fw);

/*
 * Test-only: append the hex of every derived key to this fd (-1: off).
 * keyd-simfw --debug-print-keys; the secrets-hygiene test greps for it.
 */
void kd_sim_fw_set_debug_key_fd(struct kd_sim_fw *fw, int fd);

/* One line on why the last DERIVE/REPORT got its status ("ok" on success). */
const char *kd_sim_fw_last_reason(const struct kd_sim_fw *fw);

/*
 * The firmware's rules for MSG_KEY_REQ (docs/simulator.md §6) against this launch
 * and chip: returns KD_FW_SUCCESS, KD_FW_INVALID_PARAMS (0x16) or
 * KD_FW_INVALID_KEY (0x27, VLEK selected but none installed). *why gets a
 * static one-line reason for the log.
 */
uint32_t kd_sim_check_key_req(const struct kd_sim_fw *fw, const struct kd_key_req *req,
			      const char **why);

/*
 * MSG_KEY_REQ bytes -> MSG_KEY_RSP bytes, as the firmware does. A rule
 * violation is not an error: rsp carries the status (*ret_status too).
 * Negative only on internal failures (KD_ECRYPTO, KD_ENOMEM).
 */
int kd_sim_derive(struct kd_sim_fw *fw, const uint8_t *req, size_t req_len,
		  uint8_t rsp[KD_KEY_RSP_SIZE], uint32_t *ret_status);

/*
 * MSG_REPORT_RSP for this report_data and vmpl: a v5 report signed by the
 * VCEK of the current TCB. vmpl below the launch VMPL or above 3 gives
 * status 0x16 with report_size 0.
 */
int kd_sim_report(struct kd_sim_fw *fw, const uint8_t report_data[64], uint32_t vmpl,
		  uint8_t rsp[KD_SIM_REPORT_RSP_SIZE], uint32_t *ret_status);

/* GHCB certificate table: VCEK (current TCB), ASK, ARK. Malloc'ed. */
int kd_sim_cert_table(struct kd_sim_fw *fw, uint8_t **ret, size_t *ret_len);

/*
 * Handle one request frame: writes the response type, malloc'ed payload
 * and, for the log, the firmware status (0 for CERTS).
 */
int kd_sim_handle(struct kd_sim_fw *fw, const struct kd_sim_hdr *h, const uint8_t *payload,
		  uint16_t *ret_type, uint8_t **ret_rsp, size_t *ret_len, uint32_t *ret_status);

/*
 * Serve requests on fd until EOF or a transport error. on_request (may be
 * NULL) is called once per request with its type, status and the handling
 * error (0 or KD_E*) so the executable can log it; it never sees key
 * bytes. Returns 0 on clean EOF. Several threads may serve several fds of
 * one launch at once: each request holds the launch's lock from handling
 * to on_request, so requests are serialized, connections are not.
 */
typedef void (*kd_sim_log_fn)(void *ctx, uint16_t type, uint32_t status, int err);
int kd_sim_serve_fd(struct kd_sim_fw *fw, int fd, bool resync, kd_sim_log_fn on_request,
		    void *ctx);

/*
 * Accept connections on the listening stream socket lfd and serve each in
 * its own thread with kd_sim_serve_fd, all at once. on_end (may be NULL)
 * gets each connection's result. Returns after shutdown(lfd, SHUT_RDWR)
 * once every connection has closed (0), or KD_EIO when accept fails.
 */
typedef void (*kd_sim_conn_fn)(void *ctx, int result);
int kd_sim_serve_listener(struct kd_sim_fw *fw, int lfd, kd_sim_log_fn on_request,
			  kd_sim_conn_fn on_end, void *ctx);

#endif
