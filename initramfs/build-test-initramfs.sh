#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Build the small self-contained test initramfs (`make initramfs`): static
# busybox, keyd and its libraries, the token plugin, mke2fs, cryptsetup, the
# kernel modules for virtio, dm-crypt and ext4, initramfs/test-init as /init
# and initramfs/keyd-unlock.sh - the same file the initramfs-tools and dracut
# images run.
#
# The test rig that stands in for SEV-SNP hardware comes along: the CUSE
# daemon keyd-sevguest-cuse (with cuse.ko), the FUSE configfs-tsm tree
# keyd-sevguest-tsm (with configfs.ko) and initramfs/test-sevguest-rig.sh,
# which /init runs before keyd so that /dev/sev-guest exists, backed by
# keyd-simfw on the host. keyd in the image is configured exactly as on
# hardware (no KEYD_SIM): its backend detection finds /dev/sev-guest.
#
# The archive is reproducible (sorted names, mtime 0, uid/gid 0, gzip -n): it
# is measured into the launch digest, so the same inputs must give the same
# bytes and therefore the same sealing key, run after run.
#
# Usage: build-test-initramfs.sh [options] BUILD_DIR
#   -o FILE            output (default BUILD_DIR/initramfs/keyd-test.cpio.gz)
#   --volumes FILE     /etc/keyd/volumes (default: "state /dev/vda ext4 /state defaults")
#   --boot-conf FILE   /etc/keyd/boot.conf, sourced before unlocking (default:
#                      KEYD_TEST_SEVGUEST_PORT=/dev/virtio-ports/org.keyd.sim,
#                      the port the emulated /dev/sev-guest talks through; a
#                      boot.conf without it boots with no /dev/sev-guest)
#   --add SRC=DST      copy SRC into the image at DST (repeatable)
#   --kver VERSION     kernel version (default: newest in /lib/modules with a
#                      /boot/vmlinuz)
#   --modroot DIR      where lib/modules/VERSION is (default /; a kernel
#                      package unpacked with dpkg-deb -x)
#
# Kernel modules are staged once per kernel and module list under
# BUILD_DIR/initramfs/cache, so rebuilding an image takes about a second.
set -euo pipefail
# Never a silent exit: name the line and the command that failed.
on_err() { # STATUS LINE COMMAND
	[[ $- == *e* ]] || return 0
	echo "build-test-initramfs: line $2: \`$3\` failed (exit $1)" >&2
}
set -o errtrace
trap 'on_err "$?" "$LINENO" "$BASH_COMMAND"' ERR

here=$(cd "$(dirname "$0")" && pwd)
out=
volumes=
bootconf=
kver=
modroot=
adds=()

usage() {
	sed -n '/^# Usage:/,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case $1 in
	-o) out=$2; shift 2 ;;
	--volumes) volumes=$2; shift 2 ;;
	--boot-conf) bootconf=$2; shift 2 ;;
	--add) adds+=("$2"); shift 2 ;;
	--kver) kver=$2; shift 2 ;;
	--modroot) modroot=$(cd "$2" && pwd); shift 2 ;;
	-h | --help) usage ;;
	-*) echo "build-test-initramfs: unknown option $1" >&2; usage ;;
	*) break ;;
	esac
