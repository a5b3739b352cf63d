/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SEV-SNP launch digest with the semantics of sev-snp-measure 0.0.13, mode
 * snp (docs/snp-facts.md §4): OVMF pages, SEV metadata sections, the SEV hashes
 * table for direct kernel boot, one VMSA per vCPU.
 *
 * The digest is a chain: LD' = SHA-384(PAGE_INFO(LD, contents, type, gpa)),
 * exactly what SNP_LAUNCH_UPDATE makes the AMD-SP compute.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "keyd/cursor.h"
#include "keyd/error.h"
#include "keyd/measure.h"
#include "keyd/util.h"
#include "measure/internal.h"

/* SNP spec, PAGE_INFO page types. */
enum {
	PT_NORMAL = 1,
	PT_VMSA = 2,
	PT_ZERO = 3,
	PT_UNMEASURED = 4,
	PT_SECRETS = 5,
	PT_CPUID = 6,
};

#define PAGE_INFO_LEN 0x70u
/* The VMSA is recorded at GPA -1, page-aligned, bits above 47 cleared. */
#define VMSA_GPA UINT64_C(0xFFFFFFFFF000)
#define BSP_EIP 0xFFFFFFF0u

/* SEV_HASH_TABLE as QEMU builds it: header + 3 entries, padded to 16. */
#define HT_ENTRY_LEN (16u + 2u + 32u)
#define HT_LEN (16u + 2u + 3u * HT_ENTRY_LEN)
#define HT_PADDED ((HT_LEN + 15u) & ~15u)

#define STREAM_CHUNK (1u << 20)

static const uint8_t guid_ht_header[16] =
	KD_GUID_LE(0x9438d606, 0x4f22, 0x4cc9, 0xb4, 0x79, 0xa7, 0x93, 0xd4, 0x11, 0xfd, 0x21);
static const uint8_t guid_ht_cmdline[16] =
	KD_GUID_LE(0x97d02dd8, 0xbd20, 0x4c94, 0xaa, 0x78, 0xe7, 0x71, 0x4d, 0x36, 0xab, 0x2a);
static const uint8_t guid_ht_initrd[16] =
	KD_GUID_LE(0x44baf731, 0x3a2f, 0x4bd7, 0x9a, 0xf1, 0x41, 0xe2, 0x91, 0x69, 0x78, 0x1d);
static const uint8_t guid_ht_kernel[16] =
	KD_GUID_LE(0x4de79437, 0xabd2, 0x427f, 0xb8, 0x35, 0xd5, 0xb1, 0x72, 0xd2, 0x04, 0x5b);

struct gctx {
	uint8_t ld[KD_LD_SIZE];
	EVP_MD_CTX *ctx;
	EVP_MD *sha384;
	kd_measure_trace_fn trace;
	void *arg;
};

static void gctx_free(struct gctx *g)
{
	EVP_MD_CTX_free(g->ctx);
	EVP_MD_free(g->sha384);
	g->ctx = NULL;
	g->sha384 = NULL;
}

static int gctx_init(struct gctx *g, const uint8_t *seed, kd_measure_trace_fn trace, void *arg)
{
	memset(g, 0, sizeof(*g));
	if (seed)
		memcpy(g->ld, seed, KD_LD_SIZE);
	g->trace = trace;
	g->arg = arg;
	/* Fetch once: an implicit fetch per page would dominate the cost. */
	g->sha384 = EVP_MD_fetch(NULL, "SHA384", NULL);
	g->ctx = EVP_MD_CTX_new();
	if (!g->sha384 || !g->ctx) {
		gctx_free(g);
		return kd_fail(KD_ECRYPTO, "cannot set up SHA-384");
	}
	return 0;
}

static int sha384(struct gctx *g, const void *buf, size_t len, uint8_t out[KD_LD_SIZE])
{
	unsigned int n = 0;

	if (EVP_DigestInit_ex2(g->ctx, g->sha384, NULL) != 1 ||
	    EVP_DigestUpdate(g->ctx, buf, len) != 1 || EVP_DigestFinal_ex(g->ctx, out, &n) != 1 ||
	    n != KD_LD_SIZE)
		return kd_fail(KD_ECRYPTO, "SHA-384 failed");
	return 0;
}

