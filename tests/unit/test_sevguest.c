/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The test guest's emulated /dev/sev-guest (keyd/sim/cuse/sevguest.c) in
 * process: keyd's production snp backend runs through it against an
 * in-process simulated launch, and each kernel ABI rule the emulator
 * mirrors is checked with raw ioctl structs. The "kernel" here is
 * fake_ioctl, which does what CUSE does for the daemon: hand the ABI the
 * caller's memory and write back exactly what it says.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/internal.h"
#include "keyd/backend.h"
#include "keyd/certtable.h"
#include "keyd/cursor.h"
#include "keyd/error.h"
#include "keyd/keyreq.h"
#include "keyd/report.h"
#include "keyd/sim.h"
#include "helpers/chip.h"
#include "sevguest.h"

static char root[] = "/tmp/keyd-test-sevguest-XXXXXX";
static const uint64_t tcb0 = 0x7308000000000003ull;
static struct kd_sim_fw *fw;
static struct sg_dev dev;
static atomic_int in_fw, overlapped, fw_calls;
static bool host_down;

/* The firmware behind the device: keyd-simfw's request handler, in process. */
static int fw_call(void *ctx, uint16_t type, const void *req, size_t len, uint8_t **ret,
		   size_t *ret_len)
{
	struct kd_sim_hdr h = {.type = type, .len = (uint32_t)len, .id = 1};
	uint16_t rtype;
	uint32_t st;
	int r;

	if (atomic_fetch_add(&in_fw, 1) != 0)
		atomic_store(&overlapped, 1);
	atomic_fetch_add(&fw_calls, 1);
	usleep(1000); /* widen the window a missing lock would leave */
	r = host_down ? kd_fail(KD_EIO, "host down") : kd_sim_handle(fw, &h, req, &rtype, ret, ret_len, &st);
	atomic_fetch_sub(&in_fw, 1);
	return r;
}

static void setup(void)
{
	struct kd_sim_init_opts o = {.product = KD_PRODUCT_MILAN, .have_tcb = true, .tcb = tcb0};
	struct kd_sim_launch l = {.policy = 0x30000, .guest_svn = 5};
	struct kd_sim_chip *chip = NULL;
	char dir[300];

	if (!mkdtemp(root))
		abort();
	snprintf(dir, sizeof(dir), "%s/chip", root);
	memset(l.measurement, 0x11, sizeof(l.measurement));
	if (kd_test_chip_init(dir, &o) < 0 || kd_sim_chip_load(dir, &chip) < 0 ||
	    kd_sim_fw_new(chip, &l, &fw) < 0)
		abort();
}

static void teardown(void)
{
	char cmd[400];

	kd_sim_fw_free(fw);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", root);
}

/* A fresh device (VMPCK intact) per test. */
static void new_dev(enum sg_abi abi)
{
	sg_dev_init(&dev, abi, fw_call, NULL);
	host_down = false;
	atomic_store(&fw_calls, 0);
}

static int fake_ioctl(int fd, unsigned long request, void *arg)
{
	struct snp_guest_request_ioctl *uio = arg;
	struct snp_ext_report_req ext;
	struct sg_call *c = calloc(1, sizeof(*c));
	size_t certs_len;
	bool need;
	long rc;

	ck_assert_ptr_nonnull(c);
	c->cmd = (unsigned int)request;
	c->io = *uio;
	sg_needs(c->cmd, uio, NULL, &need, &certs_len);
	if (need) {
		c->req = (const void *)(uintptr_t)uio->req_data;
		if (c->cmd == SNP_GET_EXT_REPORT)
			memcpy(&ext, c->req, sizeof(ext));
	}
	sg_ioctl(&dev, c);
	if (c->write_req)
		memcpy((void *)(uintptr_t)uio->req_data, &c->req_out, sizeof(c->req_out));
	if (c->write_resp)
		memcpy((void *)(uintptr_t)uio->resp_data, c->resp, c->resp_len);
	if (c->write_certs)
		memcpy((void *)(uintptr_t)ext.certs_address, c->certs, c->certs_len);
	if (c->write_io)
		*uio = c->io_out;
	rc = c->rc;
	free(c);
	if (rc < 0) {
		errno = (int)-rc;
		return -1;
	}
	return (int)rc;
}

