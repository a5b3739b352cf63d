#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# A real GuestOS for the systemd scenarios (tests/vm/1[2-9]-systemd-*.sh):
# a minimal Debian 12 systemd root filesystem (mmdebstrap from Debian's
# archive), keyd installed into it from its own .deb packages, made a
# read-only dm-verity root whose hash goes on the measured kernel command
# line, and an initramfs built by Debian's mkinitramfs with the hook and
# local-top script of the keyd-initramfs-tools package. The state volume
# (/dev/vda) is unlocked in the initramfs and mounted by systemd at
# /var/lib/keyd-state from the root's /etc/fstab.
#
# With GUESTOS_INITRAMFS=dracut the initramfs is built by dracut instead,
# run inside the image (Debian 12's dracut-core, in the image's package list)
# with the module of the keyd-dracut package, installed from its .deb.
#
# The first run downloads the base system (about 70 MB of packages) and
# keeps it as a tarball in $KEYD_BUILD/vm-cache; reruns reuse it. The dracut
# image has a base tarball of its own (the same packages and dracut-core).
#
# Sourced after tests/vm/lib.sh. Test-rig parts (the emulated /dev/sev-guest
# and the report unit) come from tests/vm/fixtures/ and are never installed.
# shellcheck disable=SC2034 # VM_QEMU_EXTRA, VM_LOG_O/N are read by vm_boot and the scenarios

