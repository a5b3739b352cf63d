/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Certificate bundles from the host's cache and the KDS client that fills
 * it (keyd/certbundle.h). Everything read here is untrusted: the bundle is
 * only ever handed to the verifier, which pins the ARK.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/http.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "attest/internal.h"
#include "keyd/certbundle.h"
#include "keyd/certtable.h"
#include "keyd/error.h"
#include "keyd/util.h"

static bool all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

int kd_certbundle_name(const struct kd_report *rep, char out[KD_CERTBUNDLE_NAME_MAX])
{
	char tcb[KD_TCB_HEX_LEN], id[129];

	kd_tcb_hex(rep->reported_tcb, tcb);
	if (rep->signing_key == KD_SIGNING_KEY_VLEK) {
		snprintf(out, KD_CERTBUNDLE_NAME_MAX, "vlek-%s.pem", tcb);
		return 0;
	}
	if (all_zero(rep->chip_id, 64))
		return kd_fail(KD_EUNSUPP, "the report's CHIP_ID is masked: no bundle name; give the "
					   "bundle file itself ($KEYD_CERT_BUNDLE)");
	kd_hex(rep->chip_id, 64, id);
	snprintf(out, KD_CERTBUNDLE_NAME_MAX, "%s-%s.pem", id, tcb);
	return 0;
}

bool kd_certtable_lacks_vek(const uint8_t *table, size_t len)
{
	struct kd_certtable t;

	if (!table || len == 0)
		return true;
	if (kd_certtable_parse(table, len, &t) < 0) {
		kd_err_clear();
		return false;
	}
	return !t.vcek && !t.vlek;
}

const char *kd_cert_dir(const char *dir)
{
	const char *env = getenv("KEYD_CERT_DIR");

	if (dir && *dir)
		return dir;
	return env && *env ? env : KD_CERT_DIR;
}

static void set_source(char *out, size_t len, const char *s)
{
	if (out && len)
		snprintf(out, len, "%s", s);
}

int kd_certs_from_bundle(struct kd_cert_inputs *in, const uint8_t *report, size_t report_len,
			 const char *dir, uint8_t **ret_buf, char *ret_source, size_t source_len)
{
	static const char pem_tag[] = "-----BEGIN CERTIFICATE-----";
	const char *env = getenv("KEYD_CERT_BUNDLE");
	char name[KD_CERTBUNDLE_NAME_MAX], path[4096];
	struct kd_report rep;
	struct stat st;
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	if (in->vek) {
		*ret_buf = NULL;
		set_source(ret_source, source_len, "given");
		return 0;
	}
	if (!kd_certtable_lacks_vek(in->cert_table, in->cert_table_len)) {
		*ret_buf = NULL;
		set_source(ret_source, source_len, "certificate table");
		return 0;
	}
	/* No certificate can prove an unsigned report: leave it to the verifier to say so. */
	if (kd_report_parse(report, report_len, &rep) == 0 &&
	    ((rep.signer_info & KD_SIGNER_MASK_CHIP_KEY) || rep.signing_key == KD_SIGNING_KEY_NONE)) {
		*ret_buf = NULL;
		set_source(ret_source, source_len, "none (unsigned report)");
		return 0;
	}
	kd_err_clear();
	if (env && *env) {
		snprintf(path, sizeof(path), "%s", env);
	} else if (dir && stat(dir, &st) == 0 && S_ISREG(st.st_mode)) {
		snprintf(path, sizeof(path), "%s", dir);
	} else {
		if ((r = kd_report_parse(report, report_len, &rep)) < 0)
			return r;
		if ((r = kd_certbundle_name(&rep, name)) < 0)
			return r;
		if (snprintf(path, sizeof(path), "%s/%s", kd_cert_dir(dir), name) >= (int)sizeof(path))
			return kd_fail(KD_EINVAL, "certificate directory path too long");
	}
	r = kd_read_file(path, KD_CERTBUNDLE_MAX, &buf, &len);
	if (r == KD_ENOENT)
		return kd_fail(KD_ENOENT, "no certificates: the certificate table is empty and there is "
					  "no bundle %s (the host fetches it: keyd kds fetch)", path);
	if (r < 0)
		return r;
	if (len < sizeof(pem_tag) - 1 || memcmp(buf, pem_tag, sizeof(pem_tag) - 1)) {
		free(buf);
		return kd_fail(KD_EMALFORMED, "certificate bundle %s does not start with a PEM "
					      "certificate", path);
	}
	in->vek = buf;
	in->vek_len = len;
	in->chain_pem = buf;
	in->chain_pem_len = len;
	in->cert_table = NULL;
	in->cert_table_len = 0;
	*ret_buf = buf;
	set_source(ret_source, source_len, path);
	return 0;
}

/* ---------------------------------------------------------------- KDS */

