#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# dracut pre-mount hook: unlock (and on first boot provision) the keyd state
# volumes with the shared logic; the root/fstab mount follows as usual.

[ -r /etc/keyd/volumes ] || return 0 2>/dev/null || exit 0

for m in dm_mod dm_crypt dm_verity xts aesni_intel virtio_console; do
	modprobe -q "$m" 2>/dev/null
done
# shellcheck source=/dev/null
[ -r /etc/keyd/boot.conf ] && . /etc/keyd/boot.conf
# shellcheck source=/dev/null
. /usr/lib/keyd/keyd-unlock.sh

# udev normally creates /dev/virtio-ports/*; this covers images without it.
keyd_setup_virtio_ports
if ! keyd_unlock_all /etc/keyd/volumes; then
	keyd_error "some keyd volumes were not unlocked; see the messages above"
fi
