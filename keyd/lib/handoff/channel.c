/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The handoff channel: TCP + TLS 1.3 with throwaway P-384 certificates, the
 * exporter and the report_data binding. TLS authenticates nothing here (any
 * certificate is accepted, but one is required so both sides run the same
 * handshake); the attestation reports, bound to the exporter, do.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "keyd/cleanup.h"
#include "keyd/error.h"
#include "keyd/handoff.h"
#include "keyd/util.h"

struct kd_tls {
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;
	int server;
	int64_t deadline; /* used only during the handshake */
};

int kd_handoff_report_data(char role, const uint8_t exporter[KD_HANDOFF_EXPORTER_LEN],
			   uint8_t out[64])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t r = (uint8_t)role;
	unsigned n = 0;
	int ok;

	if (role != KD_ROLE_OLD && role != KD_ROLE_NEW) {
		EVP_MD_CTX_free(md);
		return kd_fail(KD_EINVAL, "handoff role must be O or N");
	}
	ok = md && EVP_DigestInit_ex(md, EVP_sha512(), NULL) == 1 &&
	     EVP_DigestUpdate(md, KD_HANDOFF_CONTEXT, strlen(KD_HANDOFF_CONTEXT)) == 1 &&
	     EVP_DigestUpdate(md, &r, 1) == 1 &&
	     EVP_DigestUpdate(md, exporter, KD_HANDOFF_EXPORTER_LEN) == 1 &&
	     EVP_DigestFinal_ex(md, out, &n) == 1 && n == 64;
	EVP_MD_CTX_free(md);
	return ok ? 0 : kd_fail(KD_ECRYPTO, "SHA-512 failed");
}

/* ---------------------------------------------------------------- sockets */

static int split_addr(const char *addr, char *host, size_t hlen, char *port, size_t plen)
{
	const char *colon;
	size_t n;

	if (!addr || !*addr)
		return kd_fail(KD_EINVAL, "empty address");
	if (addr[0] == '[') {
		const char *rb = strchr(addr, ']');

		if (!rb || rb[1] != ':')
			return kd_fail(KD_EINVAL, "address '%s' is not [V6]:PORT", addr);
		n = (size_t)(rb - addr - 1);
		colon = rb + 1;
		if (n >= hlen)
			return kd_fail(KD_EINVAL, "address '%s' too long", addr);
		memcpy(host, addr + 1, n);
	} else {
		colon = strrchr(addr, ':');
		if (!colon)
			return kd_fail(KD_EINVAL, "address '%s' is not HOST:PORT", addr);
		n = (size_t)(colon - addr);
		if (n >= hlen)
			return kd_fail(KD_EINVAL, "address '%s' too long", addr);
		memcpy(host, addr, n);
	}
	host[n] = '\0';
	if (strlen(colon + 1) == 0 || strlen(colon + 1) >= plen ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return kd_fail(KD_EINVAL, "address '%s' has no numeric port", addr);
	strcpy(port, colon + 1);
	return 0;
}

static int resolve(const char *addr, int passive, struct addrinfo **ret)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0)};
	char host[256], port[8];
	int r = split_addr(addr, host, sizeof(host), port, sizeof(port));

	if (r)
		return r;
	r = getaddrinfo(*host ? host : NULL, port, &hints, ret);
	if (r)
		return kd_fail(KD_EINVAL, "cannot resolve '%s': %s", addr, gai_strerror(r));
	return 0;
}

int kd_tls_listen(const char *addr, int *ret_fd)
{
	struct addrinfo *ai = NULL;
	int fd = -1, one = 1;
	int r = resolve(addr, 1, &ai);

	if (r)
		return r;
	for (struct addrinfo *a = ai; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (!bind(fd, a->ai_addr, a->ai_addrlen) && !listen(fd, 4))
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0)
		return kd_fail(KD_EIO, "cannot listen on %s: %s", addr, strerror(errno));
	*ret_fd = fd;
	return 0;
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return kd_fail(KD_EIO, "fcntl: %s", strerror(errno));
	return 0;
}

/* ---------------------------------------------------------------- TLS */

static int accept_any(int ok, X509_STORE_CTX *x)
{
	(void)ok;
	(void)x;
	/* Attestation, not PKI, authenticates the peer (docs/handoff-protocol.md). */
	return 1;
}

