/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The configfs-tsm backend (Linux >= 6.7, docs/snp-facts.md §1.6):
 * reports and the host's certificate table (auxblob). It has no derived
 * keys, so it does not claim KD_CAP_DERIVE.
 *
 * Before anything is written, the directory's `provider` must be sev_guest
 * (on a TDX or other guest the SNP attributes are missing or mean something
 * else, and the error should say so rather than name `privlevel`), and
 * `privlevel_floor` -- the VMPL of the VMPCK the kernel uses, set from
 * vmpck_id in sev_guest_probe() -- bounds the privlevel: tsm.c's
 * privlevel_store() answers a lower one with a bare EINVAL
 * (drivers/virt/coco/tsm.c; Documentation/ABI/testing/configfs-tsm).
 *
 * One report directory per request, named uniquely, removed afterwards:
 * configfs report directories are shared state, and `generation` (bumped
 * by every write) is compared before and after reading so that a report
 * produced for another writer's inblob is never returned as ours.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "backend/internal.h"
#include "keyd/error.h"
#include "keyd/report.h"
#include "keyd/util.h"

#define TSM_AUX_MAX (64u * 1024u)

struct tsm_priv {
	char *root;
	kd_tsm_hook_fn hook;
	void *hook_ctx;
};

static int attr_path(const char *dir, const char *name, char *out)
{
	if (snprintf(out, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX)
		return kd_fail(KD_EINVAL, "configfs-tsm path too long");
	return 0;
}

static int write_attr(const char *dir, const char *name, const void *buf, size_t len)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd, r;

	if ((r = attr_path(dir, name, path)) < 0)
		return r;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return kd_fail(KD_EIO, "cannot open %s: %s", path, strerror(errno));
	/* One write(2): configfs binary attributes take the blob in one go. */
	n = write(fd, buf, len);
	if (n != (ssize_t)len) {
		r = kd_fail(KD_EIO, "cannot write %s: %s", path, n < 0 ? strerror(errno) : "short write");
		close(fd);
		return r;
	}
	if (close(fd) < 0)
		return kd_fail(KD_EIO, "cannot write %s: %s", path, strerror(errno));
	return 0;
}

static int read_attr(const char *dir, const char *name, size_t max, uint8_t **ret, size_t *ret_len)
{
	char path[PATH_MAX];
	int r;

	if ((r = attr_path(dir, name, path)) < 0)
		return r;
	return kd_read_file(path, max, ret, ret_len);
}

static int read_generation(const char *dir, uint64_t *ret)
{
	uint8_t *buf = NULL;
	size_t len;
	int r = read_attr(dir, "generation", 64, &buf, &len);

	if (r < 0)
		return r;
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		buf[--len] = '\0';
	r = kd_parse_u64((const char *)buf, UINT64_MAX, ret);
	free(buf);
	return r < 0 ? kd_fail(KD_EMALFORMED, "configfs-tsm generation is not a number") : 0;
}

static int read_line(const char *dir, const char *name, char *out, size_t max)
{
	uint8_t *buf = NULL;
	size_t len;
	int r = read_attr(dir, name, max - 1, &buf, &len);

	if (r < 0)
		return r;
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		len--;
	memcpy(out, buf, len);
	out[len] = '\0';
	free(buf);
	return 0;
}

/* provider first, then privlevel_floor: both before any write. */
static int check_provider(struct kd_backend *b, const char *dir, uint32_t vmpl)
{
	char prov[64], floor_s[16], why[200];
	uint64_t floor;
	int r;

	if ((r = read_line(dir, "provider", prov, sizeof(prov))) < 0) {
		snprintf(why, sizeof(why), "%s", r == KD_ENOENT ? "missing (not a configfs-tsm report "
								  "directory)" : kd_err_detail(r));
		return kd_fail(r == KD_ENOENT ? KD_EUNSUPP : r, "%s/provider: %s", dir, why);
	}
	if (strcmp(prov, "sev_guest"))
		return kd_fail(KD_EUNSUPP, "configfs-tsm provider is '%s', not sev_guest (this is "
					   "not an SEV-SNP guest)", prov);
	if ((r = read_line(dir, "privlevel_floor", floor_s, sizeof(floor_s))) < 0) {
		snprintf(why, sizeof(why), "%s", r == KD_ENOENT ? "missing" : kd_err_detail(r));
		return kd_fail(r == KD_ENOENT ? KD_EUNSUPP : r, "%s/privlevel_floor: %s", dir, why);
	}
	if (kd_parse_u64(floor_s, 3, &floor) < 0)
		return kd_fail(KD_EMALFORMED, "configfs-tsm privlevel_floor '%s' is not 0..3", floor_s);
	b->vmpl = (uint32_t)floor;
	snprintf(b->vmpl_source, sizeof(b->vmpl_source), "configfs-tsm privlevel_floor %u",
		 (unsigned)floor);
	if (vmpl < floor)
		return kd_fail(KD_EUNSUPP, "report for VMPL %u refused: this guest runs at VMPL %u "
					   "(%s), and the AMD-SP answers no request below it", vmpl,
			       b->vmpl, b->vmpl_source);
	return 0;
}

