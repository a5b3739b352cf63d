/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Privilege separation of the peer verification (after OpenSSH's privsep):
 * the peer's HELLO -- certificates (X.509/ASN.1), the report and the
 * manifest JSON, i.e. all of the untrusted parsing -- is handled in a
 * forked child that holds no key material: every kd_secret is
 * MADV_WIPEONFORK, so the child sees the volume keys as zeros, and it
 * closes every descriptor but its result pipe (no TLS socket, no disk, no
 * simulator), drops to nobody when run as root, sets no_new_privs, may not
 * fork or write files, and runs under a seccomp filter (libseccomp) that
 * allows only memory management, read/write/close on what it holds, time
 * and exit: a socket, an open or an exec kills it.
 *
 * The child's verdict is not trusted either. The interface back is one
 * fixed message, parsed by the parent with the cursor:
 *   i32 result (0 or KD_E*), u16 n + detail (printable, n <= 400)
 *   and on success the peer manifest's signed fields:
 *   u32 svn, u8 n + label (1..64), u64 not_before, u64 not_after,
 *   u8 has_min_peer_svn, u32 min_peer_svn,
 *   u8 min_tcb mask (bit p = product p), 3 x u64 min_tcb (Milan, Genoa, Turin),
 *   u16 n + n x 48-byte measurement (1..64), u8 n + n x {32-byte key id, 64-byte sig}
 * While the child works, the parent verifies its own chain (this chip's
 * VCEK) and the peer report's signature and policy under it; then it
 * re-verifies the k-of-n signatures over the returned manifest fields and
 * every remaining check (kd_handoff_recheck_manifest). A lying child can
 * only make it refuse.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <grp.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "keyd/cursor.h"
#include "keyd/error.h"
#include "keyd/failpoint.h"
#include "keyd/handoff.h"
#include "keyd/manifest.h"
#include "keyd/verify.h"
#include "handoff/internal.h"

#define RESULT_MAX 8192u
#define DETAIL_MAX 400u
#define NOBODY 65534

static void child_harden(int keep_fd)
{
	struct rlimit zero = {0, 0};

	/* One call each side of keep_fd instead of 1024 close()s in the
	 * handoff's critical path; it also reaches descriptors above 1023. */
	if ((keep_fd > 0 && close_range(0, (unsigned)keep_fd - 1, 0)) ||
	    close_range((unsigned)keep_fd + 1, ~0u, 0))
		for (int fd = 0; fd < 1024; fd++)
			if (fd != keep_fd)
				close(fd);
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	setrlimit(RLIMIT_FSIZE, &zero);
	setrlimit(RLIMIT_CORE, &zero);
	if (geteuid() == 0) {
		if (setgroups(0, NULL) || setresgid(NOBODY, NOBODY, NOBODY) ||
		    setresuid(NOBODY, NOBODY, NOBODY))
			_exit(125);
	}
	/* After the uid change: no further processes for a compromised child. */
	setrlimit(RLIMIT_NPROC, &zero);
	if (kd_handoff_confine())
		_exit(123);
}

int kd_handoff_confine(void)
{
	/* What verification needs once OpenSSL is initialised: nothing that
	 * names a file, a socket or a program. */
	static const int allowed[] = {
		SCMP_SYS(read),		 SCMP_SYS(write),	    SCMP_SYS(close),
		SCMP_SYS(exit),		 SCMP_SYS(exit_group),	    SCMP_SYS(brk),
		SCMP_SYS(mmap),		 SCMP_SYS(munmap),	    SCMP_SYS(mremap),
		SCMP_SYS(mprotect),	 SCMP_SYS(madvise),	    SCMP_SYS(futex),
		SCMP_SYS(rt_sigreturn),	 SCMP_SYS(rt_sigprocmask),  SCMP_SYS(clock_gettime),
		SCMP_SYS(gettimeofday),	 SCMP_SYS(time),	    SCMP_SYS(getrandom),
		SCMP_SYS(getpid),	 SCMP_SYS(gettid),	    SCMP_SYS(fstat),
		SCMP_SYS(newfstatat),	 SCMP_SYS(lseek),		    SCMP_SYS(sigaltstack),
	};
	scmp_filter_ctx f = seccomp_init(SCMP_ACT_KILL_PROCESS);
	int r = -1;

	if (!f)
		goto out;
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		r = seccomp_rule_add(f, SCMP_ACT_ALLOW, allowed[i], 0);
		if (r)
			goto out;
	}
	r = seccomp_load(f);
out:
	seccomp_release(f);
	if (r)
		return kd_fail(KD_EIO, "cannot load the seccomp filter (%d)", r);
	return 0;
}



