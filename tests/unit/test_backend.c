/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the trust backends: the /dev/sev-guest ioctl path through an
 * injected ioctl (exact bytes sent, the kernel's failure modes, no retry
 * after a transport error), configfs-tsm against a directory that plays
 * the kernel, backend selection, and the HKDF-SHA384 known answers.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/sev-guest.h>

#include "backend/internal.h"
#include "keyd/backend.h"
#include "keyd/cursor.h"
#include "keyd/error.h"
#include "keyd/report.h"

/* ------------------------------------------------------------ fake ioctl */

/*
 * The fake plays drivers/virt/coco/sev-guest/sev-guest.c: snp_guest_ioctl()
 * refuses msg_version 0 before anything else, presets exitinfo2 to 0xff
 * (left there when no firmware call happens), get_ext_report() refuses a
 * certs_len above SEV_FW_BLOB_MAX_SIZE (16 KiB) or not page-aligned with
 * -EINVAL, a failed request wipes the VMPCK and later requests get -ENOTTY,
 * and a host table larger than the buffer is INVALID_LEN with the needed
 * size written back: -EIO on 6.2 and later, rc 0 on early 6.x (`early`).
 */
#define FAKE_FW_BLOB_MAX (4u * 4096u)

enum mode {
	M_OK,
	M_FAIL,          /* rc -1, EIO, fw_error/vmm_error set; wipes the VMPCK */
	M_STATUS16,      /* rc 0, MSG_KEY_RSP.status 0x16 */
	M_REPORT_STATUS, /* rc 0, MSG_REPORT_RSP.status 0x16 */
	M_REPORT_SIZE,   /* rc 0, report_size 1000 */
	M_BUSY,          /* rc -1, ETIMEDOUT, vmm_error BUSY; wipes the VMPCK */
};

static struct {
	enum mode mode;
	bool early;             /* early 6.x: INVALID_LEN comes with rc 0 */
	bool vmpck_gone;        /* an earlier request failed */
	uint32_t host_certs;    /* bytes the host's certificate table needs */
	size_t early_copied;    /* what early 6.x copied back after INVALID_LEN */
	int calls;
	unsigned long cmd;
	struct snp_guest_request_ioctl io;
	uint8_t req[128];
	uint32_t certs_len_seen[4];
	unsigned long cmds[4];
} fake;

static void fake_report_rsp(struct snp_guest_request_ioctl *io)
{
	uint8_t *rsp = (uint8_t *)(uintptr_t)io->resp_data;

	memset(rsp, 0, 4000);
	kd_put_le32(rsp, fake.mode == M_REPORT_STATUS ? 0x16 : 0);
	kd_put_le32(rsp + 4, fake.mode == M_REPORT_SIZE ? 1000 : KD_REPORT_SIZE);
	memset(rsp + 0x20, 0xcd, KD_REPORT_SIZE);
}