GUESTOS_SUITE=bookworm
GUESTOS_MIRROR=${GUESTOS_MIRROR:-http://deb.debian.org/debian}
GUESTOS_PKGS="systemd-sysv,udev,kmod,dmsetup,iproute2,e2fsprogs,cryptsetup-bin,libcryptsetup12,libjson-c5,libgfshare2,libssl3,libdevmapper1.02.1,libblkid1"
GUESTOS_CACHE=$KEYD_BUILD/vm-cache
# initramfs-tools (Debian's mkinitramfs, on the host) or dracut (in the image).
GUESTOS_INITRAMFS=${GUESTOS_INITRAMFS:-initramfs-tools}
# A systemd boot under TCG on a loaded host takes minutes.
GUESTOS_TIMEOUT=${GUESTOS_TIMEOUT:-900}
# systemd.verity=no: the initramfs has mapped /dev/mapper/root from the
# measured roothash= and keyd has checked its table before releasing any
# key; systemd-veritysetup-generator, seeing the same roothash=, would make
# systemd-veritysetup@root.service map "root" a second time in the real
# root, which fails (the name exists) and leaves a failed unit behind.
# net.ifnames=0: the upgrade handoff's link is eth0 (keyd-upgrade.sh).
# fsck.mode=skip: a dm-verity root is read-only by construction (fsck of it
# fails to open it read-write) and its integrity is verity's job.
GUESTOS_BASE_APPEND="console=ttyS0 panic=-1 no_timer_check root=/dev/mapper/root ro rootfstype=ext4 systemd.show_status=0 systemd.verity=no net.ifnames=0 fsck.mode=skip"

# guestos_base [EXTRA] -> prints the path of the cached base rootfs tarball
# (GUESTOS_PKGS, plus the comma list EXTRA: another tarball of its own).
guestos_base() {
	local key tar pkgs=$GUESTOS_PKGS${1:+,$1}
	key=$(printf '%s %s %s' "$GUESTOS_SUITE" "$GUESTOS_MIRROR" "$pkgs" | sha256sum | cut -c1-12)
	tar=$GUESTOS_CACHE/guestos-base-$key.tar
	if [ ! -s "$tar" ]; then
		mkdir -p "$GUESTOS_CACHE"
		command -v mmdebstrap >/dev/null || { echo "guestos: mmdebstrap missing (make deps-vm)" >&2; return 1; }
		if ! mmdebstrap --variant=minbase --format=tar --include="$pkgs" "$GUESTOS_SUITE" "$tar.tmp" \
			"$GUESTOS_MIRROR" >"$GUESTOS_CACHE/mmdebstrap.log" 2>&1; then
			echo "guestos: mmdebstrap failed:" >&2
			tail -n 20 "$GUESTOS_CACHE/mmdebstrap.log" >&2
			rm -f "$tar.tmp"
			return 1
		fi
		mv "$tar.tmp" "$tar"
	fi
	echo "$tar"
}

# guestos_debs -> prints the directory holding keyd's .deb packages
# (built by `make deb`, or here when missing).
guestos_debs() {
	local d=$KEYD_BUILD/deb
	if ! compgen -G "$d/keyd_*.deb" >/dev/null; then
		"$KEYD_SRC/tests/pkg/build-deb.sh" "$d" >"$GUESTOS_CACHE/deb.log" 2>&1 || {
			echo "guestos: building the .deb packages failed:" >&2
			tail -n 20 "$GUESTOS_CACHE/deb.log" >&2
			return 1
		}
	fi
	echo "$d"
}

# guestos_build DIR VERSION [CUSTOMIZE]: a GuestOS release in DIR: root.img (ext4),
# root.hash (its verity hash tree), verity.txt (veritysetup format's output),
# initrd.img (mkinitramfs, or dracut: GUESTOS_INITRAMFS), cmdline (the
# measured command line), and the keyd packages unpacked in DIR/pkg.
# VERSION lands in /etc/keyd/image-version of the root, so two versions
# have two root hashes and two measurements.
# CUSTOMIZE, a function, is called with the root directory before the root
# image is made.
guestos_build() {
	local dir=$1 version=$2 custom=${3:-} base debs r d size
	case $GUESTOS_INITRAMFS in
	initramfs-tools) base=$(guestos_base) || return 1 ;;
	dracut) base=$(guestos_base dracut-core) || return 1 ;;
	*) echo "guestos: GUESTOS_INITRAMFS=$GUESTOS_INITRAMFS (initramfs-tools or dracut)" >&2; return 1 ;;
	esac
	debs=$(guestos_debs) || return 1
	rm -rf "$dir"
	mkdir -p "$dir/root" "$dir/pkg" "$dir/conf" "$dir/keydconf"
	r=$dir/root
	tar -xf "$base" -C "$r"

	# keyd from its own packages, as a GuestOS image build would install it.
	mkdir -p "$r/tmp/debs"
	cp "$debs"/keyd_*.deb "$debs"/libcryptsetup-token-keyd_*.deb "$r/tmp/debs/"
	[ "$GUESTOS_INITRAMFS" = initramfs-tools ] || cp "$debs"/keyd-dracut_*.deb "$r/tmp/debs/"
	chroot "$r" /bin/sh -c 'dpkg -i /tmp/debs/*.deb' >"$dir/dpkg.log" 2>&1 ||
		{ tail -n 20 "$dir/dpkg.log" >&2; return 1; }
	rm -rf "$r/tmp/debs"
	for d in "$debs"/keyd_*.deb "$debs"/keyd-initramfs-tools_*.deb "$debs"/libcryptsetup-token-keyd_*.deb; do
		dpkg-deb -x "$d" "$dir/pkg"
	done

	mkdir -p "$r/etc/keyd"
	echo "$version" >"$r/etc/keyd/image-version"
	echo guestos >"$r/etc/hostname"
	: >"$r/etc/machine-id"
	mkdir -p "$r/var/lib/keyd-state"
	cat >"$r/etc/fstab" <<'FSTAB'
