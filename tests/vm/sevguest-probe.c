/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sevguest-probe: raw ioctls against a /dev/sev-guest, checking the Linux
 * guest driver's ABI corner cases one by one (VM scenario 17, inside the
 * guest, against the emulated device keyd-sevguest-cuse). The last cases
 * make a request fail on purpose, which wipes the VMPCK: run it last.
 *
 * Usage: sevguest-probe DEVICE 6.1.0|6.1.y|6.12
 * Prints "SEVGUEST-PROBE: case=NAME result=ok|FAIL [why]" per case and
 * "SEVGUEST-PROBE: DONE failed=N"; exits 1 if any case failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/sev-guest.h>

#define SENTINEL 0x1234u
#define INVALID_LEN ((uint64_t)SNP_GUEST_VMM_ERR_INVALID_LEN << 32)

static int fd, failed;
static int v610; /* the 6.1.0 behaviour is expected */

static void result(const char *name, int ok, const char *why)
{
	printf("SEVGUEST-PROBE: case=%s result=%s%s%s\n", name, ok ? "ok" : "FAIL", ok ? "" : " ",
	       ok ? "" : why);
	fflush(stdout);
	if (!ok)
		failed++;
}

/* ioctl -> 0 or -errno */
static int call(unsigned long cmd, struct snp_guest_request_ioctl *io)
{
	return ioctl(fd, cmd, io) < 0 ? -errno : 0;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static struct snp_derived_key_req key_req(uint32_t svn)
{
	struct snp_derived_key_req r = {.guest_field_select = 1u << 3 /* measurement */,
					.guest_svn = svn};
	return r;
}

static int derive(uint8_t key[32])
{
	struct snp_derived_key_req req = key_req(0);
	struct snp_derived_key_resp resp;
	struct snp_guest_request_ioctl io = {.msg_version = 1, .req_data = (uintptr_t)&req,
					     .resp_data = (uintptr_t)&resp};
	int r = call(SNP_GET_DERIVED_KEY, &io);

	if (r == 0 && le32(resp.data) != 0)
		return -EPROTO;
	if (r == 0)
		memcpy(key, resp.data + 32, 32);
	return r;
}

static void ext_case(const char *name, uint32_t certs_len, int want_rc)
{
	static uint8_t certs[8 * 4096];
	static struct snp_report_resp resp;
	struct snp_ext_report_req req = {.certs_address = (uintptr_t)certs, .certs_len = certs_len};
	struct snp_guest_request_ioctl io = {.msg_version = 1, .req_data = (uintptr_t)&req,
					     .resp_data = (uintptr_t)&resp,
					     .exitinfo2 = SENTINEL};
	int r;

	memset(certs, 0xcc, sizeof(certs));
	memset(&resp, 0xee, sizeof(resp));
	r = call(SNP_GET_EXT_REPORT, &io);
	if (want_rc == -EINVAL) {
		result(name, r == -EINVAL && io.exitinfo2 == 0xff && req.certs_len == certs_len &&
				     resp.data[0] == 0xee,
		       "want -EINVAL, exitinfo2 0xff, nothing else written");
		return;
	}
	if (certs_len == 4096) { /* too small for VCEK + ASK + ARK */
		if (v610)
			result(name, r == 0 && io.exitinfo2 == INVALID_LEN && req.certs_len == 8192 &&
					     le32(resp.data) == 0 && le32(resp.data + 4) == 1184 &&
					     certs[0] == 0 && certs[4095] == 0,
			       "6.1.0: want rc 0, INVALID_LEN, certs_len 8192, report, zeroed certs");
		else
			result(name, r == -EIO && io.exitinfo2 == INVALID_LEN && req.certs_len == 8192 &&
					     resp.data[0] == 0xee && certs[0] == 0xcc,
			       "want -EIO, INVALID_LEN, certs_len 8192, nothing else written");
		return;
	}
	{
		/* A table: the VCEK GUID first (63da758d-e664-4564-adc5-f4b93be8accd, in string byte order). */
		static const uint8_t vcek_guid0[4] = {0x63, 0xda, 0x75, 0x8d};
		int ok = r == 0 && io.exitinfo2 == SENTINEL && le32(resp.data) == 0 &&
			 le32(resp.data + 4) == 1184;

		if (certs_len)
			ok = ok && !memcmp(certs, vcek_guid0, 4) && certs[certs_len - 1] != 0xcc;
		else
			ok = ok && certs[0] == 0xcc;
		result(name, ok, "want rc 0, struct untouched, the report (and the table)");
	}
}

int main(int argc, char **argv)
{
	struct snp_derived_key_req kreq = key_req(0);
	struct snp_derived_key_resp kresp;
	static struct snp_report_resp rresp;
	struct snp_report_req rreq = {.vmpl = 0};
	struct snp_guest_request_ioctl io;
	uint8_t k0[32];
	int r;

	if (argc != 3) {
		fprintf(stderr, "usage: sevguest-probe DEVICE 6.1.0|6.1.y|6.12\n");
		return 2;
	}
	v610 = !strcmp(argv[2], "6.1.0");
	fd = open(argv[1], O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		printf("SEVGUEST-PROBE: cannot open %s: %s\n", argv[1], strerror(errno));
		return 1;
	}

	io = (struct snp_guest_request_ioctl){.msg_version = 0, .req_data = (uintptr_t)&kreq,
					      .resp_data = (uintptr_t)&kresp, .exitinfo2 = SENTINEL};
	r = call(SNP_GET_DERIVED_KEY, &io);
	result("msg_version_0", r == -EINVAL && io.exitinfo2 == SENTINEL,
	       "want -EINVAL, struct not copied back");

	io = (struct snp_guest_request_ioctl){.msg_version = 1};
	r = call(_IOWR('S', 0x7, struct snp_guest_request_ioctl), &io);
	result("unknown_ioctl", r == -ENOTTY && io.exitinfo2 == 0xff, "want -ENOTTY, exitinfo2 0xff");

	io = (struct snp_guest_request_ioctl){.msg_version = 1, .req_data = (uintptr_t)&kreq};
	r = call(SNP_GET_DERIVED_KEY, &io);
	result("null_resp", r == -EINVAL && io.exitinfo2 == 0xff, "want -EINVAL, exitinfo2 0xff");

	io = (struct snp_guest_request_ioctl){.msg_version = 1, .req_data = (uintptr_t)&kreq,
					      .resp_data = (uintptr_t)&kresp, .exitinfo2 = SENTINEL};
	r = call(SNP_GET_DERIVED_KEY, &io);
	result("derive", r == 0 && io.exitinfo2 == SENTINEL && le32(kresp.data) == 0,
	       "want rc 0, status 0, struct untouched");
	memcpy(k0, kresp.data + 32, 32);

	kreq = key_req(99);
	r = call(SNP_GET_DERIVED_KEY, &io);
	result("derive_status_0x16", r == 0 && le32(kresp.data) == 0x16,
	       "want rc 0 with status 0x16 in MSG_KEY_RSP");

	io = (struct snp_guest_request_ioctl){.msg_version = 1, .req_data = (uintptr_t)&rreq,
					      .resp_data = (uintptr_t)&rresp};
	r = call(SNP_GET_REPORT, &io);
	result("report", r == 0 && le32(rresp.data) == 0 && le32(rresp.data + 4) == 1184,
	       "want rc 0, status 0, report_size 1184");

	ext_case("ext_certs_20k", 5 * 4096, -EINVAL);
	ext_case("ext_certs_unaligned", 4097, -EINVAL);
	ext_case("ext_certs_one_page", 4096, 0);
	ext_case("ext_certs_16k", 4 * 4096, 0);
	ext_case("ext_no_certs", 0, 0);

	/* Many processes at once: every one gets the same key. */
	{
		int ok = 1;

		for (int i = 0; i < 8; i++) {
			if (fork() == 0) {
				uint8_t k[32];

				for (int j = 0; j < 4; j++)
					if (derive(k) != 0 || memcmp(k, k0, 32))
						_exit(1);
				_exit(0);
			}
		}
		for (int i = 0; i < 8; i++) {
			int st;

			if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
				ok = 0;
		}
		result("concurrent_processes", ok, "a child got an error or another key");
	}

	/* Last: a failed request wipes the VMPCK for good. */
	kreq = key_req(0);
	io = (struct snp_guest_request_ioctl){.msg_version = 2, .req_data = (uintptr_t)&kreq,
					      .resp_data = (uintptr_t)&kresp};
	r = call(SNP_GET_DERIVED_KEY, &io);
	result("msg_version_2_fails", r == -EIO && io.fw_error == 0x16,
	       "want -EIO with fw_error 0x16");
	io = (struct snp_guest_request_ioctl){.msg_version = 1, .req_data = (uintptr_t)&kreq,
					      .resp_data = (uintptr_t)&kresp, .exitinfo2 = SENTINEL};
	r = call(SNP_GET_DERIVED_KEY, &io);
	result("vmpck_disabled", r == -ENOTTY && io.exitinfo2 == SENTINEL,
	       "want -ENOTTY after a failure, struct not copied back");

	printf("SEVGUEST-PROBE: DONE failed=%d\n", failed);
	close(fd);
	return failed ? 1 : 0;
}