static int fake_ioctl(int fd, unsigned long cmd, void *arg)
{
	struct snp_guest_request_ioctl *io = arg;
	struct snp_ext_report_req *e = (void *)(uintptr_t)io->req_data;
	size_t req_len = cmd == SNP_GET_DERIVED_KEY ? 32 : cmd == SNP_GET_REPORT ? 96 : 112;

	(void)fd;
	if (fake.calls < 4) {
		fake.cmds[fake.calls] = cmd;
		if (cmd == SNP_GET_EXT_REPORT)
			fake.certs_len_seen[fake.calls] = e->certs_len;
	}
	fake.calls++;
	fake.cmd = cmd;
	fake.io = *io;
	memcpy(fake.req, (void *)(uintptr_t)io->req_data, req_len);
	if (!io->msg_version) {
		errno = EINVAL;
		return -1;
	}
	io->exitinfo2 = 0xff;
	if (fake.vmpck_gone) {
		errno = ENOTTY;
		return -1;
	}
	if (cmd == SNP_GET_EXT_REPORT && e->certs_len && e->certs_address &&
	    (e->certs_len > FAKE_FW_BLOB_MAX || e->certs_len % 4096)) {
		errno = EINVAL;
		return -1;
	}
	switch (fake.mode) {
	case M_FAIL:
		io->fw_error = 0x5;
		io->vmm_error = 0;
		fake.vmpck_gone = true;
		errno = EIO;
		return -1;
	case M_BUSY:
		io->fw_error = 0;
		io->vmm_error = SNP_GUEST_VMM_ERR_BUSY;
		fake.vmpck_gone = true;
		errno = ETIMEDOUT;
		return -1;
	default:
		break;
	}
	io->exitinfo2 = 0;
	if (cmd == SNP_GET_EXT_REPORT && e->certs_len && fake.host_certs > e->certs_len) {
		e->certs_len = (fake.host_certs + 4095) / 4096 * 4096;
		io->vmm_error = SNP_GUEST_VMM_ERR_INVALID_LEN;
		if (fake.early) {
			/*
			 * get_ext_report() of early 6.x then copies certs_len -- the
			 * size the HOST claimed -- to certs_address. A read(2) from a
			 * pipe copies to user memory as copy_to_user() does, stopping
			 * at the first page it cannot write.
			 */
			static uint8_t junk[8 * 4096];
			int pfd[2];
			ssize_t n;

			ck_assert_uint_le(e->certs_len, sizeof(junk));
			ck_assert_int_eq(pipe(pfd), 0);
			ck_assert_int_eq(write(pfd[1], junk, e->certs_len), (ssize_t)e->certs_len);
			n = read(pfd[0], (void *)(uintptr_t)e->certs_address, e->certs_len);
			fake.early_copied = n < 0 ? 0 : (size_t)n;
			close(pfd[0]);
			close(pfd[1]);
			fake_report_rsp(io);
			if (fake.early_copied != e->certs_len) {
				errno = EFAULT;
				return -1;
			}
			return 0;
		}
		errno = EIO;
		return -1;
	}
	if (cmd == SNP_GET_DERIVED_KEY) {
		uint8_t *rsp = (uint8_t *)(uintptr_t)io->resp_data;

		memset(rsp, 0, 64);
		if (fake.mode == M_STATUS16)
			kd_put_le32(rsp, 0x16);
		else
			memset(rsp + 0x20, 0xab, 32);
		return 0;
	}
	fake_report_rsp(io);
	if (cmd == SNP_GET_EXT_REPORT)
		memset((void *)(uintptr_t)e->certs_address, 0xee, 24);
	return 0;
}

static struct kd_backend *open_fake(enum mode m)
{
	struct kd_backend *b = NULL;

	memset(&fake, 0, sizeof(fake));
	fake.mode = m;
	ck_assert_int_eq(kd_snp_backend_open_with(NULL, fake_ioctl, &b), 0);
	ck_assert_str_eq(b->ops->name, "snp");
	ck_assert_uint_eq(b->caps, KD_CAP_DERIVE | KD_CAP_REPORT | KD_CAP_CERTS);
	return b;
}

static const struct kd_key_req sample_req = {
	.root_key_select = KD_KEY_SEL_VCEK << KD_KEY_SEL_SHIFT,
	.guest_field_select = KD_FIELDS_SEAL,
	.vmpl = 1,
	.guest_svn = 2,
	.tcb_version = 0x7308000000000003ull,
};

START_TEST(snp_derive_exact_bytes)
{
	struct kd_backend *b = open_fake(M_OK);
	struct kd_secret *key = NULL;
	static const uint8_t expect[32] = {
		0x02, 0, 0, 0, 0, 0, 0, 0,                      /* root_key_select, rsvd */
		0x29, 0, 0, 0, 0, 0, 0, 0,                      /* fields: policy|meas|tcb */
		0x01, 0, 0, 0, 0x02, 0, 0, 0,                   /* vmpl, guest_svn */
		0x03, 0, 0, 0, 0, 0, 0x08, 0x73,                /* tcb_version */
	};

	ck_assert_int_eq(kd_backend_derive(b, &sample_req, &key), 0);
	ck_assert_int_eq(fake.calls, 1);
	ck_assert_uint_eq(fake.cmd, SNP_GET_DERIVED_KEY);
	ck_assert_uint_eq(fake.cmd, 0xC0205301ul);
	ck_assert_uint_eq(fake.io.msg_version, 1);
	ck_assert_mem_eq(fake.req, expect, 32);
	ck_assert_uint_eq(key->len, 32);
	for (size_t i = 0; i < 32; i++)
		ck_assert_uint_eq(key->data[i], 0xab);
	kd_secret_free(key);
	kd_backend_close(b);
}
END_TEST