/dev/mapper/root / ext4 ro 0 0
/dev/mapper/state /var/lib/keyd-state ext4 defaults,nofail,x-systemd.device-timeout=60s 0 0
FSTAB
	echo "state /dev/vda ext4 - defaults" >"$r/etc/keyd/volumes"
	# The release keys this run signs manifests with, and the simulated
	# chip's ARK (vm_release_setup): in the root for the handoff served by
	# keyd-handoff-serve.service, in the initramfs for the upgrade mode.
	# The revocation floor is 1, the svn of the first release: keyd-commit
	# in the root and the initramfs judge a pending slot's maker by it.
	if [ -r "${VM_RELEASE:-}/release-keys.json" ]; then
		cp "$VM_RELEASE/release-keys.json" "$r/etc/keyd/release-keys.json"
		cp "$VM_RELEASE/certs/ark.pem" "$r/etc/keyd/ark.pem"
		echo 1 >"$r/etc/keyd/peer-svn-floor"
	fi
	# The kernel is the host's (tests/vm/lib.sh): the root gets the modules
	# its units load after switch_root (the handoff's NIC and fw_cfg).
	local ko
	for ko in $(modprobe -S "$VM_KVER" ${VM_KROOT:+-d "$VM_KROOT"} --show-depends virtio_net qemu_fw_cfg |
		sed -n 's/^insmod \([^ ]*\).*/\1/p'); do
		mkdir -p "$r$(dirname "${ko#"$VM_KROOT"}")"
		cp "$ko" "$r${ko#"$VM_KROOT"}"
	done
	cp "$VM_KROOT/lib/modules/$VM_KVER"/modules.{order,builtin,builtin.modinfo} "$r/lib/modules/$VM_KVER/"
	depmod -b "$r" "$VM_KVER"
	install -m 0755 "$KEYD_SRC/tests/vm/fixtures/guestos/keyd-test-report" "$r/usr/local/sbin/keyd-test-report"
	install -m 0644 "$KEYD_SRC/tests/vm/fixtures/guestos/keyd-test-report.service" \
		"$r/etc/systemd/system/keyd-test-report.service"
	mkdir -p "$r/etc/systemd/system/multi-user.target.wants"
	ln -sf ../keyd-test-report.service "$r/etc/systemd/system/multi-user.target.wants/keyd-test-report.service"
	# No login prompt on the console the scenarios read.
	ln -sf /dev/null "$r/etc/systemd/system/serial-getty@ttyS0.service"
	ln -sf /dev/null "$r/etc/systemd/system/getty@tty1.service"

	[ -z "$custom" ] || "$custom" "$r" || return 1

	# No documentation, locales or package lists in an image nobody logs
	# into: a smaller root is a shorter full verity check.
	rm -rf "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/usr/share/info/* \
		"$r"/usr/share/locale/* "$r"/var/cache/apt/* "$r"/var/lib/apt/lists/*
	# The read-only root: ext4 with 4 KiB blocks (dm-verity's block size),
	# its content plus a quarter, its hash tree on its own disk.
	size=$(du -sm "$r" | cut -f1)
	truncate -s "$((size * 5 / 4 + 16))M" "$dir/root.img"
	mkfs.ext4 -q -b 4096 -L guestos-root -d "$r" "$dir/root.img"
	truncate -s 16M "$dir/root.hash"
	veritysetup format "$dir/root.img" "$dir/root.hash" >"$dir/verity.txt"

	if [ "$GUESTOS_INITRAMFS" = dracut ]; then
		guestos_dracut "$dir" "$r" || return 1
	else
		guestos_mkinitramfs "$dir" "$r" || return 1
	fi

	"$KEYD_BUILD/keyd" root cmdline --verity-output "$dir/verity.txt" --append "$GUESTOS_BASE_APPEND" \
		--data /dev/vdb --hash /dev/vdc >"$dir/cmdline"
	rm -rf "$r"
}

