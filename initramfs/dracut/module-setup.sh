#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# dracut module "keyd": the same content as the initramfs-tools hook, and an
# initqueue job that runs the shared unlock logic (keyd-unlock.sh), or, when
# the host's boot mode is "upgrade", receives a keyslot (keyd-upgrade.sh).
# Installed as /usr/lib/dracut/modules.d/90keyd/.
#
# The job runs in the initqueue (initqueue/settled), not in pre-mount: keyd
# maps the verity root (/dev/mapper/root) that the initqueue, and with
# systemd sysroot.mount, wait for, so the root exists only once keyd has run.
# initqueue/finished holds the queue until keyd is done, also when the root
# is on a plain disk that is there at once.
# shellcheck disable=SC2154  # moddir and initdir are set by dracut

# Only included when there is something to unlock (or when asked for).
check() {
	require_binaries keyd mke2fs veritysetup ip || return 1
	[ -r /etc/keyd/volumes ] || return 255
	return 0
}

depends() {
	echo dm
	return 0
}

installkernel() {
	instmods dm_crypt dm_verity xts ecb aesni_intel cryptd crypto_simd virtio_console ext4 \
		qemu_fw_cfg virtio_net
}

install() {
	inst_multiple keyd mke2fs veritysetup ip
	# What keyd-unlock.sh and keyd-upgrade.sh run besides keyd: a dracut
	# image has no busybox to bring them (keyd_is_blank reads with dd and
	# counts with wc; without them every blank disk would look used).
	inst_multiple cat dd wc tr mkdir ln rm sleep mount sync
	inst_multiple -o blkid findfs
	inst_simple /usr/lib/keyd/keyd-unlock.sh
	inst_simple /usr/lib/keyd/keyd-upgrade.sh
	inst_simple /etc/keyd/volumes
	local f
	# Measured with the image: what the handoff and a pending slot at boot
	# are judged by (release keys, ARK off hardware, the pinned floors).
	for f in boot.conf release-keys.json ark.pem tcb-floor no-tcb-floor peer-svn-floor \
		no-peer-svn-floor; do
		[ -r "/etc/keyd/$f" ] && inst_simple "/etc/keyd/$f"
	done
	[ -r /etc/mke2fs.conf ] && inst_simple /etc/mke2fs.conf
	# Token plugin (dlopened by libcryptsetup) and libgcc_s (dlopened by
	# glibc for thread cancellation): neither shows up in ldd.
	inst_libdir_file "cryptsetup/libcryptsetup-token-keyd.so" "libgcc_s.so*"
	inst_hook initqueue/settled 50 "$moddir/keyd-unlock-hook.sh"
	inst_hook initqueue/finished 50 "$moddir/keyd-finished.sh"
	# With systemd, dracut-initqueue.service runs only when asked to.
	dracut_need_initqueue
}