START_TEST(snp_transport_error_no_retry)
{
	struct kd_backend *b = open_fake(M_FAIL);
	struct kd_secret *key = NULL;
	int r = kd_backend_derive(b, &sample_req, &key);

	ck_assert_int_eq(r, KD_EIO);
	ck_assert_ptr_null(key);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(r), "fw_error 0x5"));
	ck_assert_ptr_nonnull(strstr(kd_err_detail(r), "vmm_error 0x0"));
	ck_assert_int_eq(fake.calls, 1);
	/* The kernel wiped the VMPCK: every later request is refused unsent. */
	fake.mode = M_OK;
	r = kd_backend_derive(b, &sample_req, &key);
	ck_assert_int_eq(r, KD_EIO);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(r), "VMPCK"));
	{
		uint8_t data[64] = {0}, *rep = NULL;
		size_t len;

		ck_assert_int_eq(kd_backend_report(b, data, 0, &rep, &len, NULL, NULL), KD_EIO);
	}
	ck_assert_int_eq(fake.calls, 1);
	kd_backend_close(b);
}
END_TEST

START_TEST(snp_busy_is_an_error)
{
	struct kd_backend *b = open_fake(M_BUSY);
	uint8_t data[64] = {0}, *rep = NULL, *certs = NULL;
	size_t len, clen;
	int r = kd_backend_report(b, data, 0, &rep, &len, &certs, &clen);

	ck_assert_int_eq(r, KD_EIO);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(r), "BUSY"));
	ck_assert_int_eq(fake.calls, 1);
	kd_backend_close(b);
}
END_TEST

START_TEST(snp_status16_with_rc0)
{
	struct kd_backend *b = open_fake(M_STATUS16);
	struct kd_secret *key = NULL;
	int r = kd_backend_derive(b, &sample_req, &key);

	ck_assert_int_eq(r, KD_EFIRMWARE);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(r), "0x16"));
	ck_assert_ptr_null(key);
	/* A firmware status is not a transport error: the channel still works. */
	fake.mode = M_OK;
	ck_assert_int_eq(kd_backend_derive(b, &sample_req, &key), 0);
	ck_assert_int_eq(fake.calls, 2);
	kd_secret_free(key);
	kd_backend_close(b);
}
END_TEST

START_TEST(snp_invalid_request_not_sent)
{
	struct kd_backend *b = open_fake(M_OK);
	struct kd_secret *key = NULL;
	struct kd_key_req bad = sample_req;

	bad.guest_field_select |= 1ull << 7;
	ck_assert_int_lt(kd_backend_derive(b, &bad, &key), 0);
	ck_assert_int_eq(fake.calls, 0);
	kd_backend_close(b);
}
END_TEST

START_TEST(snp_report_exact_bytes)
{
	struct kd_backend *b = open_fake(M_OK);
	uint8_t data[64], *rep = NULL;
	size_t len;

	for (int i = 0; i < 64; i++)
		data[i] = (uint8_t)i;
	ck_assert_int_eq(kd_backend_report(b, data, 2, &rep, &len, NULL, NULL), 0);
	ck_assert_uint_eq(fake.cmd, SNP_GET_REPORT);
	ck_assert_uint_eq(fake.io.msg_version, 1);
	ck_assert_mem_eq(fake.req, data, 64);
	ck_assert_uint_eq(kd_get_le32(fake.req + 0x40), 2);
	for (int i = 0x44; i < 96; i++)
		ck_assert_uint_eq(fake.req[i], 0);
	ck_assert_uint_eq(len, KD_REPORT_SIZE);
	ck_assert_uint_eq(rep[0], 0xcd);
	ck_assert_uint_eq(rep[KD_REPORT_SIZE - 1], 0xcd);
	free(rep);
	kd_backend_close(b);
}
END_TEST