static int gctx_update(struct gctx *g, unsigned type, uint64_t gpa, const uint8_t contents[KD_LD_SIZE])
{
	uint8_t pi[PAGE_INFO_LEN];
	int err;

	/* PAGE_INFO, SNP spec Table 67: IMI and VMPL permissions all zero. */
	memset(pi, 0, sizeof(pi));
	memcpy(pi, g->ld, KD_LD_SIZE);
	memcpy(pi + 0x30, contents, KD_LD_SIZE);
	kd_put_le16(pi + 0x60, PAGE_INFO_LEN);
	pi[0x62] = (uint8_t)type;
	kd_put_le64(pi + 0x68, gpa);
	err = sha384(g, pi, sizeof(pi), g->ld);
	if (err < 0)
		return err;
	if (g->trace)
		g->trace(g->arg, type, gpa, contents, g->ld);
	return 0;
}

static int gctx_normal_page(struct gctx *g, uint64_t gpa, const uint8_t *page)
{
	uint8_t h[KD_LD_SIZE];
	int err = sha384(g, page, KD_PAGE_SIZE, h);

	return err < 0 ? err : gctx_update(g, PT_NORMAL, gpa, h);
}

/* Zero, unmeasured, secrets and CPUID pages carry no contents digest. */
static int gctx_empty_pages(struct gctx *g, unsigned type, uint64_t gpa, uint64_t size)
{
	static const uint8_t zeros[KD_LD_SIZE];

	for (uint64_t off = 0; off < size; off += KD_PAGE_SIZE) {
		int err = gctx_update(g, type, gpa + off, zeros);

		if (err < 0)
			return err;
	}
	return 0;
}

/* SHA-256 of a file, read in chunks so a large initrd is never held whole. */
static int sha256_file(const char *path, uint8_t out[32])
{
	_kd_free_ uint8_t *buf = NULL;
	EVP_MD_CTX *ctx = NULL;
	unsigned int n = 0;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kd_fail(errno == ENOENT ? KD_ENOENT : KD_EIO, "cannot open %s: %s", path,
			       strerror(errno));
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	buf = malloc(STREAM_CHUNK);
	ctx = EVP_MD_CTX_new();
	if (!buf || !ctx) {
		err = kd_fail(KD_ENOMEM, "out of memory (hashing %s)", path);
		goto out;
	}
	if (EVP_DigestInit_ex2(ctx, EVP_sha256(), NULL) != 1) {
		err = kd_fail(KD_ECRYPTO, "SHA-256 failed");
		goto out;
	}
	for (;;) {
		ssize_t r = read(fd, buf, STREAM_CHUNK);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = kd_fail(KD_EIO, "cannot read %s: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		if (EVP_DigestUpdate(ctx, buf, (size_t)r) != 1) {
			err = kd_fail(KD_ECRYPTO, "SHA-256 failed");
			goto out;
		}
	}
	if (EVP_DigestFinal_ex(ctx, out, &n) != 1 || n != 32)
		err = kd_fail(KD_ECRYPTO, "SHA-256 failed");
out:
	EVP_MD_CTX_free(ctx);
	close(fd);
	return err;
}

static void ht_entry(uint8_t *p, const uint8_t guid[16], const uint8_t hash[32])
{
	memcpy(p, guid, 16);
	kd_put_le16(p + 16, HT_ENTRY_LEN);
	memcpy(p + 18, hash, 32);
}

/* The kernel-hashes page: zeros with the SEV hashes table at its GPA's offset. */
static int build_hashes_page(const struct kd_measure_params *p, const struct kd_ovmf_info *ovmf,
			     uint8_t page[KD_PAGE_SIZE])
{
	uint8_t kh[32], ih[32], ch[32];
	const char *cmd = p->append ? p->append : "";
	size_t off = ovmf->hash_table_gpa & (KD_PAGE_SIZE - 1);
	int err;

	if (!ovmf->has_hash_table)
		return kd_fail(KD_EMALFORMED,
			       "OVMF has a kernel-hashes section but no SEV hash table footer entry");
	if (off > KD_PAGE_SIZE - HT_PADDED)
		return kd_fail(KD_EMALFORMED,
			       "SEV hash table at 0x%x does not fit in its page",
			       ovmf->hash_table_gpa);
	err = sha256_file(p->kernel_path, kh);
	if (err < 0)
		return err;
	if (p->initrd_path)
		err = sha256_file(p->initrd_path, ih);
	else
		err = EVP_Digest("", 0, ih, NULL, EVP_sha256(), NULL) == 1
			      ? 0
			      : kd_fail(KD_ECRYPTO, "SHA-256 of the empty initrd failed");
	if (err < 0)
		return err;
	/* QEMU hashes the command line with its terminating NUL. */
	if (EVP_Digest(cmd, strlen(cmd) + 1, ch, NULL, EVP_sha256(), NULL) != 1)
		return kd_fail(KD_ECRYPTO, "SHA-256 failed");

	memset(page, 0, KD_PAGE_SIZE);
	memcpy(page + off, guid_ht_header, 16);
	kd_put_le16(page + off + 16, HT_LEN);
	ht_entry(page + off + 18, guid_ht_cmdline, ch);
	ht_entry(page + off + 18 + HT_ENTRY_LEN, guid_ht_initrd, ih);
	ht_entry(page + off + 18 + 2 * HT_ENTRY_LEN, guid_ht_kernel, kh);
	return 0;
}

