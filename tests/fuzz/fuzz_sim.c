/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The simulator wire protocol as keyd-simfw serves it: the guest's bytes
 * (over a virtio-serial port, possibly with leftovers of an abandoned
 * exchange) are read frame by frame (kd_sim_read_frame) and handled by a
 * real simulated launch (kd_sim_handle). The first input byte chooses resync
 * (serial) or strict (socket) framing.
 * Properties: every header re-encodes to the bytes it came from; responses
 * carry the request type | KD_SIM_RSP and the documented sizes; a DERIVE
 * that the firmware accepts gives a MSG_KEY_RSP that kd_key_rsp_parse
 * accepts, and the same request derives the same key twice.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "keyd/cursor.h"
#include "keyd/error.h"
#include "keyd/sim.h"

static struct kd_sim_fw *fw;
static char chip_dir[] = "/tmp/keyd-fuzz-sim.XXXXXX";

static void cleanup(void)
{
	char cmd[64];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", chip_dir);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", chip_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct kd_sim_init_opts o = {.product = KD_PRODUCT_MILAN};
	struct kd_sim_launch l = {.policy = 0x30000};
	struct kd_sim_chip *chip = NULL;

	FUZZ_ASSERT(mkdtemp(chip_dir));
	atexit(cleanup);
	FUZZ_ASSERT(kd_sim_chip_init(chip_dir, &o) == 0);
	FUZZ_ASSERT(kd_sim_chip_load(chip_dir, &chip) == 0);
	memset(l.measurement, 0x5a, sizeof(l.measurement));
	FUZZ_ASSERT(kd_sim_fw_new(chip, &l, &fw) == 0);
	return 0;
}

static void check_rsp(const struct kd_sim_hdr *h, const uint8_t *payload, uint16_t type,
		      const uint8_t *rsp, size_t len, uint32_t status)
{
	FUZZ_ASSERT(type == (h->type | KD_SIM_RSP));
	switch (h->type) {
	case KD_SIM_REQ_DERIVE: {
		struct kd_secret *k = NULL;
		uint8_t again[KD_KEY_RSP_SIZE];
		uint32_t st2 = 0;

		FUZZ_ASSERT(len == KD_KEY_RSP_SIZE);
		FUZZ_ASSERT(kd_get_le32(rsp) == status);
		if (status == KD_FW_SUCCESS) {
			FUZZ_ASSERT(kd_key_rsp_parse(rsp, len, &k) == 0);
			kd_secret_free(k);
			FUZZ_ASSERT(kd_sim_derive(fw, payload, h->len, again, &st2) == 0);
			FUZZ_ASSERT(st2 == 0 && memcmp(again, rsp, sizeof(again)) == 0);
			kd_wipe(again, sizeof(again));
		} else {
			FUZZ_ASSERT(kd_key_rsp_parse(rsp, len, &k) == KD_EFIRMWARE && !k);
		}
		break;
	}
	case KD_SIM_REQ_REPORT:
		FUZZ_ASSERT(len == KD_SIM_REPORT_RSP_SIZE);
		FUZZ_ASSERT(kd_get_le32(rsp) == status);
		if (status == 0) {
			struct kd_report r;

			FUZZ_ASSERT(kd_get_le32(rsp + 4) == KD_REPORT_SIZE);
			FUZZ_ASSERT(kd_report_parse(rsp + 0x20, KD_REPORT_SIZE, &r) == 0);
			FUZZ_ASSERT(memcmp(r.report_data, payload, 64) == 0);
		}
		break;
	case KD_SIM_REQ_CERTS:
		FUZZ_ASSERT(len > 0);
		break;
	default:
		FUZZ_ASSERT(0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int p[2];
	bool resync;

	if (size < 1 || size > 60000)
		return 0;
	resync = data[0] & 1;
	FUZZ_ASSERT(pipe2(p, O_CLOEXEC) == 0);
	FUZZ_ASSERT(write(p[1], data + 1, size - 1) == (ssize_t)(size - 1));
	close(p[1]);
	for (int i = 0; i < 64; i++) {
		struct kd_sim_hdr h;
		uint8_t hb[KD_SIM_HDR_SIZE], hb2[KD_SIM_HDR_SIZE];
		struct kd_sim_hdr h2;
		uint8_t *payload = NULL, *rsp = NULL;
		uint16_t type = 0;
		size_t len = 0;
		uint32_t status = 0;
		int r;

		r = kd_sim_read_frame(p[0], 0, 0, resync, &h, &payload);
		if (r)
			break;
		FUZZ_ASSERT(h.len <= KD_SIM_MAX_PAYLOAD);
		FUZZ_ASSERT((h.len == 0) == (payload == NULL));
		kd_sim_hdr_encode(&h, hb);
		FUZZ_ASSERT(kd_sim_hdr_parse(hb, sizeof(hb), &h2) == 0);
		kd_sim_hdr_encode(&h2, hb2);
		FUZZ_ASSERT(memcmp(hb, hb2, sizeof(hb)) == 0);
		FUZZ_ASSERT(h2.type == h.type && h2.len == h.len && h2.id == h.id);
		r = kd_sim_handle(fw, &h, payload, &type, &rsp, &len, &status);
		if (r == 0) {
			check_rsp(&h, payload, type, rsp, len, status);
			free(rsp);
		}
		free(payload);
	}
	close(p[0]);
	kd_err_clear();
	return 0;
}