START_TEST(snp_report_bad_responses)
{
	struct kd_backend *b = open_fake(M_REPORT_STATUS);
	uint8_t data[64] = {0}, *rep = NULL;
	size_t len;
	int r;

	r = kd_backend_report(b, data, 0, &rep, &len, NULL, NULL);
	ck_assert_int_eq(r, KD_EFIRMWARE);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(r), "status 0x16"));
	ck_assert_ptr_null(rep);
	fake.mode = M_REPORT_SIZE;
	r = kd_backend_report(b, data, 0, &rep, &len, NULL, NULL);
	ck_assert_int_eq(r, KD_EMALFORMED);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(r), "1000"));
	ck_assert_ptr_null(rep);
	kd_backend_close(b);
}
END_TEST

START_TEST(snp_ext_report_fits)
{
	struct kd_backend *b = open_fake(M_OK);
	uint8_t data[64] = {0}, *rep = NULL, *certs = NULL;
	size_t len, clen;

	fake.host_certs = 3 * 4096;
	ck_assert_int_eq(kd_backend_report(b, data, 0, &rep, &len, &certs, &clen), 0);
	ck_assert_int_eq(fake.calls, 1);
	ck_assert_uint_eq(fake.certs_len_seen[0], 4 * 4096);
	ck_assert_uint_eq(clen, 4 * 4096);
	ck_assert_uint_eq(certs[0], 0xee);
	ck_assert_uint_eq(rep[0], 0xcd);
	free(rep);
	free(certs);
	kd_backend_close(b);
}
END_TEST

/* A host table over 16 KiB: never ask for more (the kernel would say EINVAL). */
START_TEST(snp_ext_report_16k_cap)
{
	uint8_t data[64] = {0}, *rep = NULL, *certs = NULL;
	struct kd_secret *key = NULL;
	size_t len, clen = 99;

	for (int early = 0; early < 2; early++) {
		struct kd_backend *b = open_fake(M_OK);

		fake.early = early;
		fake.host_certs = 5 * 4096;
		ck_assert_msg(kd_backend_report(b, data, 0, &rep, &len, &certs, &clen) == 0, "%s",
			      kd_err_detail(KD_EIO));
		/* The report comes without a table: the caller falls back to a bundle. */
		ck_assert_ptr_null(certs);
		ck_assert_uint_eq(clen, 0);
		ck_assert_uint_eq(rep[0], 0xcd);
		ck_assert_int_eq(fake.calls, 2);
		ck_assert_uint_eq(fake.cmds[0], SNP_GET_EXT_REPORT);
		ck_assert_uint_eq(fake.certs_len_seen[0], 4 * 4096);
		ck_assert_uint_eq(fake.cmds[1], SNP_GET_REPORT);
		/* Early 6.x copied the host's 20 KiB: it stopped at keyd's guard page. */
		if (early)
			ck_assert_uint_eq(fake.early_copied, 4 * 4096);
		free(rep);
		rep = NULL;
		/* The VMPCK is intact: the next request is sent. */
		ck_assert_int_eq(kd_backend_derive(b, &sample_req, &key), 0);
		ck_assert_int_eq(fake.calls, 3);
		kd_secret_free(key);
		key = NULL;
		kd_backend_close(b);
	}
}
END_TEST

/* exitinfo2 0xff: the kernel refused before any firmware call; no VMPCK lost. */
static int einval_ioctl(int fd, unsigned long cmd, void *arg)
{
	struct snp_guest_request_ioctl *io = arg;

	(void)fd;
	(void)cmd;
	fake.calls++;
	io->exitinfo2 = 0xff;
	errno = EINVAL;
	return -1;
}

START_TEST(snp_no_fw_call_keeps_vmpck)
{
	struct kd_backend *b = NULL;
	struct kd_secret *key = NULL;
	int r;

	memset(&fake, 0, sizeof(fake));
	ck_assert_int_eq(kd_snp_backend_open_with(NULL, einval_ioctl, &b), 0);
	r = kd_backend_derive(b, &sample_req, &key);
	ck_assert_int_eq(r, KD_EIO);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(r), "before any firmware call"));
	ck_assert_ptr_null(strstr(kd_err_detail(r), "VMPCK"));
	r = kd_backend_derive(b, &sample_req, &key);
	ck_assert_int_eq(fake.calls, 2); /* sent again: nothing was disabled */
	kd_backend_close(b);

	/* ENOTTY: the kernel already wiped the VMPCK (another process failed). */
	b = open_fake(M_OK);
	fake.vmpck_gone = true;
	r = kd_backend_derive(b, &sample_req, &key);
	ck_assert_int_eq(r, KD_EIO);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(r), "VMPCK is disabled"));
	r = kd_backend_derive(b, &sample_req, &key);
	ck_assert_int_eq(fake.calls, 1);
	kd_backend_close(b);
}
END_TEST