static struct snp_derived_key_req key_req(uint32_t svn)
{
	struct snp_derived_key_req r = {.guest_field_select = KD_FIELD_MEASUREMENT,
					.guest_svn = svn, .tcb_version = tcb0};
	return r;
}

/* Raw ioctl: rc (0 or -errno). */
static int raw(unsigned long cmd, struct snp_guest_request_ioctl *io)
{
	return fake_ioctl(-1, cmd, io) < 0 ? -errno : 0;
}

/* ------------------------------------------------------------ production backend */

static void derive_via_snp(uint8_t out[32])
{
	struct kd_backend *b = NULL;
	struct kd_key_req req = {.guest_field_select = KD_FIELD_MEASUREMENT, .guest_svn = 1,
				 .tcb_version = tcb0};
	struct kd_secret *k = NULL;

	ck_assert_int_eq(kd_snp_backend_open_with(NULL, fake_ioctl, &b), 0);
	ck_assert_int_eq(kd_backend_derive(b, &req, &k), 0);
	memcpy(out, k->data, 32);
	kd_secret_free(k);
	kd_backend_close(b);
}

START_TEST(snp_backend_derives_and_reports)
{
	struct kd_backend *b = NULL;
	uint8_t k1[32], k2[32], rd[64], *rep = NULL, *certs = NULL;
	size_t len = 0, clen = 0;
	struct kd_certtable t;
	struct kd_report r;

	new_dev(SG_ABI_STABLE);
	derive_via_snp(k1);
	derive_via_snp(k2);
	ck_assert_mem_eq(k1, k2, 32);
	memset(rd, 0xab, sizeof(rd));
	ck_assert_int_eq(kd_snp_backend_open_with(NULL, fake_ioctl, &b), 0);
	ck_assert_int_eq(kd_backend_report(b, rd, 0, &rep, &len, &certs, &clen), 0);
	ck_assert_int_eq(kd_report_parse(rep, len, &r), 0);
	ck_assert_mem_eq(r.report_data, rd, 64);
	ck_assert_int_eq(kd_certtable_parse(certs, clen, &t), 0);
	ck_assert_ptr_nonnull(t.vcek);
	ck_assert_ptr_nonnull(t.ark);
	free(rep);
	free(certs);
	kd_backend_close(b);
	ck_assert(!dev.vmpck_disabled);
	sg_dev_destroy(&dev);
}
END_TEST

struct worker {
	uint8_t key[32];
};

static void *derive_worker(void *arg)
{
	derive_via_snp(((struct worker *)arg)->key);
	return NULL;
}

/* Many processes at once: one firmware request at a time, all answered. */
START_TEST(concurrent_callers_serialized_per_request)
{
	struct worker w[8];
	pthread_t t[8];

	new_dev(SG_ABI_STABLE);
	atomic_store(&overlapped, 0);
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, derive_worker, &w[i]), 0);
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	for (int i = 1; i < 8; i++)
		ck_assert_mem_eq(w[i].key, w[0].key, 32);
	ck_assert_int_eq(atomic_load(&overlapped), 0);
	ck_assert_int_eq(atomic_load(&fw_calls), 8);
	sg_dev_destroy(&dev);
}
END_TEST

/* ------------------------------------------------------------ ioctl ABI */

START_TEST(msg_version_zero_is_einval_without_copy_back)
{
	struct snp_derived_key_req req = key_req(1);
	struct snp_derived_key_resp resp;
	struct snp_guest_request_ioctl io = {.msg_version = 0, .req_data = (uintptr_t)&req,
					     .resp_data = (uintptr_t)&resp, .exitinfo2 = 0x1234};

	new_dev(SG_ABI_STABLE);
	ck_assert_int_eq(raw(SNP_GET_DERIVED_KEY, &io), -EINVAL);
	ck_assert_uint_eq(io.exitinfo2, 0x1234);
	ck_assert_int_eq(atomic_load(&fw_calls), 0);
	sg_dev_destroy(&dev);
}
END_TEST

