/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Certificates without the host's help.
 *
 * Stock KVM answers SNP_GET_EXT_REPORT with an empty certificate table
 * unless the VMM opts in, and a table larger than the kernel's 16 KiB limit
 * cannot be fetched at all. The VCEK (or VLEK) then comes from AMD's Key
 * Distribution Service (KDS): the host fetches it (`keyd kds fetch`) and
 * leaves a bundle in an unmeasured cache directory,
 *
 *   <dir>/<CHIP_ID hex>-<REPORTED_TCB hex>.pem   (VCEK: one per chip and TCB)
 *   <dir>/vlek-<REPORTED_TCB hex>.pem            (VLEK: the host's own provisioning)
 *
 * holding PEM certificates in the order VCEK/VLEK, ASK/ASVK, ARK. The host
 * gains nothing by lying: the bundle goes through the same verifier as a
 * certificate table, and its ARK must be a pinned AMD root (or the caller's
 * --ark), so a wrong bundle makes verification fail, never pass.
 */
#ifndef KEYD_CERTBUNDLE_H
#define KEYD_CERTBUNDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyd/report.h"
#include "keyd/verify.h"

#define KD_CERT_DIR "/var/cache/keyd/certs"
/* Larger than any VCEK + ASK + ARK in PEM (about 6 KiB). */
#define KD_CERTBUNDLE_MAX (64u * 1024u)
/* "<128 hex>-<16 hex>.pem" and NUL. */
#define KD_CERTBUNDLE_NAME_MAX 152

/*
 * The cache file name of a report's bundle. KD_EUNSUPP for a VCEK-signed
 * report with a masked (all-zero) CHIP_ID: nothing names the chip, so the
 * operator must point at the bundle (a file given as the directory, or
 * $KEYD_CERT_BUNDLE).
 */
int kd_certbundle_name(const struct kd_report *rep, char out[KD_CERTBUNDLE_NAME_MAX]);

/*
 * True if the certificate table is well-formed and holds no VCEK or VLEK
 * (NULL, empty, or the zero page a host without certificates leaves). A
 * malformed table is not "lacking": the verifier is to say what is wrong.
 */
bool kd_certtable_lacks_vek(const uint8_t *table, size_t len);

/*
 * The certificate directory: dir if given, else $KEYD_CERT_DIR, else
 * KD_CERT_DIR.
 */
const char *kd_cert_dir(const char *dir);

/*
 * If in has neither a VCEK/VLEK nor a certificate table that holds one,
 * load the bundle for this report -- $KEYD_CERT_BUNDLE if set, else the
 * file dir names, else <kd_cert_dir(dir)>/<kd_certbundle_name> -- and point
 * in->vek and in->chain_pem at it. *ret_buf then owns the bytes (free() it
 * after verifying); it is NULL when the caller's own certificates are used.
 * ret_source (optional, len bytes) says where the certificates came from:
 * "certificate table", "given" or the bundle's path.
 * Errors: KD_ENOENT (no bundle: the detail names the path and the host
 * command that fetches it), KD_EUNSUPP (see kd_certbundle_name),
 * KD_EMALFORMED (the report), KD_EIO.
 */
int kd_certs_from_bundle(struct kd_cert_inputs *in, const uint8_t *report, size_t report_len,
			 const char *dir, uint8_t **ret_buf, char *ret_source, size_t source_len);

/*
 * KDS (host side). The URL paths for a report: VCEK
 *   /vcek/v1/{Milan|Genoa|Turin}/{hwid}?blSPL=B&teeSPL=T&snpSPL=S&ucodeSPL=U
 * (hwid: CHIP_ID in lowercase hex, 64 bytes; the first 8 on Turin, which
 * also gets &fmcSPL=F last; SPLs in decimal), and the chain /vcek/v1/{product}/cert_chain
 * (/vlek/v1/... for a VLEK). p is the report's product (from CPUID, or the
 * caller's for a v2 report). KD_EUNSUPP for an unknown product or a masked
 * CHIP_ID.
 */
#define KD_KDS_PATH_MAX 320
int kd_kds_vcek_path(const struct kd_report *rep, enum kd_product p, char out[KD_KDS_PATH_MAX]);
int kd_kds_chain_path(enum kd_product p, bool vlek, char out[KD_KDS_PATH_MAX]);

/*
 * GET base_url + path with OpenSSL's HTTP client (http://, or https:// with
 * the system's trust store), at most max bytes, timeout seconds.
 * *ret is malloc'ed. Errors: KD_EIO (connection, HTTP status, too large).
 */
int kd_http_get(const char *base_url, const char *path, size_t max, int timeout, uint8_t **ret,
		size_t *ret_len);

/*
 * Build a bundle (PEM: vek, then every certificate of chain, in order) from
 * a VCEK/VLEK in DER or PEM and a KDS cert_chain in PEM. KD_EMALFORMED.
 */
int kd_certbundle_build(const uint8_t *vek, size_t vek_len, const uint8_t *chain, size_t chain_len,
			uint8_t **ret, size_t *ret_len);

#endif