START_TEST(snp_vmpl_above_zero)
{
	char path[] = "/tmp/keyd-test-vmpck-XXXXXX";
	int fd = mkstemp(path);
	struct kd_backend *b = NULL;
	struct kd_secret *key = NULL;
	struct kd_key_req req = sample_req;
	uint8_t data[64] = {0}, *rep = NULL;
	size_t len;
	int r;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "1\n", 2), 2);
	close(fd);
	memset(&fake, 0, sizeof(fake));
	ck_assert_int_eq(kd_snp_backend_open_at(NULL, path, fake_ioctl, &b), 0);
	ck_assert_uint_eq(b->vmpl, 1);
	/* Below the guest's VMPL: refused in one line, nothing sent. */
	req.vmpl = 0;
	r = kd_backend_derive(b, &req, &key);
	ck_assert_int_eq(r, KD_EUNSUPP);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(r), "runs at VMPL 1"));
	ck_assert_ptr_nonnull(strstr(kd_err_detail(r), "vmpck_id"));
	r = kd_backend_report(b, data, 0, &rep, &len, NULL, NULL);
	ck_assert_int_eq(r, KD_EUNSUPP);
	ck_assert_int_eq(fake.calls, 0);
	/* At it: sent with the vmpl field set. */
	req.vmpl = 1;
	ck_assert_int_eq(kd_backend_derive(b, &req, &key), 0);
	ck_assert_uint_eq(kd_get_le32(fake.req + 0x10), 1);
	kd_secret_free(key);
	ck_assert_int_eq(kd_backend_report(b, data, 2, &rep, &len, NULL, NULL), 0);
	ck_assert_uint_eq(kd_get_le32(fake.req + 0x40), 2);
	free(rep);
	kd_backend_close(b);
	/* Not a VMPCK number. */
	fd = open(path, O_WRONLY | O_TRUNC);
	ck_assert_int_eq(write(fd, "7\n", 2), 2);
	close(fd);
	ck_assert_int_eq(kd_snp_backend_open_at(NULL, path, fake_ioctl, &b), KD_EMALFORMED);
	/* Not probed yet (-1) or no parameter: VMPL 0. */
	fd = open(path, O_WRONLY | O_TRUNC);
	ck_assert_int_eq(write(fd, "-1\n", 3), 3);
	close(fd);
	ck_assert_int_eq(kd_snp_backend_open_at(NULL, path, fake_ioctl, &b), 0);
	ck_assert_uint_eq(b->vmpl, 0);
	kd_backend_close(b);
	unlink(path);
	ck_assert_int_eq(kd_snp_backend_open_at(NULL, path, fake_ioctl, &b), 0);
	ck_assert_uint_eq(b->vmpl, 0);
	kd_backend_close(b);
}
END_TEST

/* ------------------------------------------------------------ tsm */

static struct {
	const char *provider; /* NULL: sev_guest */
	const char *floor;    /* NULL: 0 */
	bool race;
	bool no_aux;
	size_t out_len;
	uint8_t inblob[64];
	size_t inblob_len;
	char privlevel[16];
} tsm;

static void put(const char *dir, const char *name, const void *buf, size_t len)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
	fclose(f);
}

static size_t get(const char *dir, const char *name, void *buf, size_t max)
{
	char p[512];
	FILE *f;
	size_t n;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "r");
	ck_assert_ptr_nonnull(f);
	n = fread(buf, 1, max, f);
	fclose(f);
	return n;
}

