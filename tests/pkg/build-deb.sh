#!/bin/bash
# Build the Debian packages from a copy of the tree (dpkg-buildpackage -us -uc
# -b), check them with lintian (no errors allowed), and check that the
# simulator is in keyd-simfw only. Packages land in $1 (default build/deb).
set -euo pipefail
cd "$(dirname "$0")/../.."
src=$PWD
out=${1:-$src/build/deb}
work=$(mktemp -d /tmp/keyd-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
step() { echo "deb: $*"; }
trap 'echo "deb: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

step "copying the tree (tracked and new files, no build output)"
mkdir -p "$work/keyd"
git ls-files --cached --others --exclude-standard -z |
	tar --null -T - -cf - | tar -xf - -C "$work/keyd"
step "dpkg-buildpackage -us -uc -b"
(cd "$work/keyd" && dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1) || {
	tail -n 30 "$work/build.log" >&2
	exit 1
}
mkdir -p "$out"
rm -f "$out"/*.deb
cp "$work"/*.deb "$out"/
step "lintian"
lintian --fail-on error --tag-display-limit 0 "$work"/*.changes >"$work/lintian.log" 2>&1 || {
	cat "$work/lintian.log" >&2
	exit 1
}
grep -c '^E:' "$work/lintian.log" >"$work/nerr" || true
[ "$(cat "$work/nerr")" -eq 0 ] || { cat "$work/lintian.log" >&2; exit 1; }

step "the simulator is in keyd-simfw only"
for d in "$out"/*.deb; do
	name=$(dpkg-deb -f "$d" Package)
	dpkg-deb -c "$d" | awk '{print $NF}' >"$work/list"
	case $name in
	keyd-simfw | keyd-simfw-dbgsym) continue ;;
	esac
	if grep -i 'simfw' "$work/list" >"$work/hit"; then
		echo "deb: $name carries the simulator: $(tr '\n' ' ' <"$work/hit")" >&2
		exit 1
	fi
done
dpkg-deb -c "$out"/keyd-simfw_*.deb | awk '{print $NF}' >"$work/list"
grep -F './usr/sbin/keyd-simfw' "$work/list" >/dev/null || { echo "deb: keyd-simfw lacks its binary" >&2; exit 1; }
ls "$out"
step "ok: $(find "$out" -name '*.deb' | wc -l) packages, lintian clean"
