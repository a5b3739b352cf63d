/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The wire protocol between keyd's socket backend and keyd-simfw.
 *
 * The simulator runs OUTSIDE the guest (on the host, next to QEMU), so the
 * guest cannot choose its own measurement: the launch parameters are fixed
 * when `keyd-simfw serve` starts (docs/simulator.md §1).
 *
 * ---------------------------------------------------------------- wire
 * Every message, in both directions, is one frame:
 *
 *   off size field
 *   0x0  4    magic   "KDSM" (bytes 4b 44 53 4d)
 *   0x4  2    version 1
 *   0x6  2    type    (below)
 *   0x8  4    length  of the payload, at most KD_SIM_MAX_PAYLOAD
 *   0xC  4    id      chosen by the requester, echoed in the response
 *   0x10 ...  payload (length bytes)
 *
 * all little-endian. Request types and their payloads (parsed strictly:
 * exact lengths, MBZ fields checked):
 *
 *   DERIVE (1)  the 32-byte MSG_KEY_REQ (struct snp_derived_key_req)
 *   REPORT (2)  report_data[64], u32 vmpl                     (68 bytes)
 *   CERTS  (3)  empty
 *
 * Responses have type = request type | KD_SIM_RSP and carry exactly what
 * the firmware and host would hand the guest:
 *
 *   DERIVE  MSG_KEY_RSP (64 bytes; status inside, key at 0x20)
 *   REPORT  MSG_REPORT_RSP: u32 status, u32 report_size, 24 reserved
 *           bytes, the 1184-byte report at 0x20 (KD_SIM_REPORT_RSP_SIZE)
 *   CERTS   the GHCB certificate table (VCEK, ASK, ARK; keyd/certtable.h)
 *
 * A malformed request gets an ERROR frame (type KD_SIM_RSP_ERROR, payload
 * u32 reason = a KD_E* code) rather than a firmware status: the real
 * transport would not have delivered it.
 *
 * Transports: "unix:PATH" (a stream socket; one connection carries any
 * number of requests, as QEMU's chardev keeps one open) and "serial:PATH"
 * (a character device such as the virtio-serial port
 * /dev/virtio-ports/org.keyd.sim). A byte stream over serial can hold the
 * rest of an exchange that an earlier process abandoned, so readers in
 * serial mode resynchronise on the magic and discard responses whose id
 * is not the one they asked for. Every read has a timeout (poll).
 *
 */
#ifndef KEYD_SIMWIRE_H
#define KEYD_SIMWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyd/keyreq.h"
#include "keyd/report.h"
#include "keyd/secret.h"

#define KD_SIM_MAGIC 0x4d53444bu /* "KDSM" little-endian */
#define KD_SIM_VERSION 1u
#define KD_SIM_HDR_SIZE 16u
#define KD_SIM_MAX_PAYLOAD 65536u

enum {
	KD_SIM_REQ_DERIVE = 1,
	KD_SIM_REQ_REPORT = 2,
	KD_SIM_REQ_CERTS = 3,
	KD_SIM_RSP = 0x80,
	KD_SIM_RSP_ERROR = 0xff,
};

#define KD_SIM_REPORT_REQ_SIZE 68u
#define KD_SIM_REPORT_RSP_SIZE (0x20u + KD_REPORT_SIZE)

/* Launch status of MSG_REPORT_RSP when the request was refused. */
#define KD_FW_REPORT_INVALID_PARAMS KD_FW_INVALID_PARAMS

struct kd_sim_hdr {
	uint16_t type;
	uint32_t len;
	uint32_t id;
};

void kd_sim_hdr_encode(const struct kd_sim_hdr *h, uint8_t out[KD_SIM_HDR_SIZE]);
/*
 * Parse a frame header: magic, version 1, length <= KD_SIM_MAX_PAYLOAD.
 * KD_EPROTO (bad magic/version), KD_EMALFORMED (too long).
 */
int kd_sim_hdr_parse(const uint8_t *buf, size_t len, struct kd_sim_hdr *ret);

/*
 * Read one frame from fd. first_ms: how long to wait for the first byte
 * (-1 = forever, for servers idling between requests); every later byte
 * must arrive within step_ms. With resync, bytes before a valid header are
 * skipped (serial); without, they are a protocol error (stream sockets).
 * *ret_payload is malloc'ed (NULL when the length is 0).
 * Errors: KD_ETIMEOUT, KD_EIO, KD_EPROTO; KD_ENOENT on clean EOF before
 * any byte of a frame.
 */
int kd_sim_read_frame(int fd, int first_ms, int step_ms, bool resync, struct kd_sim_hdr *ret_hdr,
		      uint8_t **ret_payload);
/* Write one frame, each write waiting at most step_ms. */
int kd_sim_write_frame(int fd, int step_ms, uint16_t type, uint32_t id, const void *payload,
		       size_t len);

/*
 * One request of a requester (the guest side): on a serial channel, first
 * drop what an abandoned exchange left (fd non-blocking); write the frame
 * with id; read the response with that id -- on a serial channel skipping at
 * most KD_SIM_MAX_STALE responses to other ids, on a stream none. *ret is
 * its payload (malloc'ed, NULL when empty). Errors: those of the frame
 * reader and writer (KD_ENOENT: the simulator closed the channel), KD_EPROTO
 * for an ERROR frame (the reason named), an answer to another request or of
 * another type.
 */
#define KD_SIM_MAX_STALE 16
int kd_sim_request(int fd, bool serial, int first_ms, int step_ms, uint16_t type, uint32_t id,
		   const void *req, size_t len, uint8_t **ret, size_t *ret_len);

/* "unix:PATH" or "serial:PATH". KD_EINVAL otherwise. */
enum kd_sim_transport { KD_SIM_UNIX = 1, KD_SIM_SERIAL = 2 };
int kd_sim_addr_parse(const char *addr, enum kd_sim_transport *ret_kind, const char **ret_path);

/*
 * Open the serial channel PATH (a virtio-serial port, or a pty in tests)
 * read-write, close-on-exec, never as a controlling terminal, with
 * extra_flags (O_NONBLOCK for a side that polls); a tty is switched to raw
 * mode, since a line discipline would mangle binary frames. Every end of
 * the channel opens it this way. Returns the fd, or -1 with errno set (the
 * caller names what it could not open).
 */
int kd_sim_serial_open(const char *path, int extra_flags);

#endif