/* Plays the kernel's configfs-tsm provider in a plain directory. */
static void tsm_hook(const char *dir, int stage, void *ctx)
{
	static const char *const files[] = {"inblob", "privlevel", "outblob", "auxblob",
					    "generation", "provider", "privlevel_floor"};
	uint8_t out[2 * KD_REPORT_SIZE];
	char p[512];

	(void)ctx;
	if (stage == 3) {
		const char *pv = tsm.provider ? tsm.provider : "sev_guest\n";
		const char *fl = tsm.floor ? tsm.floor : "0\n";

		if (*pv)
			put(dir, "provider", pv, strlen(pv));
		put(dir, "privlevel_floor", fl, strlen(fl));
	} else if (stage == 0) {
		tsm.inblob_len = get(dir, "inblob", tsm.inblob, sizeof(tsm.inblob) + 1);
		memset(tsm.privlevel, 0, sizeof(tsm.privlevel));
		get(dir, "privlevel", tsm.privlevel, sizeof(tsm.privlevel) - 1);
		memset(out, 0xcd, sizeof(out));
		put(dir, "outblob", out, tsm.out_len);
		if (!tsm.no_aux)
			put(dir, "auxblob", "\x01\x02\x03", 3);
		put(dir, "generation", "3\n", 2);
	} else if (stage == 1 && tsm.race) {
		put(dir, "generation", "4\n", 2);
	} else if (stage == 2) {
		for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
			snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
			unlink(p);
		}
	}
}

static char tsm_root[64];

static struct kd_backend *open_tsm(void)
{
	struct kd_backend *b = NULL;

	memset(&tsm, 0, sizeof(tsm));
	tsm.out_len = KD_REPORT_SIZE;
	strcpy(tsm_root, "/tmp/keyd-test-tsm-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tsm_root));
	ck_assert_int_eq(kd_tsm_backend_open_with(tsm_root, tsm_hook, NULL, &b), 0);
	ck_assert_str_eq(b->ops->name, "tsm");
	return b;
}

static void close_tsm(struct kd_backend *b)
{
	kd_backend_close(b);
	/* Every report directory was removed again. */
	ck_assert_int_eq(rmdir(tsm_root), 0);
}

START_TEST(tsm_report_and_certs)
{
	struct kd_backend *b = open_tsm();
	uint8_t data[64], *rep = NULL, *certs = NULL;
	size_t len, clen;

	memset(data, 0x42, sizeof(data));
	ck_assert_int_eq(kd_backend_report(b, data, 1, &rep, &len, &certs, &clen), 0);
	ck_assert_uint_eq(tsm.inblob_len, 64);
	ck_assert_mem_eq(tsm.inblob, data, 64);
	ck_assert_str_eq(tsm.privlevel, "1\n");
	ck_assert_uint_eq(len, KD_REPORT_SIZE);
	ck_assert_uint_eq(rep[100], 0xcd);
	ck_assert_uint_eq(clen, 3);
	ck_assert_uint_eq(certs[2], 3);
	free(rep);
	free(certs);
	rep = certs = NULL;
	/* No auxblob: no certificates, not an error. */
	tsm.no_aux = true;
	ck_assert_int_eq(kd_backend_report(b, data, 0, &rep, &len, &certs, &clen), 0);
	ck_assert_ptr_null(certs);
	ck_assert_uint_eq(clen, 0);
	free(rep);
	close_tsm(b);
}
END_TEST

START_TEST(tsm_refusals)
{
	struct kd_backend *b = open_tsm();
	uint8_t data[64] = {0}, *rep = NULL;
	struct kd_secret *key = NULL;
	size_t len;
	int r;

	tsm.race = true;
	r = kd_backend_report(b, data, 0, &rep, &len, NULL, NULL);
	ck_assert_int_eq(r, KD_EIO);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(r), "generation"));
	ck_assert_ptr_null(rep);
	tsm.race = false;
	tsm.out_len = KD_REPORT_SIZE - 1;
	ck_assert_int_eq(kd_backend_report(b, data, 0, &rep, &len, NULL, NULL), KD_EMALFORMED);
	ck_assert_int_eq(kd_backend_report(b, data, 4, &rep, &len, NULL, NULL), KD_EINVAL);
	r = kd_backend_derive(b, &sample_req, &key);
	ck_assert_int_eq(r, KD_ENOTSUP);
	ck_assert_str_eq(kd_err_detail(r), "backend tsm has no derived keys");
	ck_assert_uint_eq(b->caps & KD_CAP_DERIVE, 0);
	close_tsm(b);
}
END_TEST