done
[ $# -eq 1 ] || usage
build=$(cd "$1" && pwd)
out=${out:-$build/initramfs/keyd-test.cpio.gz}

if [ -z "$kver" ]; then
	for k in $(printf '%s\n' /boot/vmlinuz-* | sort -rV); do
		v=${k#/boot/vmlinuz-}
		if [ -d "/lib/modules/$v" ]; then kver=$v; break; fi
	done
fi
[ -n "$kver" ] || { echo "build-test-initramfs: no kernel with modules found (make deps-vm)" >&2; exit 1; }

moddir=$modroot/lib/modules/$kver
[ -d "$moddir" ] || { echo "build-test-initramfs: $moddir missing" >&2; exit 1; }
for f in "$build/keyd" /bin/busybox; do
	[ -x "$f" ] || { echo "build-test-initramfs: missing $f" >&2; exit 1; }
done

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
umask 022

mkdir -p "$stage"/{bin,sbin,etc/keyd,proc,sys,dev,run,tmp,mnt,root,usr/lib/keyd,lib/x86_64-linux-gnu/cryptsetup,lib64}

# Copy a file to the same path in the image, dereferencing symlinks.
put() { # SRC [DST]
	local dst=${2:-$1}
	mkdir -p "$stage$(dirname "$dst")"
	cp -L "$1" "$stage$dst"
}

# Copy an ELF executable or library with every library ldd names, at the
# path ldd names (the loader searches /lib/x86_64-linux-gnu by default).
put_elf() { # SRC DST
	put "$1" "$2"
	local lib
	for lib in $(ldd "$1" 2>/dev/null | awk '/=> \//{print $3} /^\t\/[^ ]*ld-linux/{print $1}'); do
		[ -e "$stage$lib" ] || put "$lib"
	done
}

# busybox applets as symlinks, never "busybox" itself (ELOOP on exec).
cp /bin/busybox "$stage/bin/busybox"
for applet in $(/bin/busybox --list); do
	case $applet in busybox) continue ;; esac
	[ -e "$stage/bin/$applet" ] || ln -s busybox "$stage/bin/$applet"
done
# The kernel's request_module runs /sbin/modprobe: dm-crypt needs xts(aes).
ln -sf ../bin/busybox "$stage/sbin/modprobe"

put_elf "$build/keyd" /sbin/keyd
put_elf "$(command -v mke2fs)" /usr/lib/keyd/mke2fs
[ -r /etc/mke2fs.conf ] && put /etc/mke2fs.conf
put_elf "$(command -v cryptsetup)" /sbin/cryptsetup
# dm-verity root (keyd-unlock.sh maps it from the measured command line).
put_elf "$(command -v veritysetup)" /sbin/veritysetup
# glibc dlopens libgcc_s for pthread_exit (libargon2's threads); ldd never
# lists it.
# awk reads all of ldconfig's output: an early exit would kill ldconfig with
# SIGPIPE, and under pipefail the build would stop without a word.
libgcc=$(ldconfig -p | awk '/libgcc_s.so.1 .*x86-64/ && !found {print $NF; found = 1}')
[ -n "$libgcc" ] && put "$libgcc" /lib/x86_64-linux-gnu/libgcc_s.so.1
if [ -f "$build/libcryptsetup-token-keyd.so" ]; then
	put_elf "$build/libcryptsetup-token-keyd.so" /lib/x86_64-linux-gnu/cryptsetup/libcryptsetup-token-keyd.so
fi

# Kernel modules and everything they depend on, then a fresh modules.dep.
# dm_integrity, authenc and sha256_ssse3: keyd enroll --integrity (LUKS2
# authenticated encryption, aes-xts-plain64 + hmac(sha256) tags).
# virtio_net (with net_failover, failover) and qemu_fw_cfg: the upgrade
# handoff (keyd-upgrade.sh) - its link to the peer VM, and the host's mode
# and manifest. cuse (with fuse): the test rig's /dev/sev-guest; configfs:
# the mount point of its configfs-tsm tree. dm_verity: a verity root named by
# the measured command line.
mods="virtio virtio_ring virtio_pci virtio_blk virtio_console dm_mod dm_crypt
ext4 crc32c_intel crc32c_generic xts ecb aesni_intel cryptd crypto_simd
dm_integrity authenc sha256_ssse3 virtio_net qemu_fw_cfg cuse configfs dm_verity"
# Staged once per kernel and module list (xz-compressed modules, as Debian's
# 6.12 ships them, are unpacked: busybox's modprobe loads plain .ko files).
cache=$build/initramfs/cache/modules-$kver-$(echo "$mods" | sha256sum | cut -c1-12)
if [ ! -f "$cache/.done" ]; then
	rm -rf "$cache" "$cache.tmp"
	mkdir -p "$cache.tmp"
	for m in $mods; do
		modprobe -d "${modroot:-/}" -S "$kver" --show-depends "$m" 2>/dev/null
	done | awk '$1 == "insmod" {print $2}' | sort -u | while read -r ko; do
		rel=${ko#"$modroot"}
		mkdir -p "$cache.tmp$(dirname "$rel")"
		case $ko in
		*.xz) xz -dc "$ko" >"$cache.tmp${rel%.xz}" ;;
		*) cp "$ko" "$cache.tmp$rel" ;;
		esac
	done
	for f in modules.builtin modules.builtin.modinfo modules.order; do
		if [ -f "$moddir/$f" ]; then
			mkdir -p "$cache.tmp/lib/modules/$kver"
			cp "$moddir/$f" "$cache.tmp/lib/modules/$kver/$f"
		fi
	done
	depmod -b "$cache.tmp" "$kver"
	touch "$cache.tmp/.done"
	mv "$cache.tmp" "$cache"
fi
(cd "$cache" && find . -mindepth 1 ! -name .done | cpio --quiet -pdm "$stage")
echo "$mods" | tr ' ' '\n' >"$stage/etc/keyd/test-modules"

# The test rig's /dev/sev-guest (never part of a production image).
if [ -x "$build/keyd-sevguest-cuse" ]; then
	put_elf "$build/keyd-sevguest-cuse" /usr/lib/keyd/keyd-sevguest-cuse
	install -m 0644 "$here/test-sevguest-rig.sh" "$stage/usr/lib/keyd/test-sevguest-rig.sh"
	# Its configfs-tsm tree (FUSE), mounted when /etc/keyd/test-tsm is present.
	[ -x "$build/keyd-sevguest-tsm" ] &&
		put_elf "$build/keyd-sevguest-tsm" /usr/lib/keyd/keyd-sevguest-tsm
elif [ -z "$bootconf" ]; then
	echo "build-test-initramfs: $build/keyd-sevguest-cuse is missing (make all, libfuse3-dev)" >&2
	exit 1
fi

install -m 0755 "$here/test-init" "$stage/init"
install -m 0755 "$here/keyd-unlock.sh" "$stage/usr/lib/keyd/keyd-unlock.sh"
install -m 0755 "$here/keyd-upgrade.sh" "$stage/usr/lib/keyd/keyd-upgrade.sh"
if [ -n "$volumes" ]; then
	cp "$volumes" "$stage/etc/keyd/volumes"
else
	echo "state /dev/vda ext4 /state defaults" >"$stage/etc/keyd/volumes"
fi
if [ -n "$bootconf" ]; then
	cp "$bootconf" "$stage/etc/keyd/boot.conf"
else
	echo "KEYD_TEST_SEVGUEST_PORT=/dev/virtio-ports/org.keyd.sim" >"$stage/etc/keyd/boot.conf"
fi
for a in "${adds[@]}"; do
	put "${a%%=*}" "${a#*=}"
done
if [ "$(id -u)" = 0 ]; then
	mknod -m 600 "$stage/dev/console" c 5 1
	mknod -m 666 "$stage/dev/null" c 1 3
fi

# Reproducible archive: fixed metadata, sorted names.
find "$stage" -exec touch -h -d @0 {} +
mkdir -p "$(dirname "$out")"
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
	cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -n -6 >"$out.tmp"
mv "$out.tmp" "$out"
echo "initramfs: $out ($(stat -c %s "$out") bytes, kernel $kver)"