START_TEST(null_buffers_einval_exitinfo2_ff)
{
	struct snp_derived_key_req req = key_req(1);
	struct snp_guest_request_ioctl io = {.msg_version = 1, .req_data = (uintptr_t)&req};

	new_dev(SG_ABI_STABLE);
	ck_assert_int_eq(raw(SNP_GET_DERIVED_KEY, &io), -EINVAL);
	ck_assert_uint_eq(io.exitinfo2, 0xff);
	ck_assert(!dev.vmpck_disabled);
	sg_dev_destroy(&dev);
}
END_TEST

START_TEST(unknown_ioctl_enotty_exitinfo2_ff)
{
	struct snp_guest_request_ioctl io = {.msg_version = 1};

	new_dev(SG_ABI_STABLE);
	ck_assert_int_eq(raw(_IOWR('S', 0x7, struct snp_guest_request_ioctl), &io), -ENOTTY);
	ck_assert_uint_eq(io.exitinfo2, 0xff);
	ck_assert(!dev.vmpck_disabled);
	sg_dev_destroy(&dev);
}
END_TEST

/* On success exitinfo2 is 0, so the driver does not copy the struct back. */
START_TEST(success_leaves_struct_alone_and_status_is_not_an_error)
{
	struct snp_derived_key_req req = key_req(99); /* above the launch SVN */
	struct snp_derived_key_resp resp;
	struct snp_guest_request_ioctl io = {.msg_version = 1, .req_data = (uintptr_t)&req,
					     .resp_data = (uintptr_t)&resp, .exitinfo2 = 0x1234};

	new_dev(SG_ABI_STABLE);
	memset(&resp, 0xee, sizeof(resp));
	ck_assert_int_eq(raw(SNP_GET_DERIVED_KEY, &io), 0);
	ck_assert_uint_eq(io.exitinfo2, 0x1234);
	/* The firmware's refusal is inside MSG_KEY_RSP, not an ioctl error. */
	ck_assert_uint_eq(kd_get_le32(resp.data), KD_FW_INVALID_PARAMS);
	ck_assert(!dev.vmpck_disabled);
	sg_dev_destroy(&dev);
}
END_TEST

START_TEST(report_reserved_bytes_status_0x16)
{
	struct snp_report_req req = {.vmpl = 0};
	struct snp_report_resp *resp = calloc(1, sizeof(*resp));
	struct snp_guest_request_ioctl io = {.msg_version = 1, .req_data = (uintptr_t)&req,
					     .resp_data = (uintptr_t)resp};

	new_dev(SG_ABI_STABLE);
	req.rsvd[27] = 1;
	ck_assert_int_eq(raw(SNP_GET_REPORT, &io), 0);
	ck_assert_uint_eq(kd_get_le32(resp->data), KD_FW_INVALID_PARAMS);
	req.rsvd[27] = 0;
	ck_assert_int_eq(raw(SNP_GET_REPORT, &io), 0);
	ck_assert_uint_eq(kd_get_le32(resp->data), 0);
	ck_assert_uint_eq(kd_get_le32(resp->data + 4), KD_REPORT_SIZE);
	free(resp);
	sg_dev_destroy(&dev);
}
END_TEST

/* SEV_FW_BLOB_MAX_SIZE: -EINVAL before any firmware call; the VMPCK stays. */
START_TEST(certs_over_16k_or_unaligned_einval_no_fw_call)
{
	static uint8_t certs[8 * 4096];
	static const uint32_t bad[] = {5 * 4096, 8 * 4096, 4097, 100};
	struct snp_report_resp *resp = calloc(1, sizeof(*resp));
	struct snp_ext_report_req req;
	struct snp_guest_request_ioctl io;
	uint8_t k[32];

	new_dev(SG_ABI_STABLE);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&req, 0, sizeof(req));
		req.certs_address = (uintptr_t)certs;
		req.certs_len = bad[i];
		io = (struct snp_guest_request_ioctl){.msg_version = 1, .req_data = (uintptr_t)&req,
						      .resp_data = (uintptr_t)resp};
		ck_assert_int_eq(raw(SNP_GET_EXT_REPORT, &io), -EINVAL);
		ck_assert_uint_eq(io.exitinfo2, 0xff);
		ck_assert_uint_eq(req.certs_len, bad[i]);
	}
	ck_assert_int_eq(atomic_load(&fw_calls), 0);
	ck_assert(!dev.vmpck_disabled);
	derive_via_snp(k);
	free(resp);
	sg_dev_destroy(&dev);
}
END_TEST

