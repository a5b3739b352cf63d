# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=sh
#
# TEST RIG ONLY (the test initramfs and the VM scenarios' mkinitramfs image;
# never installed): the stand-in for SEV-SNP hardware. It starts
# keyd-sevguest-cuse, which creates /dev/sev-guest with the Linux guest
# driver's ioctl ABI and forwards every firmware request to keyd-simfw on
# the host over the virtio-serial port. keyd then runs its production snp
# backend, found by the usual detection, exactly as on a real SEV-SNP guest.
#
# keyd_test_sevguest_start PORT: needs keyd_setup_virtio_ports (keyd-unlock.sh).
# The kernel behaviour the device reproduces follows the running kernel
# (6.1: Debian's 6.1.y with its stable backports; anything newer: 6.12),
# unless /etc/keyd/test-sevguest-abi names one (6.1.0, 6.1.y or 6.12).
#
# An image with /etc/keyd/test-tsm also gets the configfs-tsm report tree
# (keyd_test_tsm_start, with the options on that file's first line): the
# FUSE filesystem keyd-sevguest-tsm at /sys/kernel/config/tsm, whose reports
# go through the emulated /dev/sev-guest as the kernel's sev_guest provider's
# do. keyd's detection still picks /dev/sev-guest first; `--backend tsm`
# selects the tree.

keyd_test_sevguest_start() {
	_sg_port=$1
	_sg_bin=/usr/lib/keyd/keyd-sevguest-cuse
	if [ ! -x "$_sg_bin" ]; then
		echo "keyd-test: $_sg_bin is not in the image"
		return 1
	fi
	modprobe virtio_console 2>/dev/null
	if ! modprobe cuse; then
		echo "keyd-test: modprobe cuse failed"
		return 1
	fi
	# virtio-serial ports show up asynchronously after virtio_console loads.
	_sg_i=0
	while [ ! -e "$_sg_port" ] && [ "$_sg_i" -lt 50 ]; do
		keyd_setup_virtio_ports
		[ -e "$_sg_port" ] || sleep 0.1
		_sg_i=$((_sg_i + 1))
	done
	if [ ! -e "$_sg_port" ]; then
		echo "keyd-test: $_sg_port not found"
		return 1
	fi
	case $(uname -r) in
	6.1.*) _sg_abi=6.1.y ;;
	*) _sg_abi=6.12 ;;
	esac
	[ -r /etc/keyd/test-sevguest-abi ] && read -r _sg_abi </etc/keyd/test-sevguest-abi
	"$_sg_bin" --port "$_sg_port" --kernel-abi "$_sg_abi" </dev/null &
	_sg_i=0
	while [ ! -e /dev/sev-guest ] && [ "$_sg_i" -lt 100 ]; do
		sleep 0.1
		_sg_i=$((_sg_i + 1))
	done
	if [ ! -e /dev/sev-guest ]; then
		echo "keyd-test: /dev/sev-guest did not appear"
		return 1
	fi
	echo "keyd-test: /dev/sev-guest is up (kernel ABI $_sg_abi)"
	if [ -r /etc/keyd/test-tsm ]; then
		_sg_tsm_opts=
		read -r _sg_tsm_opts </etc/keyd/test-tsm || true
		# shellcheck disable=SC2086 # an option list, split on purpose
		keyd_test_tsm_start $_sg_tsm_opts || return 1
	fi
}

# keyd_test_tsm_start [OPTIONS...]: mount the configfs-tsm tree on
# /sys/kernel/config/tsm (keyd-sevguest-tsm OPTIONS: --provider NAME,
# --privlevel-floor N). The initramfs has no configfs mounted, so a tmpfs
# on configfs's mount point holds the tsm/ directory.
keyd_test_tsm_start() {
	_ts_bin=/usr/lib/keyd/keyd-sevguest-tsm
	if [ ! -x "$_ts_bin" ]; then
		echo "keyd-test: $_ts_bin is not in the image"
		return 1
	fi
	modprobe configfs 2>/dev/null
	modprobe fuse 2>/dev/null
	if [ ! -d /sys/kernel/config ]; then
		echo "keyd-test: /sys/kernel/config is missing (configfs)"
		return 1
	fi
	if [ ! -d /sys/kernel/config/tsm ]; then
		mount -t tmpfs -o mode=0755 keyd-test-config /sys/kernel/config &&
			mkdir /sys/kernel/config/tsm || return 1
	fi
	"$_ts_bin" /sys/kernel/config/tsm "$@" </dev/null &
	KEYD_TEST_TSM_PID=$!
	_ts_i=0
	while [ ! -d /sys/kernel/config/tsm/report ] && [ "$_ts_i" -lt 100 ]; do
		sleep 0.1
		_ts_i=$((_ts_i + 1))
	done
	if [ ! -d /sys/kernel/config/tsm/report ]; then
		echo "keyd-test: the configfs-tsm tree did not appear"
		return 1
	fi
	echo "keyd-test: configfs-tsm is up at /sys/kernel/config/tsm ($*)"
}

# keyd_test_tsm_stop: unmount the tree; its daemon exits.
keyd_test_tsm_stop() {
	umount /sys/kernel/config/tsm || return 1
	[ -n "${KEYD_TEST_TSM_PID:-}" ] && wait "$KEYD_TEST_TSM_PID"
	KEYD_TEST_TSM_PID=
	return 0
}