/* KDS names a product as keyd does (kd_product_name); an unknown one has no path. */
static const char *kds_product(enum kd_product p)
{
	const char *name = kd_product_name(p);

	return strcmp(name, "unknown") ? name : NULL;
}

int kd_kds_vcek_path(const struct kd_report *rep, enum kd_product p, char out[KD_KDS_PATH_MAX])
{
	const char *name = kds_product(p);
	char hwid[129], fmc[16] = "";
	struct kd_tcb t;

	if (!name)
		return kd_fail(KD_EUNSUPP, "KDS needs the product (Milan, Genoa or Turin) of this "
					   "report; a version 2 report does not say (give --product)");
	if (all_zero(rep->chip_id, 64))
		return kd_fail(KD_EUNSUPP, "the report's CHIP_ID is masked: KDS cannot name the chip");
	/* Turin's hwID is the first 8 bytes of CHIP_ID (the VCEK's hwID extension). */
	kd_hex(rep->chip_id, p == KD_PRODUCT_TURIN ? 8 : 64, hwid);
	kd_tcb_decode(rep->reported_tcb, p, &t);
	if (p == KD_PRODUCT_TURIN)
		snprintf(fmc, sizeof(fmc), "&fmcSPL=%u", t.fmc);
	snprintf(out, KD_KDS_PATH_MAX, "/vcek/v1/%s/%s?blSPL=%u&teeSPL=%u&snpSPL=%u&ucodeSPL=%u%s",
		 name, hwid, t.bootloader, t.tee, t.snp, t.microcode, fmc);
	return 0;
}

int kd_kds_chain_path(enum kd_product p, bool vlek, char out[KD_KDS_PATH_MAX])
{
	const char *name = kds_product(p);

	if (!name)
		return kd_fail(KD_EUNSUPP, "KDS needs the product (Milan, Genoa or Turin) of this "
					   "report; a version 2 report does not say (give --product)");
	snprintf(out, KD_KDS_PATH_MAX, "/%s/v1/%s/cert_chain", vlek ? "vlek" : "vcek", name);
	return 0;
}

/*
 * One HTTP/1.0 GET over an OpenSSL connect BIO (TLS on top for https://).
 * HTTP/1.0 keeps the response simple: no chunking, the body ends at EOF.
 */