static int make_cert(EVP_PKEY **ret_key, X509 **ret_cert)
{
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	X509 *x = X509_new();
	X509_NAME *nm;
	uint8_t serial[16];
	BIGNUM *bn = NULL;
	int ok;

	ok = pk && x && RAND_bytes(serial, sizeof(serial)) == 1;
	if (ok) {
		serial[0] &= 0x7f;
		bn = BN_bin2bn(serial, sizeof(serial), NULL);
		nm = X509_get_subject_name(x);
		ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) &&
		     X509_set_version(x, 2) == 1 &&
		     X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
						(const unsigned char *)"keyd-handoff", -1, -1,
						0) == 1 &&
		     X509_set_issuer_name(x, nm) == 1 && X509_gmtime_adj(X509_getm_notBefore(x), -300) &&
		     X509_gmtime_adj(X509_getm_notAfter(x), 86400) && X509_set_pubkey(x, pk) == 1 &&
		     X509_sign(x, pk, EVP_sha384()) > 0;
	}
	BN_free(bn);
	if (!ok) {
		EVP_PKEY_free(pk);
		X509_free(x);
		return kd_fail(KD_ECRYPTO, "cannot make the throwaway P-384 certificate");
	}
	*ret_key = pk;
	*ret_cert = x;
	return 0;
}

static int new_ctx(int server, SSL_CTX **ret)
{
	_kd_ssl_ctx_ SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	_kd_pkey_ EVP_PKEY *pk = NULL;
	_kd_x509_ X509 *x = NULL;
	int r;

	if (!ctx)
		return kd_fail(KD_ECRYPTO, "SSL_CTX_new failed");
	r = make_cert(&pk, &x);
	if (r)
		return r;
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_use_certificate(ctx, x) != 1 || SSL_CTX_use_PrivateKey(ctx, pk) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1 || SSL_CTX_set1_groups_list(ctx, "P-384:X25519") != 1)
		return kd_fail(KD_ECRYPTO, "cannot configure TLS 1.3");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, accept_any);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* KEYS travels through OpenSSL's record buffers: have them wiped too. */
	SSL_CTX_set_options(ctx, SSL_OP_CLEANSE_PLAINTEXT | SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(ctx, 0);
	*ret = KD_TAKE_PTR(ctx);
	return 0;
}

static int handshake(struct kd_tls *t, int server)
{
	for (;;) {
		int r = server ? SSL_accept(t->ssl) : SSL_connect(t->ssl);
		int e, w;

		if (r == 1)
			break;
		e = SSL_get_error(t->ssl, r);
		if (e == SSL_ERROR_WANT_READ)
			w = kd_fd_wait(t->fd, POLLIN, t->deadline);
		else if (e == SSL_ERROR_WANT_WRITE)
			w = kd_fd_wait(t->fd, POLLOUT, t->deadline);
		else {
			unsigned long ec = ERR_get_error();
			char buf[160];

			ERR_error_string_n(ec, buf, sizeof(buf));
			ERR_clear_error();
			return kd_fail(KD_EPROTO, "TLS 1.3 handshake failed: %s",
				       ec ? buf : "peer closed the connection");
		}
		if (w == KD_ETIMEOUT)
			return kd_fail(KD_ETIMEOUT, "timed out in the TLS handshake");
		if (w)
			return kd_fail(KD_EIO, "socket error in the TLS handshake");
	}
	if (SSL_version(t->ssl) != TLS1_3_VERSION)
		return kd_fail(KD_EPROTO, "peer did not negotiate TLS 1.3");
	{
		X509 *peer = SSL_get1_peer_certificate(t->ssl);

		if (!peer)
			return kd_fail(KD_EPROTO, "peer sent no TLS certificate");
		X509_free(peer);
	}
	return 0;
}

int kd_tls_new(int server, struct kd_tls **ret)
{
	struct kd_tls *t = calloc(1, sizeof(*t));
	int r;

	if (!t)
		return kd_fail(KD_ENOMEM, "out of memory (handoff)");
	t->fd = -1;
	t->server = server;
	r = new_ctx(server, &t->ctx);
	if (r) {
		free(t);
		return r;
	}
	*ret = t;
	return 0;
}

/* Take fd (closed with t) and run the handshake on the prepared context. */
static int tls_start(struct kd_tls *t, int fd, int timeout_ms)
{
	int r;

	t->fd = fd;
	t->deadline = kd_now_ms() + timeout_ms;
	r = set_nonblock(fd);
	if (r)
		return r;
	t->ssl = SSL_new(t->ctx);
	if (!t->ssl || SSL_set_fd(t->ssl, fd) != 1)
		return kd_fail(KD_ECRYPTO, "SSL_new failed");
	return handshake(t, t->server);
}

/* A prepared context carries one connection, in the role it was made for. */
static int check_unused(const struct kd_tls *t, int server)
{
	if (!t || t->ssl || t->fd >= 0 || t->server != server)
		return kd_fail(KD_EINVAL, "TLS context is not a fresh %s context",
			       server ? "server" : "client");
	return 0;
}

