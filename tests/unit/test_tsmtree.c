/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The test guest's configfs-tsm report tree (keyd/sim/tsm/tsmtree.c) in
 * process, behind the emulated /dev/sev-guest ABI (keyd/sim/cuse/sevguest.c)
 * and an in-process simulated launch: the report path end to end (the
 * outblob verifies under the auxblob's chain and echoes inblob), and each
 * rule of drivers/virt/coco/tsm.c and sev_report_new() the tree mirrors.
 * The FUSE mount itself is tested by tests/integration/21-sevguest-tsm.sh
 * and, in the guest, by VM scenario 18.
 */
#include <check.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyd/certtable.h"
#include "keyd/error.h"
#include "keyd/report.h"
#include "keyd/sim.h"
#include "keyd/verify.h"
#include "helpers/chip.h"
#include "sevguest.h"
#include "tsmtree.h"

static char root[] = "/tmp/keyd-test-tsmtree-XXXXXX";
static const uint64_t tcb0 = 0x7308000000000003ull;
static char chip_dir[300];
static struct kd_sim_fw *fw;
static struct sg_dev dev;
static struct tsm_tree *tree;
static atomic_int fw_calls;

static int fw_call(void *ctx, uint16_t type, const void *req, size_t len, uint8_t **ret,
		   size_t *ret_len)
{
	struct kd_sim_hdr h = {.type = type, .len = (uint32_t)len, .id = 1};
	uint16_t rtype;
	uint32_t st;

	(void)ctx;
	atomic_fetch_add(&fw_calls, 1);
	return kd_sim_handle(fw, &h, req, &rtype, ret, ret_len, &st);
}

/* What CUSE does for keyd-sevguest-cuse: the ABI gets the caller's memory. */
static int dev_ioctl(void *ctx, unsigned long cmd, struct snp_guest_request_ioctl *io)
{
	struct sg_call *c = calloc(1, sizeof(*c));
	struct snp_ext_report_req ext;
	size_t certs_len;
	bool need;
	long rc;

	(void)ctx;
	ck_assert_ptr_nonnull(c);
	c->cmd = (unsigned int)cmd;
	c->io = *io;
	sg_needs(c->cmd, io, (const void *)(uintptr_t)io->req_data, &need, &certs_len);
	if (need) {
		c->req = (const void *)(uintptr_t)io->req_data;
		memcpy(&ext, c->req, sizeof(ext));
	}
	sg_ioctl(&dev, c);
	if (c->write_req)
		memcpy((void *)(uintptr_t)io->req_data, &c->req_out, sizeof(c->req_out));
	if (c->write_resp)
		memcpy((void *)(uintptr_t)io->resp_data, c->resp, c->resp_len);
	if (c->write_certs)
		memcpy((void *)(uintptr_t)ext.certs_address, c->certs, c->certs_len);
	if (c->write_io)
		*io = c->io_out;
	rc = c->rc;
	free(c);
	return (int)rc;
}

static void new_fw(uint32_t launch_vmpl)
{
	struct kd_sim_launch l = {.policy = 0x30000, .guest_svn = 5, .vmpl = launch_vmpl};
	struct kd_sim_chip *chip = NULL;

	kd_sim_fw_free(fw); /* and its chip */
	fw = NULL;
	memset(l.measurement, 0x11, sizeof(l.measurement));
	ck_assert_int_eq(kd_sim_chip_load(chip_dir, &chip), 0);
	ck_assert_int_eq(kd_sim_fw_new(chip, &l, &fw), 0);
}

static void setup(void)
{
	struct kd_sim_init_opts o = {.product = KD_PRODUCT_MILAN, .have_tcb = true, .tcb = tcb0};
	if (!mkdtemp(root))
		abort();
	snprintf(chip_dir, sizeof(chip_dir), "%s/chip", root);
	if (kd_test_chip_init(chip_dir, &o) < 0)
		abort();
}

static void teardown(void)
{
	char cmd[400];

	kd_sim_fw_free(fw);
	fw = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", root);
}

/* A fresh launch, device and tree per test. */
static void start(const char *provider, unsigned floor, uint32_t launch_vmpl)
{
	struct tsm_opts o = {.provider = provider, .privlevel_floor = floor, .ioctl = dev_ioctl};

	new_fw(launch_vmpl);
	sg_dev_init(&dev, SG_ABI_STABLE, fw_call, NULL);
	atomic_store(&fw_calls, 0);
	ck_assert_int_eq(tsm_tree_new(&o, &tree), 0);
	ck_assert_int_eq(tsm_mkdir(tree, "r"), 0);
}

static void stop(void)
{
	tsm_tree_free(tree);
	tree = NULL;
	sg_dev_destroy(&dev);
}

static uint64_t generation(void)
{
	uint8_t *b = NULL;
	size_t n = 0;
	char s[32];

	ck_assert_int_eq(tsm_show(tree, "r", TSM_GENERATION, &b, &n), 0);
	ck_assert_uint_lt(n, sizeof(s));
	ck_assert_uint_eq(b[n - 1], '\n');
	memcpy(s, b, n);
	s[n] = '\0';
	free(b);
	return strtoull(s, NULL, 10);
}

static void show_str(enum tsm_attr a, const char *want)
{
	uint8_t *b = NULL;
	size_t n = 0;

	ck_assert_int_eq(tsm_show(tree, "r", a, &b, &n), 0);
	ck_assert_uint_eq(n, strlen(want));
	ck_assert_mem_eq(b, want, n);
	free(b);
}

START_TEST(report_echoes_inblob_and_verifies_with_auxblob)
{
	uint8_t in[64], *out = NULL, *aux = NULL;
	size_t out_len = 0, aux_len = 0;
	struct kd_cert_inputs ci = {0};
	struct kd_verify_policy pol = {.allow_debug = true, .max_vmpl = 3};
	struct kd_certtable t;
	struct kd_report r;

	start(NULL, 0, 0);
	show_str(TSM_PROVIDER, "sev_guest\n");
	show_str(TSM_PRIVLEVEL_FLOOR, "0\n");
	memset(in, 0x5a, sizeof(in));
	ck_assert_int_eq(tsm_store(tree, "r", TSM_INBLOB, in, 64), 64);
	ck_assert_int_eq(tsm_store(tree, "r", TSM_PRIVLEVEL, "2\n", 2), 2);
	ck_assert_int_eq(tsm_show(tree, "r", TSM_OUTBLOB, &out, &out_len), 0);
	ck_assert_uint_eq(out_len, KD_REPORT_SIZE);
	ck_assert_int_eq(kd_report_parse(out, out_len, &r), 0);
	ck_assert_mem_eq(r.report_data, in, 64);
	ck_assert_uint_eq(r.vmpl, 2);
	ck_assert_int_eq(tsm_show(tree, "r", TSM_AUXBLOB, &aux, &aux_len), 0);
	/* auxblob: the table up to its last certificate, not the 16 KiB buffer. */
	ck_assert_uint_gt(aux_len, 0);
	ck_assert_uint_lt(aux_len, 16u * 1024u);
	ck_assert_int_eq(kd_certtable_parse(aux, aux_len, &t), 0);
	ck_assert_ptr_nonnull(t.vcek);
	ck_assert_ptr_nonnull(t.ark);
	ci.cert_table = aux;
	ci.cert_table_len = aux_len;
	ci.ark = t.ark;
	ci.ark_len = t.ark_len;
	ck_assert_int_eq(kd_verify_report(out, out_len, &ci, &pol, NULL, NULL), 0);
	free(out);
	free(aux);
	stop();
}
END_TEST

/* One report per generation: reads of the same generation reuse it; a write makes a new one. */
START_TEST(report_made_once_per_generation)
{
	uint8_t in[64] = {1}, *a = NULL, *b = NULL, *c = NULL;
	size_t la = 0, lb = 0, lc = 0;
	int calls;

	start(NULL, 0, 0);
	ck_assert_uint_eq(generation(), 0);
	ck_assert_int_eq(tsm_store(tree, "r", TSM_INBLOB, in, 64), 64);
	ck_assert_uint_eq(generation(), 1);
	ck_assert_int_eq(tsm_show(tree, "r", TSM_OUTBLOB, &a, &la), 0);
	calls = atomic_load(&fw_calls);
	ck_assert_int_gt(calls, 0);
	ck_assert_int_eq(tsm_show(tree, "r", TSM_AUXBLOB, &b, &lb), 0);
	free(b);
	ck_assert_int_eq(tsm_show(tree, "r", TSM_OUTBLOB, &b, &lb), 0);
	ck_assert_int_eq(atomic_load(&fw_calls), calls);
	ck_assert_mem_eq(a, b, la);
	ck_assert_uint_eq(generation(), 1);
	/* The same inblob again is still a write: a new generation, a new report. */
	ck_assert_int_eq(tsm_store(tree, "r", TSM_INBLOB, in, 64), 64);
	ck_assert_uint_eq(generation(), 2);
	ck_assert_int_eq(tsm_show(tree, "r", TSM_OUTBLOB, &c, &lc), 0);
	ck_assert_int_gt(atomic_load(&fw_calls), calls);
	free(a);
	free(b);
	free(c);
	stop();
}
END_TEST

START_TEST(outblob_without_inblob_is_einval)
{
	uint8_t *b = NULL;
	size_t n = 0;

	start(NULL, 0, 0);
	ck_assert_int_eq(tsm_show(tree, "r", TSM_OUTBLOB, &b, &n), -EINVAL);
	ck_assert_int_eq(tsm_show(tree, "r", TSM_AUXBLOB, &b, &n), -EINVAL);
	/* privlevel alone is not an inblob */
	ck_assert_int_eq(tsm_store(tree, "r", TSM_PRIVLEVEL, "0", 1), 1);
	ck_assert_int_eq(tsm_show(tree, "r", TSM_OUTBLOB, &b, &n), -EINVAL);
	ck_assert_int_eq(atomic_load(&fw_calls), 0);
	stop();
}
END_TEST

START_TEST(inblob_sizes)
{
	uint8_t in[65] = {0}, *b = NULL;
	size_t n = 0;

	start(NULL, 0, 0);
	ck_assert_int_eq(tsm_store(tree, "r", TSM_INBLOB, in, 65), -EFBIG);
	ck_assert_uint_eq(generation(), 0);
	/* tsm.c takes 1..64 bytes; sev_guest wants exactly 64 when the report is made. */
	ck_assert_int_eq(tsm_store(tree, "r", TSM_INBLOB, in, 32), 32);
	ck_assert_int_eq(tsm_show(tree, "r", TSM_OUTBLOB, &b, &n), -EINVAL);
	ck_assert_int_eq(atomic_load(&fw_calls), 0);
	stop();
}
END_TEST

START_TEST(privlevel_range_and_syntax)
{
	start(NULL, 1, 1);
	show_str(TSM_PRIVLEVEL_FLOOR, "1\n");
	ck_assert_int_eq(tsm_store(tree, "r", TSM_PRIVLEVEL, "0\n", 2), -EINVAL);
	ck_assert_int_eq(tsm_store(tree, "r", TSM_PRIVLEVEL, "4", 1), -EINVAL);
	ck_assert_int_eq(tsm_store(tree, "r", TSM_PRIVLEVEL, "one", 3), -EINVAL);
	ck_assert_int_eq(tsm_store(tree, "r", TSM_PRIVLEVEL, "-1", 2), -EINVAL);
	ck_assert_int_eq(tsm_store(tree, "r", TSM_PRIVLEVEL, "1\n\n", 3), -EINVAL);
	ck_assert_int_eq(tsm_store(tree, "r", TSM_PRIVLEVEL, "99999999999", 11), -ERANGE);
	/* refused writes do not move the generation */
	ck_assert_uint_eq(generation(), 0);
	ck_assert_int_eq(tsm_store(tree, "r", TSM_PRIVLEVEL, "0x3", 3), 3);
	ck_assert_int_eq(tsm_store(tree, "r", TSM_PRIVLEVEL, "1\n", 2), 2);
	ck_assert_uint_eq(generation(), 2);
	stop();
}
END_TEST

/* Floor 1 and privlevel never written: the firmware refuses VMPL 0 (status 0x16) -> EINVAL. */
START_TEST(firmware_invalid_params_is_einval)
{
	uint8_t in[64] = {0}, *b = NULL;
	size_t n = 0;

	start(NULL, 1, 1);
	ck_assert_int_eq(tsm_store(tree, "r", TSM_INBLOB, in, 64), 64);
	ck_assert_int_eq(tsm_show(tree, "r", TSM_OUTBLOB, &b, &n), -EINVAL);
	/* a firmware status is not a failed request: the VMPCK stays */
	ck_assert(!dev.vmpck_disabled);
	ck_assert_int_eq(tsm_store(tree, "r", TSM_PRIVLEVEL, "1", 1), 1);
	ck_assert_int_eq(tsm_show(tree, "r", TSM_OUTBLOB, &b, &n), 0);
	free(b);
	stop();
}
END_TEST

/* One VMPCK for both interfaces: after a failed ioctl the tree gets -ENOTTY too. */
START_TEST(wiped_vmpck_is_enotty)
{
	uint8_t in[64] = {0}, *b = NULL;
	size_t n = 0;

	start(NULL, 0, 0);
	dev.vmpck_disabled = true;
	ck_assert_int_eq(tsm_store(tree, "r", TSM_INBLOB, in, 64), 64);
	ck_assert_int_eq(tsm_show(tree, "r", TSM_OUTBLOB, &b, &n), -ENOTTY);
	stop();
}
END_TEST

START_TEST(write_generation_wrap_is_ebusy_until_read)
{
	uint8_t in[64] = {0}, *b = NULL;
	size_t n = 0;

	start(NULL, 0, 0);
	ck_assert_int_eq(tsm_store(tree, "r", TSM_INBLOB, in, 64), 64);
	ck_assert_int_eq(tsm_show(tree, "r", TSM_OUTBLOB, &b, &n), 0); /* read generation 1 */
	free(b);
	/* 2^64 - 2 writes later: one more is accepted, the next would equal the read one */
	ck_assert_int_eq(tsm_test_set_write_generation(tree, "r", UINT64_MAX), 0);
	ck_assert_int_eq(tsm_store(tree, "r", TSM_PRIVLEVEL, "0", 1), 1);
	ck_assert_uint_eq(generation(), 0);
	ck_assert_int_eq(tsm_store(tree, "r", TSM_PRIVLEVEL, "0", 1), -EBUSY);
	ck_assert_int_eq(tsm_store(tree, "r", TSM_INBLOB, in, 64), -EBUSY);
	ck_assert_int_eq(tsm_show(tree, "r", TSM_OUTBLOB, &b, &n), 0);
	free(b);
	ck_assert_int_eq(tsm_store(tree, "r", TSM_INBLOB, in, 64), 64);
	stop();
}
END_TEST

START_TEST(entries_and_attribute_access)
{
	uint8_t *b = NULL;
	size_t n = 0;

	start("tdx_guest", 0, 0);
	show_str(TSM_PROVIDER, "tdx_guest\n");
	ck_assert_int_eq(tsm_mkdir(tree, "r"), -EEXIST);
	ck_assert_int_eq(tsm_mkdir(tree, ""), -EINVAL);
	ck_assert_int_eq(tsm_show(tree, "r", TSM_INBLOB, &b, &n), -EACCES);
	ck_assert_int_eq(tsm_show(tree, "r", TSM_PRIVLEVEL, &b, &n), -EACCES);
	ck_assert_int_eq(tsm_store(tree, "r", TSM_OUTBLOB, "x", 1), -EACCES);
	ck_assert_int_eq(tsm_store(tree, "r", TSM_GENERATION, "1", 1), -EACCES);
	ck_assert(tsm_exists(tree, "r"));
	ck_assert_int_eq(tsm_rmdir(tree, "r"), 0);
	ck_assert(!tsm_exists(tree, "r"));
	ck_assert_int_eq(tsm_rmdir(tree, "r"), -ENOENT);
	ck_assert_int_eq(tsm_show(tree, "r", TSM_GENERATION, &b, &n), -ENOENT);
	ck_assert_int_eq(tsm_attr_lookup("outblob"), TSM_OUTBLOB);
	ck_assert_int_eq(tsm_attr_lookup("manifestblob"), -1);
	stop();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tsmtree");
	TCase *t = tcase_create("tsmtree");
	SRunner *sr;
	int failed;

	tcase_set_timeout(t, 60);
	tcase_add_unchecked_fixture(t, setup, teardown);
	tcase_add_test(t, report_echoes_inblob_and_verifies_with_auxblob);
	tcase_add_test(t, report_made_once_per_generation);
	tcase_add_test(t, outblob_without_inblob_is_einval);
	tcase_add_test(t, inblob_sizes);
	tcase_add_test(t, privlevel_range_and_syntax);
	tcase_add_test(t, firmware_invalid_params_is_einval);
	tcase_add_test(t, wiped_vmpck_is_enotty);
	tcase_add_test(t, write_generation_wrap_is_ebusy_until_read);
	tcase_add_test(t, entries_and_attribute_access);
	suite_add_tcase(s, t);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