/* The provider and privlevel_floor are read before privlevel is written. */
START_TEST(tsm_provider_and_floor_first)
{
	struct kd_backend *b = open_tsm();
	uint8_t data[64] = {0}, *rep = NULL;
	size_t len;
	int r;

	tsm.provider = "tdx_guest\n";
	r = kd_backend_report(b, data, 0, &rep, &len, NULL, NULL);
	ck_assert_int_eq(r, KD_EUNSUPP);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(r), "provider is 'tdx_guest', not sev_guest"));
	ck_assert_uint_eq(tsm.inblob_len, 0); /* stage 0 never came: nothing written */
	tsm.provider = ""; /* not a configfs-tsm report directory at all */
	r = kd_backend_report(b, data, 0, &rep, &len, NULL, NULL);
	ck_assert_int_eq(r, KD_EUNSUPP);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(r), "/provider: missing (not a configfs-tsm"));
	ck_assert_uint_eq(tsm.inblob_len, 0);
	tsm.provider = NULL;
	tsm.floor = "2\n";
	r = kd_backend_report(b, data, 1, &rep, &len, NULL, NULL);
	ck_assert_int_eq(r, KD_EUNSUPP);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(r), "runs at VMPL 2"));
	ck_assert_ptr_nonnull(strstr(kd_err_detail(r), "privlevel_floor"));
	ck_assert_uint_eq(tsm.inblob_len, 0);
	ck_assert_uint_eq(b->vmpl, 2);
	ck_assert_int_eq(kd_backend_report(b, data, 2, &rep, &len, NULL, NULL), 0);
	ck_assert_str_eq(tsm.privlevel, "2\n");
	free(rep);
	close_tsm(b);
}
END_TEST

/* ------------------------------------------------------------ selection */

START_TEST(backend_selection)
{
	struct kd_backend_opts o = {.sev_guest_path = "/nonexistent/sev-guest",
				    .tsm_path = "/nonexistent/tsm"};
	struct kd_backend *b = NULL;
	char dir[] = "/tmp/keyd-test-sel-XXXXXX";

	unsetenv("KEYD_SIM");
	/* Nothing present: not found, and never the simulator. */
	ck_assert_int_eq(kd_backend_open(&o, &b), KD_ENOENT);
	ck_assert_ptr_null(b);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	o.tsm_path = dir;
	ck_assert_int_eq(kd_backend_open(&o, &b), 0);
	ck_assert_str_eq(b->ops->name, "tsm");
	kd_backend_close(b);
	/* snp wins when /dev/sev-guest exists. */
	o.sev_guest_path = "/dev/null";
	ck_assert_int_eq(kd_backend_open(&o, &b), 0);
	ck_assert_str_eq(b->ops->name, "snp");
	kd_backend_close(b);
	/* Explicit names. */
	o.name = "tdx";
	ck_assert_int_eq(kd_backend_open(&o, &b), KD_EINVAL);
	o.name = "sim";
	ck_assert_int_eq(kd_backend_open(&o, &b), KD_EINVAL); /* no address */
	o.sim_addr = "unix:/nonexistent/keyd-sim.sock";
	ck_assert_int_eq(kd_backend_open(&o, &b), KD_EIO);
	/* KEYD_SIM set is an explicit choice of the simulator. */
	o.name = NULL;
	o.sim_addr = NULL;
	setenv("KEYD_SIM", "unix:/nonexistent/keyd-sim.sock", 1);
	ck_assert_int_eq(kd_backend_open(&o, &b), KD_EIO);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EIO), "keyd-simfw"));
	/* ...unless another backend is named. */
	o.name = "tsm";
	ck_assert_int_eq(kd_backend_open(&o, &b), 0);
	ck_assert_str_eq(b->ops->name, "tsm");
	kd_backend_close(b);
	unsetenv("KEYD_SIM");
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* ------------------------------------------------------------ HKDF */

