/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Privilege separation of the peer verification (issue 8, after OpenSSH's
 * privsep): the peer's HELLO -- certificates (X.509/ASN.1), the report and
 * the manifest JSON, i.e. all of the untrusted parsing -- is handled in a
 * forked child that holds no key material: every kd_secret is
 * MADV_WIPEONFORK, so the child sees the volume keys as zeros, and it
 * closes every descriptor but its result pipe (no TLS socket, no disk, no
 * simulator), drops to nobody when run as root, sets no_new_privs and may
 * not fork or write files.
 *
 * The interface back is one fixed message, parsed by the parent with the
 * cursor:
 *   i32 result (0 or KD_E*), u16 n + detail (printable, n <= 400)
 *   and on success: u32 manifest svn, u8 n + manifest label (1..64)
 * On success the parent parses the report bytes it already holds (the very
 * bytes the child verified) for the fields it records in N's token.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "keyd/cursor.h"
#include "keyd/error.h"
#include "keyd/handoff.h"
#include "keyd/manifest.h"

#define RESULT_MAX 512u
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
}

static void put_result(int fd, int r, const struct kd_manifest *m)
{
	uint8_t buf[RESULT_MAX];
	const char *d = r ? kd_err_detail(r) : "";
	size_t dl = strlen(d), off = 0, ll;

	if (dl > DETAIL_MAX)
		dl = DETAIL_MAX;
	kd_put_le32(buf, (uint32_t)r);
	kd_put_le16(buf + 4, (uint16_t)dl);
	memcpy(buf + 6, d, dl);
	off = 6 + dl;
	if (!r) {
		ll = strlen(m->version);
		kd_put_le32(buf + off, m->svn);
		buf[off + 4] = (uint8_t)ll;
		memcpy(buf + off + 5, m->version, ll);
		off += 5 + ll;
	}
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
			return KD_ETIMEOUT;
		if (poll(&p, 1, (int)left) <= 0) {
			if (errno == EINTR)
				continue;
			return KD_ETIMEOUT;
		}
		k = read(fd, buf + n, RESULT_MAX - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return KD_EIO;
		if (k == 0)
			break;
		n += (size_t)k;
		if (n == RESULT_MAX)
			break;
	}
	*len = n;
	return 0;
}

static int parse_result(const uint8_t *buf, size_t len, char peer_role, uint32_t *svn,
			char label[KD_MANIFEST_LABEL_MAX + 1])
{
	char detail[DETAIL_MAX + 1];
	const uint8_t *p;
	struct kd_cursor c;
	uint32_t r;
	uint16_t dl;
	uint8_t ll;

	kd_cur_init(&c, buf, len);
	if (kd_cur_u32(&c, &r) || kd_cur_u16(&c, &dl) || dl > DETAIL_MAX || kd_cur_ptr(&c, &p, dl))
		return kd_fail(KD_EPROTO, "peer %c: verifier child returned a malformed result",
			       peer_role);
	for (size_t i = 0; i < dl; i++)
		detail[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
	detail[dl] = '\0';
	if ((int32_t)r != 0) {
		int e = (int32_t)r;

		if (e >= 0 || e <= KD__EMAX)
			e = KD_EVERIFY;
		return kd_fail(e, "%s", detail);
	}
	if (kd_cur_u32(&c, svn) || kd_cur_u8(&c, &ll) || ll == 0 || ll > KD_MANIFEST_LABEL_MAX ||
	    kd_cur_bytes(&c, label, ll) || kd_cur_expect_end(&c))
		return kd_fail(KD_EPROTO, "peer %c: verifier child returned a malformed result",
			       peer_role);
	label[ll] = '\0';
	return 0;
}

int kd_handoff_verify_peer_isolated(char my_role, const struct kd_hello *peer,
				    const uint8_t exporter[KD_HANDOFF_EXPORTER_LEN],
				    const struct kd_report *own_report,
				    const struct kd_manifest *own_manifest,
				    const struct kd_handoff_trust *trust, int timeout_ms,
				    struct kd_report *ret_report, struct kd_manifest **ret_manifest)
{
	char peer_role = my_role == KD_ROLE_OLD ? KD_ROLE_NEW : KD_ROLE_OLD;
	char label[KD_MANIFEST_LABEL_MAX + 1];
	uint8_t buf[RESULT_MAX];
	struct kd_manifest *m = NULL;
	struct kd_report rep;
	size_t len = 0;
	uint32_t svn = 0;
	int pfd[2], st = 0, r;
	pid_t pid;

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
		r = kd_handoff_verify_peer(my_role, peer, exporter, own_report, own_manifest,
					   trust, &pr, &pm);
		put_result(pfd[1], r, pm);
		_exit(0);
	}
	close(pfd[1]);
	r = read_result(pfd[0], timeout_ms > 0 ? timeout_ms : 30000, buf, &len);
	close(pfd[0]);
	if (r) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		return kd_fail(r, "peer %c: verifier child gave no answer", peer_role);
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return kd_fail(KD_EIO, "peer %c: verifier child died (status 0x%x)", peer_role, st);
	r = parse_result(buf, len, peer_role, &svn, label);
	if (r)
		return r;
	/* Verified by the child: these are AMD-signed bytes. */
	r = kd_report_parse(peer->report, peer->report_len, &rep);
	if (!r)
		r = kd_manifest_new(&m);
	if (r)
		return r;
	memcpy(m->version, label, sizeof(label));
	m->svn = svn;
	*ret_report = rep;
	*ret_manifest = m;
	return 0;
}
