#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# dracut initqueue/settled job (sourced by the initqueue, with dracut-lib.sh):
# map the verity root named by the measured command line, then unlock (and
# on first boot provision) the keyd state volumes with the shared logic.
# Once, once udev has settled: the root device, and with systemd
# sysroot.mount, appear only after keyd has mapped and checked the root.

[ -r /etc/keyd/volumes ] || return 0
[ -e /run/keyd/dracut.done ] && return 0

for m in dm_mod dm_crypt dm_verity xts aesni_intel virtio_console qemu_fw_cfg; do
	modprobe -q "$m" 2>/dev/null
done
# shellcheck source=/dev/null
[ -r /etc/keyd/boot.conf ] && . /etc/keyd/boot.conf
# shellcheck source=initramfs/keyd-unlock.sh
. /usr/lib/keyd/keyd-unlock.sh
# shellcheck source=initramfs/keyd-upgrade.sh
. /usr/lib/keyd/keyd-upgrade.sh

# udev normally creates /dev/virtio-ports/*; this covers images without it.
keyd_setup_virtio_ports

# A new version asked by the host to receive its keyslot: nothing is opened,
# the launch ends once the handoff is over.
if [ "$(keyd_upgrade_mode)" = upgrade ]; then
	modprobe -q virtio_net 2>/dev/null
	if keyd_upgrade_receive; then
		keyd_log "upgrade: keyslot received; powering off"
	else
		keyd_error "upgrade: no keyslot received; powering off"
	fi
	sync
	poweroff -f
fi

keyd_unlock_all /etc/keyd/volumes
keyd_failed=$?
# keyd-finished.sh lets the initqueue finish.
mkdir -p /run/keyd
: >/run/keyd/dracut.done
# A root keyd refused (not the one the measured command line names) is not
# booted: no state key exists for it. dracut's die stops the boot.
if [ "$(cat "$KEYD_RUN/root.state" 2>/dev/null)" = refused ]; then
	die "keyd: the root is not the one the measured command line names; not booting it"
fi
if [ "$keyd_failed" -ne 0 ]; then
	keyd_error "$keyd_failed volume(s) not unlocked; see the messages above"
fi