/*
 * Known answers computed once with the OpenSSL 3.0 CLI:
 *   openssl kdf -keylen 42 -kdfopt digest:SHA384 \
 *     -kdfopt hexkey:0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b \
 *     -kdfopt hexsalt:000102030405060708090a0b0c \
 *     -kdfopt hexinfo:f0f1f2f3f4f5f6f7f8f9 HKDF
 * (the inputs of RFC 5869 test case 1, with SHA-384), and
 *   openssl kdf -keylen 32 -kdfopt digest:SHA384 \
 *     -kdfopt hexkey:0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b -kdfopt info:disk HKDF
 * (an empty salt, as `keyd derive` uses).
 */
START_TEST(hkdf_sha384_known_answers)
{
	static const uint8_t okm1[42] = {
		0x9b, 0x50, 0x97, 0xa8, 0x60, 0x38, 0xb8, 0x05, 0x30, 0x90, 0x76, 0xa4, 0x4b, 0x3a,
		0x9f, 0x38, 0x06, 0x3e, 0x25, 0xb5, 0x16, 0xdc, 0xbf, 0x36, 0x9f, 0x39, 0x4c, 0xfa,
		0xb4, 0x36, 0x85, 0xf7, 0x48, 0xb6, 0x45, 0x77, 0x63, 0xe4, 0xf0, 0x20, 0x4f, 0xc5,
	};
	static const uint8_t okm2[32] = {
		0x23, 0x01, 0x3f, 0x94, 0x66, 0x2b, 0x53, 0xd5, 0xc7, 0xe4, 0x01, 0x83, 0x6d, 0xe4,
		0x34, 0xd2, 0x4e, 0x23, 0x50, 0xad, 0x35, 0xfe, 0x94, 0x1b, 0x0d, 0x66, 0xfa, 0x6a,
		0xa8, 0xe9, 0xff, 0x65,
	};
	uint8_t ikm_b[22], salt[13], info[10];
	struct kd_secret *ikm = NULL, *out = NULL;

	memset(ikm_b, 0x0b, sizeof(ikm_b));
	for (int i = 0; i < 13; i++)
		salt[i] = (uint8_t)i;
	for (int i = 0; i < 10; i++)
		info[i] = (uint8_t)(0xf0 + i);
	ck_assert_int_eq(kd_secret_dup(ikm_b, sizeof(ikm_b), &ikm), 0);
	ck_assert_int_eq(kd_hkdf_bin(ikm, salt, sizeof(salt), info, sizeof(info), 42, &out), 0);
	ck_assert_uint_eq(out->len, 42);
	ck_assert_mem_eq(out->data, okm1, 42);
	kd_secret_free(out);
	ck_assert_int_eq(kd_hkdf(ikm, "", 0, "disk", 32, &out), 0);
	ck_assert_mem_eq(out->data, okm2, 32);
	ck_assert(kd_secret_is_locked(out));
	kd_secret_free(out);
	/* Another label gives another key. */
	ck_assert_int_eq(kd_hkdf(ikm, "", 0, "disk2", 32, &out), 0);
	ck_assert(memcmp(out->data, okm2, 32) != 0);
	kd_secret_free(out);
	ck_assert_int_eq(kd_hkdf(ikm, "", 0, "disk", 0, &out), KD_EINVAL);
	kd_secret_free(ikm);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("backend");
	TCase *t = tcase_create("backend");
	SRunner *sr;
	int failed;

	tcase_add_test(t, snp_derive_exact_bytes);
	tcase_add_test(t, snp_transport_error_no_retry);
	tcase_add_test(t, snp_busy_is_an_error);
	tcase_add_test(t, snp_status16_with_rc0);
	tcase_add_test(t, snp_invalid_request_not_sent);
	tcase_add_test(t, snp_report_exact_bytes);
	tcase_add_test(t, snp_report_bad_responses);
	tcase_add_test(t, snp_ext_report_fits);
	tcase_add_test(t, snp_ext_report_16k_cap);
	tcase_add_test(t, snp_no_fw_call_keeps_vmpck);
	tcase_add_test(t, snp_vmpl_above_zero);
	tcase_add_test(t, tsm_provider_and_floor_first);
	tcase_add_test(t, tsm_report_and_certs);
	tcase_add_test(t, tsm_refusals);
	tcase_add_test(t, backend_selection);
	tcase_add_test(t, hkdf_sha384_known_answers);
	suite_add_tcase(s, t);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
