#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# keyd boot logic, shared by every initramfs flavour: the initramfs-tools
# local-top script, the dracut hook and the self-contained test /init all
# source this file and call keyd_unlock_all. Keeping one copy means the VM
# tests exercise exactly what a Debian or dracut image runs.
#
# /etc/keyd/volumes: one volume per line, '#' starts a comment:
#
#   NAME  DEVICE  FS  MOUNTPOINT  OPTIONS
#
#   NAME        dm name; the volume appears as /dev/mapper/NAME
#   DEVICE      /dev/path, UUID=..., LABEL=..., PARTLABEL=...
#               (a blank disk has no UUID yet: use a path or PARTLABEL for
#               volumes that are provisioned on first boot)
#   FS          filesystem created on first boot (ext4, ext3, ext2, xfs...,
#               or "none" to leave the mapping unformatted)
#   MOUNTPOINT  where keyd_mount_all mounts it, "-" for "leave it to fstab"
#   OPTIONS     comma list: keyd options below, the rest goes to mount(8)
#               ("defaults" when there is nothing to say)
#       noformat           never provision: a blank device is an error
#       label=TEXT         label recorded in the keyd token on provisioning
#       integrity          provision with keyd enroll --integrity (HMAC-SHA256
#                          tags through dm-integrity; writes the whole device)
#       integrity-no-wipe  the same without the initial full-device write
#       escrow=DIR         provision with a k-of-n recovery escrow: one share
#                          per admin certificate in DIR (keyd enroll --escrow,
#                          keyd-recover(8)); DIR sits in the measured image
#       escrow-threshold=K shares needed to recover (default 2)
#
# Environment: KEYD (keyd binary, default "keyd" on PATH), KEYD_SIM (passed
# through to keyd: "serial:/dev/virtio-ports/org.keyd.sim" selects the
# simulated AMD-SP), KEYD_DEVICE_TIMEOUT (seconds to wait for a device,
# default 10), KEYD_RUN (state directory, default /run/keyd),
# KEYD_ROTATE_RESUME (what to do with a volume-key rotation that a crash or
# power loss interrupted: "boot", the default, finishes it right after the
# unlock, before the volume is mounted; "no" leaves it for `keyd rotate`
# later, the volume opening meanwhile with both keys), KEYD_ROTATE_MAX_RATE
# (throttle of that resume in bytes per second, suffix K, M or G; default
# unthrottled).
#
# Results: keyd_unlock_all returns the number of volumes that failed and
# leaves /run/keyd/NAME.state = provisioned | unlocked | failed, and
# /run/keyd/root.state = trusted | refused (keyd_root_trust).
# A keyd unlock also leaves /run/keyd/NAME.slot = pending (it opened through
# the pending slot of a handoff, see keyd-upgrade.sh) or active, written by
# `keyd unlock --state-file` (never parsed from keyd's messages).

: "${KEYD:=keyd}"
: "${KEYD_DEVICE_TIMEOUT:=10}"
: "${KEYD_RUN:=/run/keyd}"

# Messages go to the console (stderr) and to the kernel log, so that a refused
# unlock is visible both on a serial console and in dmesg/journal afterwards.
keyd_log() {
	echo "keyd: $*" >&2
	if [ -w /dev/kmsg ]; then
		echo "<6>keyd: $*" >/dev/kmsg 2>/dev/null || :
	fi
}

keyd_error() {
	echo "keyd: ERROR: $*" >&2
	if [ -w /dev/kmsg ]; then
		echo "<3>keyd: ERROR: $*" >/dev/kmsg 2>/dev/null || :
	fi
}

# Print each line of $2 through logger $1 (keyd_log or keyd_error).
keyd_log_lines() {
	_kl_fn=$1
	printf '%s\n' "$2" | while IFS= read -r _kl_line; do
		[ -n "$_kl_line" ] && "$_kl_fn" "  $_kl_line"
	done
}

# Without udev nobody creates /dev/virtio-ports/<name>; the simulated AMD-SP
# is found by that name, so mirror what udev's default rule does.
keyd_setup_virtio_ports() {
	for _vp in /sys/class/virtio-ports/*; do
		[ -r "$_vp/name" ] || continue
		_vp_name=$(cat "$_vp/name")
		[ -n "$_vp_name" ] || continue
		_vp_dev=/dev/${_vp##*/}
		[ -e "$_vp_dev" ] || continue
		mkdir -p /dev/virtio-ports
		[ -e "/dev/virtio-ports/$_vp_name" ] || ln -s "$_vp_dev" "/dev/virtio-ports/$_vp_name"
	done
}