/* The verified manifest, after the verdict: what the parent re-checks. Every
 * field the signature covers must be here ("rotate" too), or the parent's
 * re-check of the signatures fails for a manifest that has it. */
static size_t put_manifest(uint8_t *buf, size_t off, const struct kd_manifest *m)
{
	size_t ll = strlen(m->version);
	uint8_t mask = 0;

	kd_put_le32(buf + off, m->svn);
	buf[off + 4] = (uint8_t)ll;
	memcpy(buf + off + 5, m->version, ll);
	off += 5 + ll;
	kd_put_le64(buf + off, (uint64_t)m->not_before);
	kd_put_le64(buf + off + 8, (uint64_t)m->not_after);
	buf[off + 16] = m->has_min_peer_svn;
	kd_put_le32(buf + off + 17, m->min_peer_svn);
	off += 21;
	for (int p = KD_PRODUCT_MILAN; p <= KD_PRODUCT_TURIN; p++)
		if (m->has_min_tcb[p])
			mask |= (uint8_t)(1u << p);
	buf[off++] = mask;
	buf[off++] = m->rotate ? 1 : 0;
	for (int p = KD_PRODUCT_MILAN; p <= KD_PRODUCT_TURIN; p++, off += 8)
		kd_put_le64(buf + off, m->min_tcb[p]);
	kd_put_le16(buf + off, (uint16_t)m->n_measurements);
	off += 2;
	memcpy(buf + off, m->measurements, m->n_measurements * 48);
	off += m->n_measurements * 48;
	buf[off++] = (uint8_t)m->n_sigs;
	for (size_t i = 0; i < m->n_sigs; i++, off += 96) {
		memcpy(buf + off, m->sigs[i].key_id, 32);
		memcpy(buf + off + 32, m->sigs[i].sig, 64);
	}
	return off;
}

/* The child's answer: its verdict and detail, then on success the manifest. */
static void put_result(int fd, int verdict, const struct kd_manifest *m)
{
	static uint8_t buf[RESULT_MAX];
	const char *d = verdict ? kd_err_detail(verdict) : "";
	size_t dl = strlen(d), off;

	if (dl > DETAIL_MAX)
		dl = DETAIL_MAX;
	kd_put_le32(buf, (uint32_t)verdict);
	kd_put_le16(buf + 4, (uint16_t)dl);
	memcpy(buf + 6, d, dl);
	off = 6 + dl;
	if (verdict == 0)
		off = put_manifest(buf, off, m);
	if (write(fd, buf, off) != (ssize_t)off)
		_exit(124);
}

/* Read the child's whole result (it closes the pipe when done). */
static int read_result(int fd, int timeout_ms, uint8_t *buf, size_t *len)
{
	int64_t until = kd_now_ms() + timeout_ms;
	size_t n = 0;

	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int64_t left = until - kd_now_ms();
		ssize_t k;

		if (left <= 0)
			return kd_fail(KD_ETIMEOUT, "the verifier child did not answer in time");
		if (poll(&p, 1, (int)left) <= 0) {
			if (errno == EINTR)
				continue;
			return kd_fail(KD_ETIMEOUT, "the verifier child did not answer in time");
		}
		k = read(fd, buf + n, RESULT_MAX - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return kd_fail(KD_EIO, "reading the verifier child's result failed");
		if (k == 0)
			break;
		n += (size_t)k;
		if (n == RESULT_MAX)
			break;
	}
	*len = n;
	return 0;
}