# guestos_mkinitramfs DIR ROOT: DIR/initrd.img by Debian's mkinitramfs on the
# host, from the image's keyd configuration in ROOT.
guestos_mkinitramfs() {
	local dir=$1 r=$2
	# The initramfs: Debian's mkinitramfs, keyd's packaged hook and
	# local-top script, the state volume's configuration, and the test rig's
	# emulated /dev/sev-guest (tests/vm/fixtures, as in scenario 05).
	local conf=$dir/conf keydconf=$dir/keydconf
	vm_mkinitramfs_conf "$conf" "$dir/pkg/usr/share/initramfs-tools" virtio_pci virtio_blk ext4 dm_verity
	cp "$r/etc/keyd/volumes" "$keydconf/volumes"
	cp "$r"/etc/keyd/release-keys.json "$r"/etc/keyd/ark.pem "$r"/etc/keyd/peer-svn-floor \
		"$keydconf/" 2>/dev/null || true
	# Two TCG guests booting side by side: N in upgrade mode waits for O to
	# reach multi-user.target and serve, which takes minutes here.
	printf '%s\n' "KEYD_TEST_SEVGUEST_PORT=/dev/virtio-ports/$VM_SIM_PORT" \
		"KEYD_UPGRADE_TIMEOUT=$GUESTOS_TIMEOUT" >"$keydconf/boot.conf"
	KEYD_BIN=$dir/pkg/usr/sbin/keyd KEYD_CONFDIR=$keydconf \
		KEYD_UNLOCK_SH=$dir/pkg/usr/lib/keyd/keyd-unlock.sh \
		KEYD_TOKEN_PLUGIN=$(echo "$dir"/pkg/usr/lib/*/cryptsetup/libcryptsetup-token-keyd.so) \
		KEYD_SEVGUEST_CUSE=$KEYD_BUILD/keyd-sevguest-cuse \
		KEYD_SEVGUEST_RIG=$KEYD_SRC/initramfs/test-sevguest-rig.sh \
		SOURCE_DATE_EPOCH=0 \
		mkinitramfs -d "$conf" -o "$dir/initrd.img" "$VM_KVER" >"$dir/mkinitramfs.log" 2>&1 ||
		{ tail -n 20 "$dir/mkinitramfs.log" >&2; return 1; }
}

# guestos_dracut DIR ROOT: DIR/initrd.img by dracut run inside the image
# ROOT (after its root image is made: nothing added here reaches the root),
# with the module of the keyd-dracut package installed there, and the test
# rig's emulated /dev/sev-guest from tests/vm/fixtures/dracut (a module of
# its own, as scenario 12's mkinitramfs image gets it from a hook).
guestos_dracut() {
	local dir=$1 r=$2 lib rc
	# The kernel's module tree: dracut resolves each driver's dependencies.
	rm -rf "$r/lib/modules/$VM_KVER"
	cp -a "$VM_KROOT/lib/modules/$VM_KVER" "$r/lib/modules/"
	# The rig: keyd-sevguest-cuse with the libraries the image lacks
	# (libfuse3), the rig script, its dracut module, and the port to use.
	install -m 0755 "$KEYD_BUILD/keyd-sevguest-cuse" "$r/usr/lib/keyd/keyd-sevguest-cuse"
	install -m 0644 "$KEYD_SRC/initramfs/test-sevguest-rig.sh" "$r/usr/lib/keyd/test-sevguest-rig.sh"
	for lib in $(ldd "$KEYD_BUILD/keyd-sevguest-cuse" | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p'); do
		[ -e "$r$lib" ] || cp -L "$lib" "$r$lib"
	done
	cp -r "$KEYD_SRC/tests/vm/fixtures/dracut/91keyd-test-sevguest" "$r/usr/lib/dracut/modules.d/"
	printf '%s\n' "KEYD_TEST_SEVGUEST_PORT=/dev/virtio-ports/$VM_SIM_PORT" \
		"KEYD_UPGRADE_TIMEOUT=$GUESTOS_TIMEOUT" >"$r/etc/keyd/boot.conf"
	# keyd's module is included by its own check (/etc/keyd/volumes); the
	# rig's is asked for. --no-hostonly: an image for any VM, not this host.
	# The drivers are the ones this VM boots with: dracut's qemu module
	# (virtio), keyd's (dm-crypt, dm-verity, ext4, virtio-console, fw_cfg)
	# and the rig's (cuse), without the catch-all kernel-modules modules
	# (every storage driver and filesystem: a three times larger image).
	# dracut reads /proc (findmnt, bash's process substitution).
	mount -t proc proc "$r/proc" || return 1
	rc=0
	SOURCE_DATE_EPOCH=0 chroot "$r" dracut --force --no-hostonly --reproducible --gzip \
		--omit "kernel-modules kernel-modules-extra" --kver "$VM_KVER" --add keyd-test-sevguest \
		/tmp/initrd.img >"$dir/dracut.log" 2>&1 || rc=$?
	umount "$r/proc" || return 1
	[ "$rc" -eq 0 ] || { tail -n 20 "$dir/dracut.log" >&2; return 1; }
	mv "$r/tmp/initrd.img" "$dir/initrd.img"
}

# guestos_mkfs_unit ROOT NAME: a test-only unit in ROOT that puts ext4 on
# /dev/mapper/NAME, opened by systemd-cryptsetup, when it has no filesystem
# yet. fstab's x-systemd.makefs cannot: systemd does not consider a dm-crypt
# device without a filesystem ready (99-systemd.rules), so the mount and its
# makefs job wait for it in vain. After mkfs, udev's change event makes the
# device ready and the fstab mount proceeds.
guestos_mkfs_unit() {
	local root=$1 name=$2 unit
	unit=keyd-test-mkfs-$name.service
	cat >"$root/etc/systemd/system/$unit" <<UNIT
# Test fixture (only in the test GuestOS image): first-use mkfs.
[Unit]
Description=keyd test: ext4 on a blank /dev/mapper/$name
After=systemd-cryptsetup@$name.service
Requires=systemd-cryptsetup@$name.service

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'blkid -p /dev/mapper/$name >/dev/null || mkfs.ext4 -q /dev/mapper/$name'

[Install]
WantedBy=multi-user.target
UNIT
	ln -sf "../$unit" "$root/etc/systemd/system/multi-user.target.wants/$unit"
}

# guestos_launch NAME DIR STATE_DISK [APPEND] [ROOT_IMG]: boot the GuestOS of
# DIR (its own command line unless APPEND is given; another root image with
# ROOT_IMG, no root disks at all with "none") with its simulator; console in
# $VM_WORK/NAME.console. The array GUESTOS_QEMU_EXTRA, when set, is added to
# QEMU's arguments (the handoff's NIC and fw_cfg files).
guestos_launch() {
	local name=$1 dir=$2 disk=$3 append=${4:-} rootimg=${5:-} rc
	[ -n "$append" ] || append=$(cat "$dir/cmdline")
	[ -n "$rootimg" ] || rootimg=$dir/root.img
	VM_QEMU_EXTRA=()
	[ "$rootimg" = none ] || VM_QEMU_EXTRA=(-drive "file=$rootimg,if=virtio,format=raw,readonly=on"
		-drive "file=$dir/root.hash,if=virtio,format=raw,readonly=on")
	VM_QEMU_EXTRA+=(${GUESTOS_QEMU_EXTRA[@]+"${GUESTOS_QEMU_EXTRA[@]}"})
	VM_TIMEOUT=$GUESTOS_TIMEOUT vm_launch "$name" "$dir/initrd.img" "$append" "$disk"
	rc=$?
	VM_QEMU_EXTRA=()
	return "$rc"
}

# guestos_handoff NAME O_DIR O_MANIFEST DISK N_DIR N_MANIFEST: the running
# version O (its root, command line and DISK, host boot mode serve-upgrade:
# keyd-handoff-serve.service serves after multi-user.target) and the new
# version N (no disk at all, boot mode upgrade: its initramfs receives and
# powers off) side by side on one link (upgrade-lib.sh). Consoles in
# $VM_WORK/NAME-O.console and NAME-N.console (VM_LOG_O, VM_LOG_N). Returns
# non-zero if either VM did not power off by itself.
guestos_handoff() {
	local name=$1 od=$2 om=$3 disk=$4 nd=$5 nm=$6 po pn ro=0 rn=0 opid npid
	po=$(vm_udp_port)
	pn=$(vm_udp_port)
	while [ "$pn" = "$po" ]; do pn=$(vm_udp_port); done
	VM_LOG_O=$VM_WORK/$name-O.console
	VM_LOG_N=$VM_WORK/$name-N.console
	(
		mapfile -t GUESTOS_QEMU_EXTRA < <(vm_net_args "$po" "$pn" 01 serve-upgrade "$om")
		guestos_launch "$name-O" "$od" "$disk"
	) &
	opid=$!
	(
		mapfile -t GUESTOS_QEMU_EXTRA < <(vm_net_args "$pn" "$po" 02 upgrade "$nm")
		guestos_launch "$name-N" "$nd" "" "" none
	) &
	npid=$!
	wait "$opid" || ro=$?
	wait "$npid" || rn=$?
	[ "$ro" -eq 0 ] && [ "$rn" -eq 0 ]
}
