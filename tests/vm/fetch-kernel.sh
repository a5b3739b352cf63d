#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# fetch-kernel.sh DIR [PACKAGE]: a Debian kernel for the VM scenarios,
# unpacked (not installed: the host's own boot setup is left alone) into
# DIR/<package>, and that directory printed. PACKAGE defaults to
# linux-image-6.12-amd64, Debian 12's 6.12 from bookworm-security; a
# meta-package is resolved to the kernel it depends on. Reruns reuse the
# unpacked tree. Exits 1 with one line saying why when apt has no such
# kernel (e.g. the security archive is not in sources.list).
set -euo pipefail
dir=${1:?usage: fetch-kernel.sh DIR [PACKAGE]}
pkg=${2:-linux-image-6.12-amd64}

real=$(apt-cache depends "$pkg" 2>/dev/null |
	awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ && !x {x = $2} END {print x}')
real=${real:-$pkg}
if ! apt-cache show "$real" >/dev/null 2>&1; then
	echo "fetch-kernel: apt knows no package $real (is bookworm-security in sources.list? apt-get update)" >&2
	exit 1
fi
root=$dir/$real
if [ ! -f "$root/.done" ]; then
	rm -rf "$root" "$root.tmp"
	mkdir -p "$root.tmp/deb"
	(cd "$root.tmp/deb" && apt-get download "$real" >/dev/null 2>&1) ||
		{ echo "fetch-kernel: apt-get download $real failed" >&2; exit 1; }
	dpkg-deb -x "$root.tmp"/deb/*.deb "$root.tmp"
	rm -rf "$root.tmp/deb"
	for m in "$root.tmp"/lib/modules/*; do
		depmod -b "$root.tmp" "${m##*/}"
	done
	touch "$root.tmp/.done"
	mv "$root.tmp" "$root"
fi
echo "$root"