# keyd_resolve SPEC -> prints the device path, waiting up to
# KEYD_DEVICE_TIMEOUT seconds for it to appear.
keyd_resolve() {
	_rs_spec=$1
	_rs_tries=$((KEYD_DEVICE_TIMEOUT * 10))
	while :; do
		_rs_dev=
		case $_rs_spec in
		UUID=* | LABEL=*)
			if command -v blkid >/dev/null 2>&1; then
				case $_rs_spec in
				UUID=*) _rs_dev=$(blkid -U "${_rs_spec#UUID=}" 2>/dev/null) ;;
				*) _rs_dev=$(blkid -L "${_rs_spec#LABEL=}" 2>/dev/null) ;;
				esac
			fi
			if [ -z "$_rs_dev" ] && command -v findfs >/dev/null 2>&1; then
				_rs_dev=$(findfs "$_rs_spec" 2>/dev/null)
			fi
			;;
		PARTLABEL=*)
			[ -e "/dev/disk/by-partlabel/${_rs_spec#PARTLABEL=}" ] &&
				_rs_dev=/dev/disk/by-partlabel/${_rs_spec#PARTLABEL=}
			;;
		/*)
			[ -b "$_rs_spec" ] || [ -f "$_rs_spec" ] && _rs_dev=$_rs_spec
			;;
		*)
			keyd_error "unsupported device spec '$_rs_spec'"
			return 1
			;;
		esac
		if [ -n "$_rs_dev" ]; then
			echo "$_rs_dev"
			return 0
		fi
		_rs_tries=$((_rs_tries - 1))
		[ "$_rs_tries" -gt 0 ] || break
		sleep 0.1
	done
	keyd_error "device $_rs_spec did not appear within ${KEYD_DEVICE_TIMEOUT}s"
	return 1
}

# A device is blank when its first 1 MiB is all zero. That covers both LUKS2
# header copies and every filesystem superblock we know of; a device with
# anything else on it is never formatted (keyd enroll would refuse it too).
keyd_is_blank() {
	_nz=$(dd if="$1" bs=65536 count=16 2>/dev/null | tr -d '\000' | wc -c)
	[ "$_nz" -eq 0 ]
}

# keyd_opt OPTIONS KEY -> prints the value of KEY=value (or KEY for a flag)
keyd_opt() {
	_o_rest=$1,
	while [ -n "$_o_rest" ]; do
		_o_item=${_o_rest%%,*}
		_o_rest=${_o_rest#*,}
		case $_o_item in
		"$2") echo "$2"; return 0 ;;
		"$2"=*) echo "${_o_item#*=}"; return 0 ;;
		esac
	done
	return 1
}

# Options meant for mount(8): everything that keyd does not consume.
keyd_mount_opts() {
	_m_rest=$1, _m_out=
	while [ -n "$_m_rest" ]; do
		_m_item=${_m_rest%%,*}
		_m_rest=${_m_rest#*,}
		case $_m_item in
		'' | noformat | label=* | integrity | integrity-no-wipe | escrow=* | escrow-threshold=*) ;;
		*) _m_out=${_m_out:+$_m_out,}$_m_item ;;
		esac
	done
	echo "${_m_out:-defaults}"
}

# busybox's mke2fs knows no ext4, busybox sh may run its applets before any
# PATH lookup, and initramfs-tools' busybox hook links its applets over
# /sbin/mke2fs: the hooks therefore ship e2fsprogs' mke2fs as
# /usr/lib/keyd/mke2fs, and only a real e2fsprogs mke2fs is used.
keyd_mkfs() {
	_mk_fs=$1 _mk_dev=$2 _mk_name=$3
	_mk_e2=mke2fs
	for _mk_p in /usr/lib/keyd/mke2fs /sbin/mke2fs /usr/sbin/mke2fs; do
		[ -x "$_mk_p" ] || continue
		# The whole -V output is read: no early-exit reader on a pipe.
		case $("$_mk_p" -V 2>&1) in
		*'EXT2FS Library'*)
			_mk_e2=$_mk_p
			break
			;;
		esac
	done
	case $_mk_fs in
	none | -) return 0 ;;
	ext2 | ext3 | ext4) "$_mk_e2" -q -F -t "$_mk_fs" -L "$_mk_name" "$_mk_dev" ;;
	*) "mkfs.$_mk_fs" "$_mk_dev" ;;
	esac
}

# keyd_rotate_resume NAME DEVICE: after the unlock, finish a volume-key
# rotation (keyd rotate) that a crash or power loss interrupted, as cryptsetup
# does for a LUKS2 online re-encryption: the mapping is already active (keyd
# unlock replayed an interrupted hotzone from the journal), and keyd rotate
# --resume-only goes on from where the header says it stopped, online. A
# plain header answers at once. Progress reaches /dev/kmsg from keyd itself
# (stderr is no terminal here). A failed resume leaves the volume unlocked
# and the rotation for the next boot or the admin: it still opens.
keyd_rotate_resume() {
	_rr_name=$1 _rr_dev=$2
	[ "${KEYD_ROTATE_RESUME:-boot}" = no ] && return 0
	set -- rotate "$_rr_dev" --name "$_rr_name" --resume-only
	[ -n "${KEYD_ROTATE_MAX_RATE:-}" ] && set -- "$@" --max-rate "$KEYD_ROTATE_MAX_RATE"
	# Streamed, not captured: a long resume shows its progress as it goes.
	# keyd writes its own progress lines to /dev/kmsg; they only go to the
	# console here.
	_rr_rc=$KEYD_RUN/$_rr_name.rotate-rc
	echo 1 >"$_rr_rc"
	{
		"$KEYD" "$@" 2>&1
		echo "$?" >"$_rr_rc"
	} | while IFS= read -r _rr_line; do
		case $_rr_line in
		*': no rotation in progress') ;;
		'keyd rotate: '*) echo "keyd: $_rr_name: ${_rr_line#keyd rotate: }" >&2 ;;
		*) keyd_log "$_rr_name: $_rr_line" ;;
		esac
	done
	read -r _rr_st <"$_rr_rc" || _rr_st=1
	rm -f "$_rr_rc"
	[ "$_rr_st" = 0 ] && return 0
	keyd_error "$_rr_name: the interrupted volume-key rotation of $_rr_dev did not finish (it still unlocks; keyd rotate $_rr_dev finishes it)"
	return 0
}

# keyd_unlock_volume NAME SPEC FS MOUNTPOINT OPTIONS
keyd_unlock_volume() {
	_uv_name=$1 _uv_spec=$2 _uv_fs=$3 _uv_opts=$5
	_uv_state=$KEYD_RUN/$_uv_name.state
	mkdir -p "$KEYD_RUN"
	echo failed >"$_uv_state"

	if [ -e "/dev/mapper/$_uv_name" ]; then
		keyd_log "$_uv_name: already active"
		echo unlocked >"$_uv_state"
		return 0
	fi
	_uv_dev=$(keyd_resolve "$_uv_spec") || return 1

	_uv_blank=0
	if keyd_is_blank "$_uv_dev"; then
		_uv_blank=1
		if keyd_opt "$_uv_opts" noformat >/dev/null; then
			keyd_error "$_uv_name: $_uv_dev is blank and the volume is marked noformat"
			return 1
		fi
	fi

	if [ "$_uv_blank" = 1 ]; then
		_uv_label=$(keyd_opt "$_uv_opts" label) || _uv_label=$_uv_name
		_uv_integ=
		keyd_opt "$_uv_opts" integrity >/dev/null && _uv_integ=--integrity
		keyd_opt "$_uv_opts" integrity-no-wipe >/dev/null &&
			_uv_integ="--integrity --integrity-no-wipe"
		# Admin certificates come from the image, never from the host:
		# whoever holds K of the keys can open the volume.
		if _uv_escdir=$(keyd_opt "$_uv_opts" escrow); then
			_uv_k=$(keyd_opt "$_uv_opts" escrow-threshold) || _uv_k=2
			for _uv_c in "$_uv_escdir"/*; do
				[ -f "$_uv_c" ] && _uv_integ="$_uv_integ --escrow $_uv_c"
			done
			_uv_integ="$_uv_integ --threshold $_uv_k"
		fi
		keyd_log "$_uv_name: $_uv_dev is blank: provisioning a new sealed volume"
		# shellcheck disable=SC2086 # $_uv_integ: integrity and escrow options
		if ! _uv_out=$("$KEYD" enroll "$_uv_dev" --format --root-check \
			--label "$_uv_label" $_uv_integ 2>&1); then
			keyd_error "$_uv_name: provisioning $_uv_dev refused"
			keyd_log_lines keyd_error "$_uv_out"
			return 1
		fi
		keyd_log_lines keyd_log "$_uv_out"
	fi
	rm -f "$KEYD_RUN/$_uv_name.slot"
	if ! _uv_out=$("$KEYD" unlock "$_uv_dev" "$_uv_name" --root-check \
		--state-file "$KEYD_RUN/$_uv_name.slot" 2>&1); then
		keyd_error "$_uv_name: unlock of $_uv_dev refused"
		keyd_log_lines keyd_error "$_uv_out"
		# keyd status explains which measurement the volume is sealed
		# to and what this launch has: what an operator needs first.
		if _uv_out=$("$KEYD" status "$_uv_dev" 2>&1) || [ -n "$_uv_out" ]; then
			keyd_log_lines keyd_error "$_uv_out"
		fi
		return 1
	fi
	keyd_log_lines keyd_log "$_uv_out"
	[ "$_uv_blank" = 1 ] || keyd_rotate_resume "$_uv_name" "$_uv_dev"
	# keyd wrote the state of the slot that opened (active or pending)
	# to $KEYD_RUN/NAME.slot: a new version's first boot opens through
	# its pending slot, and keyd_commit_pending (keyd-upgrade.sh)
	# commits it once it is healthy.

	if [ "$_uv_blank" = 1 ]; then
		# Only a volume provisioned in this very boot is formatted: a device
		# that failed to unlock never reaches this point.
		# integrity-no-wipe: a block never written fails its tag check, and
		# mke2fs's 1 KiB superblock write is a read-modify-write of block
		# 0. Writing the first MiB whole gives those blocks valid tags.
		if keyd_opt "$_uv_opts" integrity-no-wipe >/dev/null; then
			dd if=/dev/zero of="/dev/mapper/$_uv_name" bs=1048576 count=1 conv=fsync 2>/dev/null ||
				keyd_error "$_uv_name: cannot initialise the first MiB of /dev/mapper/$_uv_name"
		fi
		if ! _uv_out=$(keyd_mkfs "$_uv_fs" "/dev/mapper/$_uv_name" "$_uv_name" 2>&1); then
			keyd_error "$_uv_name: mkfs.$_uv_fs failed"
			keyd_log_lines keyd_error "$_uv_out"
			return 1
		fi
		keyd_log "$_uv_name: provisioned $_uv_dev, created $_uv_fs on /dev/mapper/$_uv_name"
		echo provisioned >"$_uv_state"
	else
		keyd_log "$_uv_name: unlocked $_uv_dev as /dev/mapper/$_uv_name"
		echo unlocked >"$_uv_state"
	fi
	return 0
}

# keyd_cmdline_arg NAME -> the value of NAME=VALUE on the measured kernel
# command line (the last one; keyd root check refuses two different ones).
keyd_cmdline_arg() {
	_ca_val=
	_ca_found=1
	for _ca_arg in $(cat "${KEYD_CMDLINE:-/proc/cmdline}"); do
		case $_ca_arg in
		"$1"=*) _ca_val=${_ca_arg#*=} _ca_found=0 ;;
		esac
	done
	[ "$_ca_found" -eq 0 ] && echo "$_ca_val"
	return "$_ca_found"
}

# keyd_verity_map NAME HASHARG DATAARG HASHDEVARG: map /dev/mapper/NAME with
# dm-verity when the command line names a root hash for it (systemd's
# roothash= and systemd.verity_root_data=/systemd.verity_root_hash=, or the
# usr equivalents). keyd.verity_check=full reads and checks every block first
# (veritysetup verify), so a changed byte anywhere refuses this boot before
# any state key exists; without it, a changed block reads as EIO later.
keyd_verity_map() {
	_vm_name=$1
	_vm_hash=$(keyd_cmdline_arg "$2") || _vm_hash=$(keyd_cmdline_arg "keyd.$2") || return 0
	if [ -e "/dev/mapper/$_vm_name" ]; then
		keyd_log "$_vm_name: already mapped (keyd root check verifies its table)"
		return 0
	fi
	_vm_data=$(keyd_cmdline_arg "$3") && _vm_hdev=$(keyd_cmdline_arg "$4") || {
		keyd_error "$_vm_name: the command line has $2= but no $3= and $4="
		return 1
	}
	_vm_data=$(keyd_resolve "$_vm_data") && _vm_hdev=$(keyd_resolve "$_vm_hdev") || return 1
	if [ "$(keyd_cmdline_arg keyd.verity_check)" = full ]; then
		if ! _vm_out=$(veritysetup verify "$_vm_data" "$_vm_hdev" "$_vm_hash" 2>&1); then
			keyd_error "$_vm_name: $_vm_data does not match the measured $2 (veritysetup verify)"
			keyd_log_lines keyd_error "$_vm_out"
			return 1
		fi
		keyd_log "$_vm_name: every block of $_vm_data matches the measured $2"
	fi
	if ! _vm_out=$(veritysetup open "$_vm_data" "$_vm_name" "$_vm_hdev" "$_vm_hash" 2>&1); then
		keyd_error "$_vm_name: dm-verity refused $_vm_data with the measured $2"
		keyd_log_lines keyd_error "$_vm_out"
		return 1
	fi
	keyd_log "$_vm_name: $_vm_data mapped read-only with dm-verity as /dev/mapper/$_vm_name"
}

# keyd_root_trust: map the verity root (and /usr) named by the measured
# command line, then let keyd say whether the root this boot switches into
# is covered by the measurement (keyd root check). One line on the console
# and in /dev/kmsg either way. Every keyd command that releases a state key
# repeats the check itself (--root-check).
keyd_root_trust() {
	mkdir -p "$KEYD_RUN"
	echo refused >"$KEYD_RUN/root.state"
	keyd_verity_map root roothash systemd.verity_root_data systemd.verity_root_hash || return 1
	keyd_verity_map usr usrhash systemd.verity_usr_data systemd.verity_usr_hash || return 1
	if _rt_out=$("$KEYD" root check 2>&1); then
		keyd_log "$_rt_out"
		echo trusted >"$KEYD_RUN/root.state"
		return 0
	fi
	keyd_error "no state volume is unlocked: ${_rt_out#keyd: }"
	return 1
}

# keyd_unlock_all [CONFIG] -> number of failed volumes (0 = all unlocked)
keyd_unlock_all() {
	_ua_conf=${1:-/etc/keyd/volumes}
	_ua_failed=0
	[ -r "$_ua_conf" ] || return 0
	if ! keyd_root_trust; then
		# Every volume counts as failed: none may open for this root.
		while read -r _ua_name _ua_rest <&3; do
			case $_ua_name in '' | '#'*) continue ;; esac
			mkdir -p "$KEYD_RUN"
			echo failed >"$KEYD_RUN/$_ua_name.state"
			_ua_failed=$((_ua_failed + 1))
		done 3<"$_ua_conf"
		return "$_ua_failed"
	fi
	# The config is read on fd 3 so that nothing keyd runs can eat it.
	while read -r _ua_name _ua_spec _ua_fs _ua_mnt _ua_opts _ua_extra <&3; do
		case $_ua_name in '' | '#'*) continue ;; esac
		if [ -z "$_ua_fs" ] || [ -n "$_ua_extra" ]; then
			keyd_error "$_ua_conf: bad line for '$_ua_name' (want NAME DEVICE FS MOUNTPOINT OPTIONS)"
			_ua_failed=$((_ua_failed + 1))
			continue
		fi
		keyd_unlock_volume "$_ua_name" "$_ua_spec" "$_ua_fs" "${_ua_mnt:--}" "${_ua_opts:-defaults}" ||
			_ua_failed=$((_ua_failed + 1))
	done 3<"$_ua_conf"
	return "$_ua_failed"
}

# keyd_mount_all [CONFIG] [PREFIX] -> mounts every unlocked volume that has a
# mount point under PREFIX (e.g. $rootmnt), returns the number of failures.
keyd_mount_all() {
	_ma_conf=${1:-/etc/keyd/volumes}
	_ma_prefix=${2:-}
	_ma_failed=0
	[ -r "$_ma_conf" ] || return 0
	while read -r _ma_name _ma_spec _ma_fs _ma_mnt _ma_opts _ma_extra <&3; do
		case $_ma_name in '' | '#'*) continue ;; esac
		case ${_ma_mnt:--} in - | none) continue ;; esac
		[ -e "/dev/mapper/$_ma_name" ] || continue
		mkdir -p "$_ma_prefix$_ma_mnt"
		if ! _ma_out=$(mount -t "$_ma_fs" -o "$(keyd_mount_opts "${_ma_opts:-defaults}")" \
			"/dev/mapper/$_ma_name" "$_ma_prefix$_ma_mnt" 2>&1); then
			keyd_error "$_ma_name: mount on $_ma_prefix$_ma_mnt failed"
			keyd_log_lines keyd_error "$_ma_out"
			_ma_failed=$((_ma_failed + 1))
			continue
		fi
		keyd_log "$_ma_name: mounted on $_ma_prefix$_ma_mnt"
	done 3<"$_ma_conf"
	return "$_ma_failed"
}