/* The peer manifest's fields, as the child sent them: judged again later. */
static int parse_manifest_fields(struct kd_cursor *c, struct kd_manifest *m)
{
	uint64_t nb, na;
	uint16_t nm;
	uint8_t ll, has_floor, mask, rot, ns;

	if (kd_cur_u32(c, &m->svn) || kd_cur_u8(c, &ll) || ll == 0 || ll > KD_MANIFEST_LABEL_MAX ||
	    kd_cur_bytes(c, m->version, ll) || kd_cur_u64(c, &nb) || kd_cur_u64(c, &na) ||
	    kd_cur_u8(c, &has_floor) || has_floor > 1 || kd_cur_u32(c, &m->min_peer_svn) ||
	    kd_cur_u8(c, &mask) || (mask & ~0x0eu) || kd_cur_u8(c, &rot) || rot > 1)
		return kd_fail(KD_EPROTO, "the verifier child sent a malformed result");
	m->version[ll] = '\0';
	m->not_before = (time_t)(int64_t)nb;
	m->not_after = (time_t)(int64_t)na;
	m->has_min_peer_svn = has_floor;
	m->rotate = rot;
	for (int p = KD_PRODUCT_MILAN; p <= KD_PRODUCT_TURIN; p++) {
		m->has_min_tcb[p] = mask & (1u << p);
		if (kd_cur_u64(c, &m->min_tcb[p]))
			return kd_fail(KD_EPROTO, "the verifier child sent a malformed result");
	}
	if (kd_cur_u16(c, &nm) || nm == 0 || nm > KD_MANIFEST_MAX_MEAS)
		return kd_fail(KD_EPROTO, "the verifier child sent a malformed result");
	for (uint16_t i = 0; i < nm; i++) {
		uint8_t meas[48];

		if (kd_cur_bytes(c, meas, 48) || kd_manifest_add_measurement(m, meas))
			return kd_fail(KD_EPROTO, "the verifier child sent a malformed result");
	}
	if (kd_cur_u8(c, &ns) || ns > KD_MANIFEST_MAX_SIGS)
		return kd_fail(KD_EPROTO, "the verifier child sent a malformed result");
	if (ns) {
		m->sigs = calloc(ns, sizeof(*m->sigs));
		if (!m->sigs)
			return kd_fail(KD_ENOMEM, "out of memory (handoff)");
		m->n_sigs = ns;
	}
	for (uint8_t i = 0; i < ns; i++)
		if (kd_cur_bytes(c, m->sigs[i].key_id, 32) || kd_cur_bytes(c, m->sigs[i].sig, 64))
			return kd_fail(KD_EPROTO, "the verifier child sent a malformed result");
	return kd_cur_expect_end(c) ? kd_fail(KD_EPROTO, "the verifier child sent a malformed result") : 0;
}