static int tsm_report(struct kd_backend *b, const uint8_t report_data[64], uint32_t vmpl,
		      uint8_t **ret_report, size_t *ret_len, uint8_t **ret_certs, size_t *ret_certs_len)
{
	struct tsm_priv *p = b->priv;
	char dir[PATH_MAX], lvl[16], hex[17];
	uint8_t rnd[8], *out = NULL, *aux = NULL;
	size_t out_len = 0, aux_len = 0;
	uint64_t g1, g2;
	int r;

	if (vmpl > 3)
		return kd_fail(KD_EINVAL, "report VMPL %u is above 3", vmpl);
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return kd_fail(KD_ECRYPTO, "OpenSSL: RAND_bytes failed");
	kd_hex(rnd, sizeof(rnd), hex);
	if (snprintf(dir, sizeof(dir), "%s/keyd-%d-%s", p->root, (int)getpid(), hex) >=
	    (int)sizeof(dir))
		return kd_fail(KD_EINVAL, "configfs-tsm path too long");
	if (mkdir(dir, 0700) < 0)
		return kd_fail(KD_EIO, "cannot create %s: %s", dir, strerror(errno));

	if (p->hook)
		p->hook(dir, 3, p->hook_ctx);
	if ((r = check_provider(b, dir, vmpl)) < 0)
		goto out;
	/* The sev_guest provider refuses any inblob that is not 64 bytes. */
	if ((r = write_attr(dir, "inblob", report_data, 64)) < 0)
		goto out;
	snprintf(lvl, sizeof(lvl), "%u\n", vmpl);
	if ((r = write_attr(dir, "privlevel", lvl, strlen(lvl))) < 0)
		goto out;
	if (p->hook)
		p->hook(dir, 0, p->hook_ctx);
	if ((r = read_generation(dir, &g1)) < 0)
		goto out;
	if ((r = read_attr(dir, "outblob", 2 * KD_REPORT_SIZE, &out, &out_len)) < 0)
		goto out;
	if (out_len != KD_REPORT_SIZE) {
		r = kd_fail(KD_EMALFORMED, "configfs-tsm outblob is %zu bytes, not %u", out_len,
			    KD_REPORT_SIZE);
		goto out;
	}
	if (ret_certs) {
		r = read_attr(dir, "auxblob", TSM_AUX_MAX, &aux, &aux_len);
		if (r == KD_ENOENT) {
			kd_err_clear();
			r = 0;
		} else if (r < 0) {
			goto out;
		}
	}
	if (p->hook)
		p->hook(dir, 1, p->hook_ctx);
	if ((r = read_generation(dir, &g2)) < 0)
		goto out;
	if (g1 != g2) {
		r = kd_fail(KD_EIO, "configfs-tsm report changed while it was read (generation %llu "
				    "-> %llu): another writer raced", (unsigned long long)g1,
			    (unsigned long long)g2);
		goto out;
	}
	if (ret_certs) {
		if (aux_len == 0) {
			free(aux);
			aux = NULL;
		}
		*ret_certs = aux;
		*ret_certs_len = aux_len;
		aux = NULL;
	}
	*ret_report = out;
	*ret_len = out_len;
	out = NULL;
out:
	free(out);
	free(aux);
	if (p->hook)
		p->hook(dir, 2, p->hook_ctx);
	if (rmdir(dir) < 0 && r == 0)
		r = kd_fail(KD_EIO, "cannot remove %s: %s", dir, strerror(errno));
	return r;
}

static void tsm_close(struct kd_backend *b)
{
	struct tsm_priv *p = b->priv;

	if (p)
		free(p->root);
	free(p);
	free(b);
}

static const struct kd_backend_ops tsm_ops = {
	.name = "tsm",
	.derive = NULL,
	.report = tsm_report,
	.close = tsm_close,
};

int kd_tsm_backend_open_with(const char *root, kd_tsm_hook_fn hook, void *ctx,
			     struct kd_backend **ret)
{
	struct kd_backend *b;
	struct tsm_priv *p;
	struct stat st;

	if (stat(root, &st) < 0 || !S_ISDIR(st.st_mode))
		return kd_fail(KD_ENOENT, "configfs-tsm report directory %s not found", root);
	b = calloc(1, sizeof(*b));
	p = calloc(1, sizeof(*p));
	if (!b || !p || !(p->root = strdup(root))) {
		free(b);
		free(p);
		return kd_fail(KD_ENOMEM, "out of memory (configfs-tsm backend)");
	}
	p->hook = hook;
	p->hook_ctx = ctx;
	b->ops = &tsm_ops;
	b->caps = KD_CAP_REPORT | KD_CAP_CERTS;
	b->priv = p;
	*ret = b;
	return 0;
}

int kd_backend_tsm_open(const char *root, struct kd_backend **ret)
{
	return kd_tsm_backend_open_with(root, NULL, NULL, ret);
}