/* One page is too small for VCEK + ASK + ARK. */
static long ext_one_page(struct snp_ext_report_req *req, struct snp_report_resp *resp,
			 uint8_t *certs, struct snp_guest_request_ioctl *io)
{
	memset(req, 0, sizeof(*req));
	req->certs_address = (uintptr_t)certs;
	req->certs_len = 4096;
	memset(certs, 0xcc, 4096);
	memset(resp, 0xee, sizeof(*resp));
	*io = (struct snp_guest_request_ioctl){.msg_version = 1, .req_data = (uintptr_t)req,
					       .resp_data = (uintptr_t)resp};
	return raw(SNP_GET_EXT_REPORT, io);
}

START_TEST(invalid_len_stable_is_eio_vmpck_kept)
{
	static uint8_t certs[4096];
	struct snp_report_resp *resp = malloc(sizeof(*resp));
	struct snp_ext_report_req req;
	struct snp_guest_request_ioctl io;
	uint8_t k[32];

	new_dev(SG_ABI_STABLE);
	ck_assert_int_eq(ext_one_page(&req, resp, certs, &io), -EIO);
	ck_assert_uint_eq(io.vmm_error, SNP_GUEST_VMM_ERR_INVALID_LEN);
	ck_assert_uint_eq(io.fw_error, 0);
	ck_assert_uint_eq(req.certs_len, 2 * 4096);
	ck_assert_uint_eq(resp->data[0], 0xee); /* nothing else copied out */
	ck_assert_uint_eq(certs[0], 0xcc);
	ck_assert(!dev.vmpck_disabled);
	/* The plain request went to the firmware so the sequence number moves on. */
	ck_assert_int_eq(atomic_load(&fw_calls), 2);
	derive_via_snp(k);
	free(resp);
	sg_dev_destroy(&dev);
}
END_TEST

START_TEST(invalid_len_v6_1_0_is_rc_0)
{
	static uint8_t certs[4096];
	struct snp_report_resp *resp = malloc(sizeof(*resp));
	struct snp_ext_report_req req;
	struct snp_guest_request_ioctl io;

	new_dev(SG_ABI_V6_1);
	ck_assert_int_eq(ext_one_page(&req, resp, certs, &io), 0);
	ck_assert_uint_eq(io.vmm_error, SNP_GUEST_VMM_ERR_INVALID_LEN);
	ck_assert_uint_eq(req.certs_len, 2 * 4096);
	/* The report of the re-issued plain request, and a zeroed buffer. */
	ck_assert_uint_eq(kd_get_le32(resp->data), 0);
	ck_assert_uint_eq(kd_get_le32(resp->data + 4), KD_REPORT_SIZE);
	ck_assert_uint_eq(certs[0], 0);
	ck_assert_uint_eq(certs[4095], 0);
	ck_assert(!dev.vmpck_disabled);
	free(resp);
	sg_dev_destroy(&dev);
}
END_TEST

START_TEST(ext_report_without_certs_is_plain)
{
	struct snp_report_resp *resp = calloc(1, sizeof(*resp));
	struct snp_ext_report_req req = {0};
	struct snp_guest_request_ioctl io = {.msg_version = 1, .req_data = (uintptr_t)&req,
					     .resp_data = (uintptr_t)resp};

	new_dev(SG_ABI_STABLE);
	ck_assert_int_eq(raw(SNP_GET_EXT_REPORT, &io), 0);
	ck_assert_uint_eq(kd_get_le32(resp->data + 4), KD_REPORT_SIZE);
	ck_assert_int_eq(atomic_load(&fw_calls), 1);
	free(resp);
	sg_dev_destroy(&dev);
}
END_TEST