static int http_exchange(BIO *io, const char *host, const char *target, size_t max, uint8_t **ret,
			 size_t *ret_len)
{
	size_t cap = max + 8192, len = 0, hdr_end = 0;
	uint8_t *buf = malloc(cap + 1);
	char req[1536];
	int n, status = 0;

	if (!buf)
		return kd_fail(KD_ENOMEM, "out of memory (HTTP response)");
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\nAccept: */*\r\n"
		     "User-Agent: keyd\r\nConnection: close\r\n\r\n", target, host);
	if (n < 0 || n >= (int)sizeof(req) || BIO_write(io, req, n) != n || BIO_flush(io) != 1) {
		free(buf);
		return kd_fail(KD_EIO, "cannot send the request");
	}
	while (len < cap && (n = BIO_read(io, buf + len, (int)(cap - len))) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	for (size_t i = 0; i + 3 < len; i++)
		if (!memcmp(buf + i, "\r\n\r\n", 4)) {
			hdr_end = i + 4;
			break;
		}
	if (len < 12 || (memcmp(buf, "HTTP/1.0 ", 9) && memcmp(buf, "HTTP/1.1 ", 9)) || !hdr_end) {
		free(buf);
		return kd_fail(KD_EIO, "no HTTP response");
	}
	for (int i = 9; i < 12; i++) {
		if (buf[i] < '0' || buf[i] > '9') {
			free(buf);
			return kd_fail(KD_EIO, "malformed HTTP status line");
		}
		status = status * 10 + (buf[i] - '0');
	}
	if (status != 200) {
		free(buf);
		return kd_fail(KD_EIO, "HTTP status %d", status);
	}
	if (len - hdr_end > max || len == cap) {
		free(buf);
		return kd_fail(KD_EIO, "response larger than %zu bytes", max);
	}
	if (len == hdr_end) {
		free(buf);
		return kd_fail(KD_EIO, "empty response");
	}
	memmove(buf, buf + hdr_end, len - hdr_end);
	*ret = buf;
	*ret_len = len - hdr_end;
	return 0;
}

int kd_http_get(const char *base_url, const char *path, size_t max, int timeout, uint8_t **ret,
		size_t *ret_len)
{
	char url[1024], hostport[300], target[1200];
	char *host = NULL, *port = NULL, *upath = NULL;
	int ssl = 0, r;
	SSL_CTX *ctx = NULL;
	BIO *conn = NULL, *io = NULL;

	if (snprintf(url, sizeof(url), "%s%s", base_url, path) >= (int)sizeof(url))
		return kd_fail(KD_EINVAL, "KDS URL too long");
	if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))
		return kd_fail(KD_EINVAL, "KDS URL '%.64s' is not http:// or https://", base_url);
	if (!OSSL_HTTP_parse_url(url, &ssl, NULL, &host, &port, NULL, &upath, NULL, NULL)) {
		ERR_clear_error();
		return kd_fail(KD_EINVAL, "cannot parse URL %.200s", url);
	}
	/* upath drops the query; the request target is everything after the authority. */
	{
		const char *a = strstr(url, "://") + 3, *t = strchr(a, '/');

		snprintf(target, sizeof(target), "%s", t ? t : "/");
	}
	snprintf(hostport, sizeof(hostport), "%s:%s", host, port);
	conn = BIO_new_connect(hostport);
	if (!conn) {
		r = kd_fail(KD_ENOMEM, "out of memory (connection to %s)", hostport);
		goto out;
	}
	BIO_set_nbio(conn, 1);
	if (BIO_do_connect_retry(conn, timeout, -1) != 1) {
		r = kd_fail(KD_EIO, "GET %s failed: cannot connect to %s", url, hostport);
		goto out;
	}
	/* Blocking from here on, bounded by socket timeouts. */
	{
		int fd = -1, fl;
		struct timeval tv = {.tv_sec = timeout};

		if (BIO_get_fd(conn, &fd) < 0 || (fl = fcntl(fd, F_GETFL)) < 0 ||
		    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
		    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv))) {
			r = kd_fail(KD_EIO, "GET %s failed: cannot set a timeout", url);
			goto out;
		}
	}
	io = conn;
	if (ssl) {
		SSL *s = NULL;
		BIO *sbio;

		ctx = SSL_CTX_new(TLS_client_method());
		if (!ctx || SSL_CTX_set_default_verify_paths(ctx) != 1 ||
		    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
		    !(sbio = BIO_new_ssl(ctx, 1))) {
			r = kd_fail(KD_ECRYPTO, "OpenSSL: cannot set up TLS");
			goto out;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		io = BIO_push(sbio, conn);
		BIO_get_ssl(sbio, &s);
		if (!s || !SSL_set_tlsext_host_name(s, host) || !SSL_set1_host(s, host) ||
		    BIO_do_handshake(io) != 1) {
			r = kd_fail(KD_EIO, "GET %s failed: TLS handshake with %s failed", url, host);
			goto out;
		}
	}
	/* Host names the port unless it is the scheme's default (RFC 9110 7.2). */
	r = http_exchange(io, !strcmp(port, ssl ? "443" : "80") ? host : hostport, target, max, ret,
			  ret_len);
	if (r < 0) {
		char why[200];

		snprintf(why, sizeof(why), "%s", kd_err_detail(r));
		r = kd_fail(r, "GET %s failed: %s", url, why);
	}
out:
	ERR_clear_error();
	if (io)
		BIO_free_all(io);
	else
		BIO_free_all(conn);
	SSL_CTX_free(ctx);
	OPENSSL_free(host);
	OPENSSL_free(port);
	OPENSSL_free(upath);
	return r;
}

int kd_certbundle_build(const uint8_t *vek, size_t vek_len, const uint8_t *chain, size_t chain_len,
			uint8_t **ret, size_t *ret_len)
{
	X509 *v = kd_x509_load(vek, vek_len), *x;
	BIO *in = NULL, *out = BIO_new(BIO_s_mem());
	BUF_MEM *mem = NULL;
	size_t n = 0;
	uint8_t *buf;
	int r = 0;

	if (!v || !out || chain_len > KD_CERTBUNDLE_MAX) {
		r = kd_fail(KD_EMALFORMED, "%s", !v ? "VCEK/VLEK is neither DER nor PEM"
						    : "certificate chain too large");
		goto out;
	}
	if (!(in = BIO_new_mem_buf(chain, (int)chain_len)) || PEM_write_bio_X509(out, v) != 1) {
		r = kd_fail(KD_ENOMEM, "out of memory (certificate bundle)");
		goto out;
	}
	while ((x = PEM_read_bio_X509(in, NULL, NULL, NULL))) {
		int ok = ++n <= 4 && PEM_write_bio_X509(out, x) == 1;

		X509_free(x);
		if (!ok) {
			r = kd_fail(KD_EMALFORMED, "certificate chain holds more than 4 certificates");
			goto out;
		}
	}
	if (n == 0) {
		r = kd_fail(KD_EMALFORMED, "certificate chain holds no PEM certificate");
		goto out;
	}
	BIO_get_mem_ptr(out, &mem);
	if (!mem || !(buf = malloc(mem->length))) {
		r = kd_fail(KD_ENOMEM, "out of memory (certificate bundle)");
		goto out;
	}
	memcpy(buf, mem->data, mem->length);
	*ret = buf;
	*ret_len = mem->length;
out:
	ERR_clear_error();
	X509_free(v);
	BIO_free(in);
	BIO_free(out);
	return r;
}
