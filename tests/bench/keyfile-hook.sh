# shellcheck shell=sh
# SPDX-License-Identifier: Apache-2.0
#
# Benchmark baseline only (tests/bench/boot.sh): shipped in the key-file
# image as /etc/keyd/test-hook.sh, which the test /init sources after
# keyd-unlock.sh. It replaces keyd_unlock_volume with the same flow on a
# plain LUKS2 volume and the key file /etc/keyd/plain.key (PBKDF2, 1000
# iterations): no keyd, no AMD-SP. The key sits in the initramfs, which the
# host can read, so nothing like it is in any production script.

keyd_unlock_volume() {
	_kf_name=$1 _kf_fs=$3 _kf_key=/etc/keyd/plain.key
	mkdir -p "$KEYD_RUN"
	echo failed >"$KEYD_RUN/$_kf_name.state"
	_kf_dev=$(keyd_resolve "$2") || return 1
	_kf_state=unlocked
	if keyd_is_blank "$_kf_dev"; then
		cryptsetup luksFormat -q --type luks2 --cipher aes-xts-plain64 --key-size 512 \
			--sector-size 4096 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
			--key-file "$_kf_key" "$_kf_dev" || return 1
		_kf_state=provisioned
	fi
	cryptsetup open --type luks2 --key-file "$_kf_key" "$_kf_dev" "$_kf_name" || return 1
	if [ "$_kf_state" = provisioned ]; then
		keyd_mkfs "$_kf_fs" "/dev/mapper/$_kf_name" "$_kf_name" || return 1
	fi
	echo "$_kf_state" >"$KEYD_RUN/$_kf_name.state"
}