static void vmsa_seg(uint8_t *p, uint16_t sel, uint16_t attr, uint32_t limit, uint64_t base)
{
	kd_put_le16(p, sel);
	kd_put_le16(p + 2, attr);
	kd_put_le32(p + 4, limit);
	kd_put_le64(p + 8, base);
}

/*
 * Initial VMSA of a vCPU as KVM (host >= 6.10) creates it for SNP, with the
 * EC2 and GCE variants that sev-snp-measure 0.0.13 models.
 */
static void build_vmsa(uint8_t page[KD_PAGE_SIZE], uint32_t eip, const struct kd_measure_params *p)
{
	uint16_t cs_attr = 0x9b, ss_attr = 0x93, tr_attr = 0x8b;
	uint64_t rdx = p->vcpu_sig, g_pat = UINT64_C(0x0007040600070406);
	uint32_t mxcsr = 0x1f80;
	uint16_t fcw = 0x37f;

	switch (p->vmm) {
	case KD_VMM_EC2:
		cs_attr = eip == BSP_EIP ? 0x9a : 0x9b;
		ss_attr = 0x92;
		tr_attr = 0x83;
		rdx = 0x600;
		mxcsr = 0;
		fcw = 0;
		break;
	case KD_VMM_GCE:
		rdx = 0x600;
		g_pat = 0x00070106;
		mxcsr = 0;
		fcw = 0;
		break;
	case KD_VMM_QEMU:
		break;
	}
	memset(page, 0, KD_PAGE_SIZE);
	vmsa_seg(page + 0x00, 0, 0x93, 0xffff, 0);                     /* es */
	vmsa_seg(page + 0x10, 0xf000, cs_attr, 0xffff, eip & 0xffff0000u); /* cs */
	vmsa_seg(page + 0x20, 0, ss_attr, 0xffff, 0);                  /* ss */
	vmsa_seg(page + 0x30, 0, 0x93, 0xffff, 0);                     /* ds */
	vmsa_seg(page + 0x40, 0, 0x93, 0xffff, 0);                     /* fs */
	vmsa_seg(page + 0x50, 0, 0x93, 0xffff, 0);                     /* gs */
	vmsa_seg(page + 0x60, 0, 0, 0xffff, 0);                        /* gdtr */
	vmsa_seg(page + 0x70, 0, 0x82, 0xffff, 0);                     /* ldtr */
	vmsa_seg(page + 0x80, 0, 0, 0xffff, 0);                        /* idtr */
	vmsa_seg(page + 0x90, 0, tr_attr, 0xffff, 0);                  /* tr */
	kd_put_le64(page + 0xd0, 0x1000);     /* efer: KVM sets SVME */
	kd_put_le64(page + 0x148, 0x40);      /* cr4: MCE */
	kd_put_le64(page + 0x158, 0x10);      /* cr0: ET */
	kd_put_le64(page + 0x160, 0x400);     /* dr7 */
	kd_put_le64(page + 0x168, 0xffff0ff0);/* dr6 */
	kd_put_le64(page + 0x170, 0x2);       /* rflags */
	kd_put_le64(page + 0x178, eip & 0xffffu);
	kd_put_le64(page + 0x268, g_pat);
	kd_put_le64(page + 0x310, rdx);
	kd_put_le64(page + 0x3b0, p->guest_features);
	kd_put_le64(page + 0x3e8, 0x1);       /* xcr0 */
	kd_put_le32(page + 0x408, mxcsr);
	kd_put_le16(page + 0x410, fcw);
}

static int measure_ovmf_pages(struct gctx *g, const uint8_t *img, size_t len, uint64_t gpa)
{
	for (size_t off = 0; off < len; off += KD_PAGE_SIZE) {
		int err = gctx_normal_page(g, gpa + off, img + off);

		if (err < 0)
			return err;
	}
	return 0;
}