int kd_tls_accept_on(struct kd_tls *t, int listen_fd, int timeout_ms)
{
	int64_t deadline = kd_now_ms() + timeout_ms;
	int fd, w, r;

	r = check_unused(t, 1);
	if (r)
		return r;
	w = kd_fd_wait(listen_fd, POLLIN, deadline);
	if (w == KD_ETIMEOUT)
		return kd_fail(KD_ETIMEOUT, "no peer connected within %d ms", timeout_ms);
	if (w)
		return kd_fail(KD_EIO, "poll on the listening socket failed");
	fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return kd_fail(KD_EIO, "accept: %s", strerror(errno));
	return tls_start(t, fd, (int)(deadline - kd_now_ms() > 0 ? deadline - kd_now_ms() : 1));
}

int kd_tls_connect_on(struct kd_tls *t, const char *addr, int timeout_ms)
{
	int64_t deadline = kd_now_ms() + timeout_ms;
	struct addrinfo *ai = NULL;
	int fd = -1, r, err = 0;

	r = check_unused(t, 0);
	if (r)
		return r;
	r = resolve(addr, 0, &ai);
	if (r)
		return r;
again:
	for (struct addrinfo *a = ai; a; a = a->ai_next) {
		socklen_t sl = sizeof(err);

		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    a->ai_protocol);
		if (fd < 0)
			continue;
		if (!connect(fd, a->ai_addr, a->ai_addrlen))
			break;
		err = errno;
		if (err == EINPROGRESS && !kd_fd_wait(fd, POLLOUT, deadline) &&
		    !getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) && err == 0)
			break;
		close(fd);
		fd = -1;
	}
	/* O may start serving a moment after N boots: retry a refused connect
	 * until the deadline rather than failing the upgrade. */
	if (fd < 0 && err == ECONNREFUSED && kd_now_ms() + 100 < deadline) {
		usleep(50000);
		goto again;
	}
	freeaddrinfo(ai);
	if (fd < 0)
		return kd_fail(KD_EIO, "cannot connect to %s: %s", addr,
			       err ? strerror(err) : "timed out");
	return tls_start(t, fd, (int)(deadline - kd_now_ms() > 0 ? deadline - kd_now_ms() : 1));
}

/* ---------------------------------------------------------------- listener */

struct kd_tls_listener {
	int fd;
	size_t n;
	int pending[KD_HANDOFF_MAX_PENDING];
	int64_t since[KD_HANDOFF_MAX_PENDING];
};

int kd_tls_listener_new(const char *addr, struct kd_tls_listener **ret)
{
	_kd_free_ struct kd_tls_listener *l = calloc(1, sizeof(*l));
	_kd_fd_ int fd = -1;
	int r;

	if (!l)
		return kd_fail(KD_ENOMEM, "out of memory (handoff)");
	r = kd_tls_listen(addr, &fd);
	if (r)
		return r;
	r = set_nonblock(fd);
	if (r)
		return r;
	l->fd = fd;
	fd = -1;
	*ret = KD_TAKE_PTR(l);
	return 0;
}

void kd_tls_listener_free(struct kd_tls_listener *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		close(l->pending[i]);
	close(l->fd);
	free(l);
}

static int take_pending(struct kd_tls_listener *l, size_t i)
{
	int fd = l->pending[i];

	memmove(&l->pending[i], &l->pending[i + 1], (l->n - i - 1) * sizeof(l->pending[0]));
	memmove(&l->since[i], &l->since[i + 1], (l->n - i - 1) * sizeof(l->since[0]));
	l->n--;
	return fd;
}

int kd_tls_listener_accept(struct kd_tls_listener *l, struct kd_tls *t, int64_t deadline,
			   int handshake_ms)
{
	int r;

	r = check_unused(t, 1);
	if (r)
		return r;
	for (;;) {
		struct pollfd p[KD_HANDOFF_MAX_PENDING + 1];
		int64_t now = kd_now_ms(), wake = deadline;
		int n;

		/* A connection that stays silent costs only its own timeout. */
		for (size_t i = 0; i < l->n;) {
			if (now - l->since[i] >= handshake_ms) {
				close(take_pending(l, i));
				continue;
			}
			if (l->since[i] + handshake_ms < wake)
				wake = l->since[i] + handshake_ms;
			i++;
		}
		if (now >= deadline)
			return kd_fail(KD_ETIMEOUT, "no peer connected before the deadline");
		p[0] = (struct pollfd){.fd = l->fd, .events = POLLIN};
		for (size_t i = 0; i < l->n; i++)
			p[i + 1] = (struct pollfd){.fd = l->pending[i], .events = POLLIN};
		n = poll(p, l->n + 1, (int)(wake - now));
		if (n < 0 && errno != EINTR)
			return kd_fail(KD_EIO, "poll on the listening socket failed: %s",
				       strerror(errno));
		if (n <= 0)
			continue;
		/* The first connection with something to say gets the handshake. */
		for (size_t i = 0; i < l->n; i++)
			if (p[i + 1].revents)
				return tls_start(t, take_pending(l, i), handshake_ms);
		if (p[0].revents & POLLIN) {
			int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

			if (fd < 0)
				continue;
			/* At most KD_HANDOFF_MAX_PENDING wait; the oldest makes room. */
			if (l->n == KD_HANDOFF_MAX_PENDING)
				close(take_pending(l, 0));
			l->pending[l->n] = fd;
			l->since[l->n] = kd_now_ms();
			l->n++;
		}
	}
}