static int parse_result(const uint8_t *buf, size_t len, char peer_role, struct kd_manifest *m)
{
	char detail[DETAIL_MAX + 1];
	const uint8_t *p;
	struct kd_cursor c;
	uint32_t r;
	uint16_t dl;
	int e;

	kd_cur_init(&c, buf, len);
	if (kd_cur_u32(&c, &r) || kd_cur_u16(&c, &dl) || dl > DETAIL_MAX || kd_cur_ptr(&c, &p, dl))
		return kd_fail(KD_EPROTO, "peer %c: verifier child returned a malformed result",
			       peer_role);
	for (size_t i = 0; i < dl; i++)
		detail[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
	detail[dl] = '\0';
	if ((int32_t)r != 0) {
		e = (int32_t)r;
		/* A code the child cannot mean is a verification failure. */
		return kd_fail(e >= 0 || e <= KD__EMAX ? KD_EVERIFY : e, "%s", detail);
	}
	e = parse_manifest_fields(&c, m);
	if (e == KD_ENOMEM)
		return e;
	if (e)
		return kd_fail(KD_EPROTO, "peer %c: verifier child returned a malformed result",
			       peer_role);
	return 0;
}

int kd_handoff_verify_peer_isolated(char my_role, const struct kd_hello *peer,
				    struct kd_verifier *own_vek,
				    const uint8_t exporter[KD_HANDOFF_EXPORTER_LEN],
				    const struct kd_report *own_report,
				    const struct kd_manifest *own_manifest,
				    const struct kd_handoff_trust *trust, int timeout_ms,
				    struct kd_report *ret_report, struct kd_manifest **ret_manifest)
{
	char peer_role = my_role == KD_ROLE_OLD ? KD_ROLE_NEW : KD_ROLE_OLD;
	uint8_t buf[RESULT_MAX];
	char rv_detail[400] = "";
	struct kd_manifest *m = NULL;
	struct kd_report rep;
	size_t len = 0;
	int pfd[2], st = 0, r, rv;
	pid_t pid;

	if (!own_vek)
		return kd_fail(KD_EINVAL, "the parent needs this chip's own VCEK to re-check");
	/* OpenSSL reads its configuration now, not in the confined child. */
	OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG | OPENSSL_INIT_ADD_ALL_CIPHERS |
				    OPENSSL_INIT_ADD_ALL_DIGESTS,
			    NULL);
	if (pipe2(pfd, O_CLOEXEC))
		return kd_fail(KD_EIO, "pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return kd_fail(KD_EIO, "fork: %s", strerror(errno));
	}
	if (pid == 0) {
		struct kd_manifest *pm = NULL;
		struct kd_report pr;

		child_harden(pfd[1]);
#ifdef KEYD_FAILPOINTS
		/* Test aid: a child that breaks out must die, not answer. */
		{
			const char *fp = getenv("KEYD_FAILPOINT");

			if (fp && !strcmp(fp, "handoff.child-escape"))
				(void)socket(AF_INET, SOCK_STREAM, 0);
			if (fp && !strcmp(fp, "handoff.child-lies")) {
				struct kd_manifest *lie = NULL;

				if (!kd_manifest_parse(peer->manifest, peer->manifest_len, &lie))
					put_result(pfd[1], 0, lie);
				_exit(0);
			}
		}
#endif
		r = kd_handoff_verify_peer(my_role, peer, exporter, own_report, own_manifest,
					   trust, &pr, &pm);
		put_result(pfd[1], r, pm);
		_exit(0);
	}
	close(pfd[1]);
	/* Meanwhile the parent checks the report itself, under this chip's own VCEK. */
	rv = kd_handoff_recheck_report(my_role, peer->report, peer->report_len, exporter, own_report,
				       trust, own_vek, &rep);
	if (rv)
		snprintf(rv_detail, sizeof(rv_detail), "%s", kd_err_detail(rv));
	r = read_result(pfd[0], timeout_ms > 0 ? timeout_ms : 30000, buf, &len);
	close(pfd[0]);
	if (r) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		return kd_fail(r, "peer %c: verifier child gave no answer", peer_role);
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		/* Fail closed: a verifier that dies has verified nothing. */
		if (WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS)
			return kd_fail(KD_EVERIFY, "peer %c: verifier child broke its seccomp filter "
						   "and was killed", peer_role);
		return kd_fail(KD_EVERIFY, "peer %c: verifier child died (status 0x%x)", peer_role,
			       st);
	}
	r = kd_manifest_new(&m);
	if (r)
		goto out;
	r = parse_result(buf, len, peer_role, m);
	if (r)
		goto out;
	/* The child's verdict is only a first opinion: the parent's own decides. */
	if (rv) {
		r = kd_fail(rv, "%s", rv_detail);
		goto out;
	}
	r = kd_handoff_recheck_manifest(my_role, &rep, m, exporter, own_report, own_manifest,
					trust);
out:
	kd_wipe(buf, len);
	if (r) {
		kd_manifest_free(m);
		return r;
	}
	*ret_report = rep;
	*ret_manifest = m;
	return 0;
}