static int measure_section(struct gctx *g, const struct kd_ovmf_section *s,
			   const struct kd_measure_params *p, const uint8_t *hashes_page)
{
	switch (s->type) {
	case KD_OVMF_SEC_MEM:
		/* GCE does not pre-validate SEC memory through LAUNCH_UPDATE ZERO. */
		return gctx_empty_pages(g, p->vmm == KD_VMM_GCE ? PT_UNMEASURED : PT_ZERO, s->gpa,
					s->size);
	case KD_OVMF_SECRETS:
		return gctx_empty_pages(g, PT_SECRETS, s->gpa, KD_PAGE_SIZE);
	case KD_OVMF_CPUID:
		/* EC2 adds its CPUID pages after every other section. */
		if (p->vmm == KD_VMM_EC2)
			return 0;
		return gctx_empty_pages(g, PT_CPUID, s->gpa, KD_PAGE_SIZE);
	case KD_OVMF_SVSM_CAA:
		return gctx_empty_pages(g, PT_ZERO, s->gpa, s->size);
	case KD_OVMF_KERNEL_HASHES:
		if (hashes_page)
			return gctx_normal_page(g, s->gpa, hashes_page);
		return gctx_empty_pages(g, PT_ZERO, s->gpa, s->size);
	default:
		return kd_fail(KD_EMALFORMED, "SEV metadata section type 0x%x", s->type);
	}
}

static int load_ovmf(const char *path, uint8_t **ret, size_t *ret_len, struct kd_ovmf_info *info)
{
	_kd_free_ uint8_t *img = NULL;
	size_t len = 0;
	int err;

	if (!path)
		return kd_fail(KD_EINVAL, "no OVMF image given");
	err = kd_read_file(path, KD_OVMF_MAX_SIZE, &img, &len);
	if (err < 0)
		return err;
	err = kd_ovmf_parse(img, len, info);
	if (err < 0)
		return err;
	*ret = img;
	img = NULL;
	*ret_len = len;
	return 0;
}

static int check_params(const struct kd_measure_params *p, const struct kd_ovmf_info *ovmf)
{
	int has_kh = 0;

	/* QEMU's x86 ceiling; bounds the VMSA loop for any caller. */
	if (p->vcpus < 1 || p->vcpus > KD_MEASURE_MAX_VCPUS)
		return kd_fail(KD_EINVAL, "vCPU count %u is not in 1..%u", p->vcpus,
			       KD_MEASURE_MAX_VCPUS);
	if (p->vmm != KD_VMM_QEMU && p->vmm != KD_VMM_EC2 && p->vmm != KD_VMM_GCE)
		return kd_fail(KD_EINVAL, "unknown VMM type %d", (int)p->vmm);
	/* sev-snp-measure would drop these silently; a caller who passes them
	 * believes they are measured, so refuse rather than mislead. */
	if (!p->kernel_path && (p->initrd_path || (p->append && *p->append)))
		return kd_fail(KD_EINVAL, "initrd or command line given without a kernel");
	for (unsigned i = 0; i < ovmf->n_sections; i++)
		if (ovmf->sections[i].type == KD_OVMF_KERNEL_HASHES)
			has_kh = 1;
	if (p->kernel_path && !has_kh)
		return kd_fail(KD_EINVAL,
			       "kernel given, but the OVMF has no SNP_KERNEL_HASHES metadata section "
			       "(use an AmdSev build)");
	return 0;
}

