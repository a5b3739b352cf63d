/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Trust backends: every TEE operation goes through this interface.
 *
 *   snp  /dev/sev-guest ioctls (SNP_GET_DERIVED_KEY, SNP_GET_REPORT,
 *        SNP_GET_EXT_REPORT)
 *   tsm  configfs-tsm reports (/sys/kernel/config/tsm/report); no derived keys
 *   sim  keyd-simfw, the simulated AMD-SP, over a unix socket or serial port
 *
 * A backend that cannot derive keys (tsm, and TDX-like TEEs) says so through
 * caps; callers then get KD_ENOTSUP. "sim" is never chosen by detection.
 */
#ifndef KEYD_BACKEND_H
#define KEYD_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "keyd/keyreq.h"
#include "keyd/hkdf.h"
#include "keyd/secret.h"

#define KD_CAP_DERIVE (1u << 0)
#define KD_CAP_REPORT (1u << 1)
#define KD_CAP_CERTS (1u << 2)

struct kd_backend;

struct kd_backend_ops {
	const char *name;
	/* MSG_KEY_REQ -> 32-byte derived key (a new secret). */
	int (*derive)(struct kd_backend *b, const struct kd_key_req *req, struct kd_secret **ret_key);
	/*
	 * Report with this report_data at this VMPL. *ret_report is a malloc'ed
	 * KD_REPORT_SIZE buffer. If ret_certs is non-NULL, the GHCB certificate
	 * table (may be empty: *ret_certs NULL, len 0) is returned too.
	 */
	int (*report)(struct kd_backend *b, const uint8_t report_data[64], uint32_t vmpl,
		      uint8_t **ret_report, size_t *ret_len, uint8_t **ret_certs, size_t *ret_certs_len);
	void (*close)(struct kd_backend *b);
};

struct kd_backend {
	const struct kd_backend_ops *ops;
	unsigned caps;
	void *priv;
	/*
	 * The VMPL the AMD-SP sees this guest's requests at (0 unless an SVSM or
	 * paravisor runs below it), and where the backend learnt it. A key or
	 * report request for a lower VMPL is refused before it is sent.
	 */
	uint32_t vmpl;
	char vmpl_source[96];
};

struct kd_backend_opts {
	const char *name;     /* "snp", "tsm", "sim" or NULL to detect (never sim) */
	const char *sim_addr; /* "unix:PATH" or "serial:PATH"; default $KEYD_SIM */
	const char *sev_guest_path; /* default /dev/sev-guest (tests override) */
	const char *tsm_path;       /* default /sys/kernel/config/tsm/report */
};

/*
 * Open a backend. An explicit opts->name wins. Otherwise a set sim address
 * (opts->sim_addr, else a non-empty $KEYD_SIM) selects sim: an explicit choice
 * by whoever controls the environment. Without either, snp is detected when
 * /dev/sev-guest exists, else tsm; the simulator is never detected.
 * Errors: KD_ENOENT (nothing found), KD_EINVAL (unknown name), KD_EIO.
 */
int kd_backend_open(const struct kd_backend_opts *opts, struct kd_backend **ret);
void kd_backend_close(struct kd_backend *b);

/* Wrappers that check caps first (KD_ENOTSUP with a detail). */
int kd_backend_derive(struct kd_backend *b, const struct kd_key_req *req, struct kd_secret **ret_key);
int kd_backend_report(struct kd_backend *b, const uint8_t report_data[64], uint32_t vmpl,
		      uint8_t **ret_report, size_t *ret_len, uint8_t **ret_certs, size_t *ret_certs_len);

#endif