/* A failed request wipes the VMPCK: every later ioctl is -ENOTTY. */
START_TEST(failure_disables_vmpck)
{
	struct snp_derived_key_req req = key_req(1);
	struct snp_derived_key_resp resp;
	struct snp_guest_request_ioctl io = {.msg_version = 2, .req_data = (uintptr_t)&req,
					     .resp_data = (uintptr_t)&resp};
	struct kd_backend *b = NULL;
	struct kd_key_req kr = {.guest_field_select = KD_FIELD_MEASUREMENT, .tcb_version = tcb0};
	struct kd_secret *k = NULL;

	new_dev(SG_ABI_STABLE);
	ck_assert_int_eq(raw(SNP_GET_DERIVED_KEY, &io), -EIO);
	ck_assert_uint_eq(io.fw_error, KD_FW_INVALID_PARAMS);
	ck_assert(dev.vmpck_disabled);
	io = (struct snp_guest_request_ioctl){.msg_version = 1, .req_data = (uintptr_t)&req,
					      .resp_data = (uintptr_t)&resp, .exitinfo2 = 7};
	ck_assert_int_eq(raw(SNP_GET_DERIVED_KEY, &io), -ENOTTY);
	ck_assert_uint_eq(io.exitinfo2, 7);
	/* keyd's backend sees the failure and names it. */
	ck_assert_int_eq(kd_snp_backend_open_with(NULL, fake_ioctl, &b), 0);
	ck_assert_int_lt(kd_backend_derive(b, &kr, &k), 0);
	kd_backend_close(b);
	sg_dev_destroy(&dev);

	/* A host that does not answer fails the request the same way. */
	new_dev(SG_ABI_STABLE);
	host_down = true;
	io = (struct snp_guest_request_ioctl){.msg_version = 1, .req_data = (uintptr_t)&req,
					      .resp_data = (uintptr_t)&resp};
	ck_assert_int_eq(raw(SNP_GET_DERIVED_KEY, &io), -EIO);
	ck_assert_uint_ne(io.vmm_error, 0);
	ck_assert(dev.vmpck_disabled);
	sg_dev_destroy(&dev);
}
END_TEST

START_TEST(abi_names)
{
	enum sg_abi a;

	ck_assert_int_eq(sg_abi_parse("6.1.0", &a), 0);
	ck_assert_int_eq(a, SG_ABI_V6_1);
	ck_assert_int_eq(sg_abi_parse("6.12", &a), 0);
	ck_assert_int_eq(a, SG_ABI_STABLE);
	ck_assert_int_eq(sg_abi_parse("6.1.y", &a), 0);
	ck_assert_int_eq(a, SG_ABI_STABLE);
	ck_assert_int_eq(sg_abi_parse("5.19", &a), KD_EINVAL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sevguest");
	TCase *t = tcase_create("sevguest");
	SRunner *sr;
	int failed;

	tcase_set_timeout(t, 60);
	tcase_add_unchecked_fixture(t, setup, teardown);
	tcase_add_test(t, snp_backend_derives_and_reports);
	tcase_add_test(t, concurrent_callers_serialized_per_request);
	tcase_add_test(t, msg_version_zero_is_einval_without_copy_back);
	tcase_add_test(t, null_buffers_einval_exitinfo2_ff);
	tcase_add_test(t, unknown_ioctl_enotty_exitinfo2_ff);
	tcase_add_test(t, success_leaves_struct_alone_and_status_is_not_an_error);
	tcase_add_test(t, report_reserved_bytes_status_0x16);
	tcase_add_test(t, certs_over_16k_or_unaligned_einval_no_fw_call);
	tcase_add_test(t, invalid_len_stable_is_eio_vmpck_kept);
	tcase_add_test(t, invalid_len_v6_1_0_is_rc_0);
	tcase_add_test(t, ext_report_without_certs_is_plain);
	tcase_add_test(t, failure_disables_vmpck);
	tcase_add_test(t, abi_names);
	suite_add_tcase(s, t);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