int kd_measure_traced(const struct kd_measure_params *p, uint8_t out[KD_LD_SIZE],
		      kd_measure_trace_fn trace, void *arg)
{
	struct kd_ovmf_info ovmf;
	_kd_free_ uint8_t *img = NULL;
	_kd_free_ uint8_t *hpage = NULL;
	_kd_free_ uint8_t *vmsa = NULL;
	struct gctx g;
	size_t len = 0;
	int err;

	if (!p || !out)
		return kd_fail(KD_EINVAL, "kd_measure: missing argument");
	err = load_ovmf(p->ovmf_path, &img, &len, &ovmf);
	if (err < 0)
		return err;
	err = check_params(p, &ovmf);
	if (err < 0)
		return err;
	if (p->kernel_path) {
		hpage = malloc(KD_PAGE_SIZE);
		if (!hpage)
			return kd_fail(KD_ENOMEM, "out of memory (hashes page)");
		err = build_hashes_page(p, &ovmf, hpage);
		if (err < 0)
			return err;
	}
	vmsa = malloc(KD_PAGE_SIZE);
	if (!vmsa)
		return kd_fail(KD_ENOMEM, "out of memory (VMSA page)");

	err = gctx_init(&g, p->ovmf_hash, trace, arg);
	if (err < 0)
		return err;
	if (!p->ovmf_hash && (err = measure_ovmf_pages(&g, img, len, ovmf.gpa)) < 0)
		goto out;
	for (unsigned i = 0; i < ovmf.n_sections; i++)
		if ((err = measure_section(&g, &ovmf.sections[i], p, hpage)) < 0)
			goto out;
	for (unsigned i = 0; p->vmm == KD_VMM_EC2 && i < ovmf.n_sections; i++)
		if (ovmf.sections[i].type == KD_OVMF_CPUID &&
		    (err = gctx_empty_pages(&g, PT_CPUID, ovmf.sections[i].gpa, KD_PAGE_SIZE)) < 0)
			goto out;
	for (unsigned i = 0; i < p->vcpus; i++) {
		uint8_t h[KD_LD_SIZE];

		/* The BSP starts at the reset vector; APs at OVMF's SEV-ES AP entry. */
		if (i <= 1)
			build_vmsa(vmsa, i == 0 ? BSP_EIP : ovmf.reset_eip, p);
		if ((err = sha384(&g, vmsa, KD_PAGE_SIZE, h)) < 0 ||
		    (err = gctx_update(&g, PT_VMSA, VMSA_GPA, h)) < 0)
			goto out;
	}
	memcpy(out, g.ld, KD_LD_SIZE);
	err = 0;
out:
	gctx_free(&g);
	return err;
}

int kd_measure(const struct kd_measure_params *p, uint8_t out[KD_LD_SIZE])
{
	return kd_measure_traced(p, out, NULL, NULL);
}

int kd_measure_ovmf_hash(const char *ovmf_path, uint8_t out[KD_LD_SIZE])
{
	struct kd_ovmf_info ovmf;
	_kd_free_ uint8_t *img = NULL;
	struct gctx g;
	size_t len = 0;
	int err;

	err = load_ovmf(ovmf_path, &img, &len, &ovmf);
	if (err < 0)
		return err;
	err = gctx_init(&g, NULL, NULL, NULL);
	if (err < 0)
		return err;
	err = measure_ovmf_pages(&g, img, len, ovmf.gpa);
	if (err == 0)
		memcpy(out, g.ld, KD_LD_SIZE);
	gctx_free(&g);
	return err;
}

uint32_t kd_vcpu_sig(unsigned family, unsigned model, unsigned stepping)
{
	unsigned base_family = family > 0xf ? 0xf : family;
	unsigned ext_family = family > 0xf ? family - 0xf : 0;

	return (uint32_t)(((ext_family & 0xffu) << 20) | (((model >> 4) & 0xfu) << 16) |
			  ((base_family & 0xfu) << 8) | ((model & 0xfu) << 4) | (stepping & 0xfu));
}

static const struct {
	const char *name;
	uint8_t family, model, stepping;
} vcpu_types[] = {
	{"EPYC", 23, 1, 2},
	{"EPYC-v1", 23, 1, 2},
	{"EPYC-v2", 23, 1, 2},
	{"EPYC-IBPB", 23, 1, 2},
	{"EPYC-v3", 23, 1, 2},
	{"EPYC-v4", 23, 1, 2},
	{"EPYC-Rome", 23, 49, 0},
	{"EPYC-Rome-v1", 23, 49, 0},
	{"EPYC-Rome-v2", 23, 49, 0},
	{"EPYC-Rome-v3", 23, 49, 0},
	{"EPYC-Milan", 25, 1, 1},
	{"EPYC-Milan-v1", 25, 1, 1},
	{"EPYC-Milan-v2", 25, 1, 1},
	{"EPYC-Genoa", 25, 17, 0},
	{"EPYC-Genoa-v1", 25, 17, 0},
	{"EPYC-Turin", 26, 0, 0},
};

int kd_vcpu_sig_from_name(const char *name, uint32_t *ret)
{
	if (!name)
		return kd_fail(KD_EINVAL, "no vCPU type given");
	for (size_t i = 0; i < KD_ARRAY_SIZE(vcpu_types); i++)
		if (!strcmp(vcpu_types[i].name, name)) {
			*ret = kd_vcpu_sig(vcpu_types[i].family, vcpu_types[i].model,
					   vcpu_types[i].stepping);
			return 0;
		}
	return kd_fail(KD_ENOENT, "unknown vCPU type \"%s\"", name);
}
