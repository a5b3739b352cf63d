#!/bin/bash
# make install DESTDIR=...: the production tree holds keyd, keyd-recover, the
# token plugin, the man pages and the boot scripts, and nothing of the
# simulated AMD-SP (no keyd-simfw, no simulator man page, no simulator code
# linked into any installed binary); make install-simfw is the test-rig extra.
set -euo pipefail
# shellcheck source=tests/lib.bash
. "$(dirname "$0")/../lib.bash"
kd_loud

: "${KEYD_SRC:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${KEYD_BUILD:=$KEYD_SRC/build}"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

B_REL=$(realpath --relative-to="$KEYD_SRC" "$KEYD_BUILD")
make -C "$KEYD_SRC" --no-print-directory B="$B_REL" install DESTDIR="$tmp/prod" >"$tmp/log" 2>&1 ||
	fail "make install: $(tail -n 5 "$tmp/log")"
find "$tmp/prod" -type f | sed "s|^$tmp/prod||" | sort >"$tmp/files"

for want in /usr/sbin/keyd /usr/sbin/keyd-recover /usr/lib/keyd/keyd-unlock.sh \
	/usr/lib/keyd/keyd-upgrade.sh /usr/lib/keyd/keyscript /usr/share/man/man8/keyd.8 \
	/usr/share/man/man8/keyd-recover.8 /usr/share/initramfs-tools/hooks/keyd \
	/usr/share/initramfs-tools/scripts/local-top/keyd \
	/usr/lib/dracut/modules.d/90keyd/module-setup.sh /usr/lib/keyd/keyd-commit-pending \
	/usr/lib/keyd/keyd-handoff-serve /lib/systemd/system/keyd-commit.service \
	/lib/systemd/system/keyd-handoff-serve.service; do
	grep -qxF "$want" "$tmp/files" || fail "make install does not install $want"
done
# No test-only code in an installed script: the simulator's socket, the
# key-file benchmark baseline.
if grep -l -E 'KEYD_SIM=|KEYD_SIM:-|test-keyfile|keyd_keyfile_open' \
	"$tmp/prod"/usr/lib/keyd/* "$tmp/prod"/usr/share/initramfs-tools/*/keyd \
	"$tmp/prod"/usr/share/initramfs-tools/scripts/local-top/keyd \
	"$tmp/prod"/usr/lib/dracut/modules.d/90keyd/* "$tmp/prod"/lib/systemd/system/keyd-* >"$tmp/testcode" 2>/dev/null; then
	fail "test-only code in installed scripts: $(tr '\n' ' ' <"$tmp/testcode")"
fi
grep -qE '/cryptsetup/libcryptsetup-token-keyd\.so$' "$tmp/files" || fail "no token plugin installed"
if grep -i -E 'simfw|sevguest' "$tmp/files" >"$tmp/sim"; then
	fail "production install holds the simulator: $(tr '\n' ' ' <"$tmp/sim")"
fi
# No simulated-firmware code in any installed ELF file.
while read -r f; do
	case $(head -c 4 "$tmp/prod$f" | od -An -c | tr -d ' ') in
	177ELF) ;;
	*) continue ;;
	esac
	nm -D --defined-only "$tmp/prod$f" >"$tmp/dsyms" 2>/dev/null || true
	nm --defined-only "$tmp/prod$f" >"$tmp/syms" 2>/dev/null || true
	if grep -E 'kd_sim_(chip|fw|derive|report|handle|serve)' "$tmp/syms" "$tmp/dsyms" >"$tmp/hit"; then
		fail "$f links simulated-firmware code: $(head -c 200 "$tmp/hit")"
	fi
done <"$tmp/files"

make -C "$KEYD_SRC" --no-print-directory B="$B_REL" install-simfw DESTDIR="$tmp/rig" >"$tmp/log" 2>&1 ||
	fail "make install-simfw: $(tail -n 5 "$tmp/log")"
[ -x "$tmp/rig/usr/sbin/keyd-simfw" ] || fail "install-simfw does not install keyd-simfw"
nm "$tmp/rig/usr/sbin/keyd-simfw" | grep -c 'kd_sim_fw_new' >"$tmp/n" || true
[ "$(cat "$tmp/n")" -ge 1 ] || fail "the check above cannot see simulator symbols (keyd-simfw has none)"
echo "PASS: production install has no simulator; install-simfw has it"