int kd_tls_accept(int listen_fd, int timeout_ms, struct kd_tls **ret)
{
	_kd_tls_ struct kd_tls *t = NULL;
	int r;

	r = kd_tls_new(1, &t);
	if (r)
		return r;
	r = kd_tls_accept_on(t, listen_fd, timeout_ms);
	if (r)
		return r;
	*ret = KD_TAKE_PTR(t);
	return 0;
}

int kd_tls_connect(const char *addr, int timeout_ms, struct kd_tls **ret)
{
	_kd_tls_ struct kd_tls *t = NULL;
	int r;

	r = kd_tls_new(0, &t);
	if (r)
		return r;
	r = kd_tls_connect_on(t, addr, timeout_ms);
	if (r)
		return r;
	*ret = KD_TAKE_PTR(t);
	return 0;
}

int kd_tls_exporter(struct kd_tls *t, uint8_t out[KD_HANDOFF_EXPORTER_LEN])
{
	if (SSL_export_keying_material(t->ssl, out, KD_HANDOFF_EXPORTER_LEN,
				       KD_HANDOFF_EXPORTER_LABEL, strlen(KD_HANDOFF_EXPORTER_LABEL),
				       NULL, 0, 0) != 1)
		return kd_fail(KD_ECRYPTO, "TLS exporter failed");
	return 0;
}

/* Move len bytes through TLS within timeout_ms: out = write, else read. */
static int tls_xfer(struct kd_tls *t, uint8_t *p, size_t len, int timeout_ms, bool out)
{
	int64_t until = kd_now_ms() + timeout_ms;

	while (len) {
		size_t n = 0;
		int r, e, w;

		/* SSL_read first: decrypted bytes may already be buffered (SSL_pending)
		 * while the socket itself has nothing more to poll for. */
		r = out ? SSL_write_ex(t->ssl, p, len, &n) : SSL_read_ex(t->ssl, p, len, &n);
		if (r == 1) {
			p += n;
			len -= n;
			continue;
		}
		e = SSL_get_error(t->ssl, r);
		if (e == SSL_ERROR_WANT_READ)
			w = kd_fd_wait(t->fd, POLLIN, until);
		else if (e == SSL_ERROR_WANT_WRITE)
			w = kd_fd_wait(t->fd, POLLOUT, until);
		else {
			ERR_clear_error();
			return kd_fail(KD_EIO, out ? "TLS write failed (peer gone?)"
						   : "TLS read failed (peer gone?)");
		}
		if (w)
			return w;
	}
	return 0;
}

static int tls_read(void *ctx, void *buf, size_t len, int timeout_ms)
{
	return tls_xfer(ctx, buf, len, timeout_ms, false);
}

static int tls_write(void *ctx, const void *buf, size_t len, int timeout_ms)
{
	/* SSL_write_ex only reads from p. */
	return tls_xfer(ctx, (uint8_t *)(uintptr_t)buf, len, timeout_ms, true);
}

void kd_tls_io(struct kd_tls *t, struct kd_io *io)
{
	memset(io, 0, sizeof(*io));
	io->read = tls_read;
	io->write = tls_write;
	io->ctx = t;
	io->read_timeout_ms = 10000;
}

int kd_tls_peer_gone(struct kd_tls *t, int timeout_ms)
{
	struct pollfd p = {.fd = t->fd, .events = POLLRDHUP};

	return poll(&p, 1, timeout_ms) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

void kd_tls_close(struct kd_tls *t)
{
	if (!t)
		return;
	if (t->ssl) {
		SSL_shutdown(t->ssl);
		SSL_free(t->ssl);
	}
	SSL_CTX_free(t->ctx);
	if (t->fd >= 0)
		close(t->fd);
	ERR_clear_error();
	free(t);
}
