#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Upgrade handoff roles at boot (keyd-handoff(8), docs/handoff-protocol.md). Sourced after
# keyd-unlock.sh by an initramfs /init; the self-contained test image uses it.
#
#   keyd_upgrade_mode            prints boot | serve-upgrade | upgrade
#   keyd_upgrade_serve CONFIG    O: serve every volume of CONFIG this boot
#                                unlocked to one new version N
#   keyd_upgrade_receive         N (no disk): get a pending keyslot from O
#   keyd_commit_pending CONFIG   N's first real boot: keyd commit every
#                                volume that opened through a pending slot
#
# Where the role and the manifest come from. Neither may be on the kernel
# command line or in the initramfs: both are measured, and N's upgrade-mode
# launch must have exactly the measurement of its later real boots, since the
# key N derives during the handoff is the one those boots will derive. So the
# host hands them over as QEMU fw_cfg files (unmeasured, like any host input):
#
#   opt/org.keyd/mode        "serve-upgrade" or "upgrade" (absent: boot)
#   opt/org.keyd/manifest    this image's signed release manifest
#
# Trusting the host with them costs nothing. The mode only decides whether
# this boot offers or asks for a handoff, and O hands a keyslot only to a peer
# that proves, by an attestation report from the same chip, a measurement
# listed in a manifest signed by k of the n release keys pinned in this
# (measured) image at /etc/keyd/release-keys.json. A manifest cannot be
# forged, and one that does not list the sender's own measurement is refused
# by the peer. The manifest cannot live in the image anyway: it lists the
# image's measurement, which would then depend on itself.
#
# The host-given manifest is judged by its owner too: keyd refuses to serve
# or to connect unless this image's own manifest is signed by k of the n
# pinned keys and lists this launch's measurement, and unless this launch's
# CHIP_ID is not all zero (a masked chip ID would make "same chip" 0 == 0).
#
# TCB floor: a peer whose reported TCB is below the floor is refused. The
# floor comes from the release: the signed manifest's min_tcb for this
# chip's product. An image may pin its own in /etc/keyd/tcb-floor (16 hex
# digits, report byte order), which then wins. With neither, keyd refuses
# the handoff, unless the image explicitly opts out by shipping
# /etc/keyd/no-tcb-floor (both files are in the measured image, so the host
# can neither add nor remove them).
#
# Revocation does not depend on the guest clock (which the host sets): a
# manifest's min_peer_svn refuses every older release, whatever the time.
# Because the manifest itself cannot be in the image, the image pins its
# release's floor in /etc/keyd/peer-svn-floor (one decimal SVN, measured).
# The handoff applies it together with the manifest's (an own manifest whose
# floor is higher is refused), and N's first real boot judges whoever made
# its pending slot by it (keyd unlock reads it itself). An image without it
# refuses every pending slot unless it ships /etc/keyd/no-peer-svn-floor;
# so N refuses to ask for one it could not open.
#
# With the simulated AMD-SP the chip's ARK is pinned in the image as
# /etc/keyd/ark.pem (on SNP hardware the AMD roots are built into keyd).
#
# Network: O is $KEYD_UPGRADE_O_ADDR, N is $KEYD_UPGRADE_N_ADDR on the first
# NIC (/24); O listens on $KEYD_UPGRADE_PORT. boot.conf may override them.

: "${KEYD_UPGRADE_IF:=eth0}"
: "${KEYD_UPGRADE_O_ADDR:=10.0.88.1}"
: "${KEYD_UPGRADE_N_ADDR:=10.0.88.2}"
: "${KEYD_UPGRADE_PORT:=7443}"
: "${KEYD_UPGRADE_TIMEOUT:=120}"
: "${KEYD_FWCFG:=/sys/firmware/qemu_fw_cfg/by_name/opt/org.keyd}"

# keyd_host_param NAME -> the fw_cfg file's content ("" when absent)
keyd_host_param() {
	[ -r "$KEYD_FWCFG/$1/raw" ] && cat "$KEYD_FWCFG/$1/raw"
	return 0
}

keyd_upgrade_mode() {
	_um_mode=$(keyd_host_param mode | tr -d '\r\n')
	case $_um_mode in
	serve-upgrade | upgrade) echo "$_um_mode" ;;
	'' | boot) echo boot ;;
	*)
		keyd_error "unknown boot mode '$_um_mode' from the host, booting normally"
		echo boot
		;;
	esac
}

# The manifest is copied out of sysfs: keyd reads a regular file.
keyd_upgrade_manifest() {
	mkdir -p "$KEYD_RUN"
	_mf=$KEYD_RUN/manifest.json
	if ! keyd_host_param manifest >"$_mf" || [ ! -s "$_mf" ]; then
		keyd_error "upgrade: the host gave no release manifest (fw_cfg opt/org.keyd/manifest)"
		return 1
	fi
	echo "$_mf"
}

# keyd_net_up ADDR: loopback and the handoff link, static (no DHCP: the two
# VMs are alone on their link).
keyd_net_up() {
	ip link set lo up 2>/dev/null
	_nu_i=0
	while [ ! -e "/sys/class/net/$KEYD_UPGRADE_IF" ] && [ $_nu_i -lt 50 ]; do
		sleep 0.1
		_nu_i=$((_nu_i + 1))
	done
	if ! ip link set "$KEYD_UPGRADE_IF" up || ! ip addr add "$1/24" dev "$KEYD_UPGRADE_IF"; then
		keyd_error "upgrade: cannot configure $KEYD_UPGRADE_IF as $1"
		return 1
	fi
}

# Options common to serve and receive.
keyd_upgrade_opts() {
	echo "--release-keys /etc/keyd/release-keys.json --timeout $KEYD_UPGRADE_TIMEOUT"
	[ -r /etc/keyd/ark.pem ] && echo "--ark /etc/keyd/ark.pem"
	if [ -r /etc/keyd/tcb-floor ]; then
		echo "--tcb-floor $(tr -d ' \r\n' </etc/keyd/tcb-floor)"
	elif [ -e /etc/keyd/no-tcb-floor ]; then
		echo "--no-tcb-floor"
	fi
	if [ -r /etc/keyd/peer-svn-floor ]; then
		echo "--peer-svn-floor $(tr -d ' \r\n' </etc/keyd/peer-svn-floor)"
	fi
	return 0
}

# keyd_upgrade_handoff MANIFEST ROLE ARGS...: keyd handoff ROLE ARGS with the
# manifest, the configured options and --timings (serve for O, receive for
# N). Its lines go to the log; a refusal's as errors, returning 1.
keyd_upgrade_handoff() {
	_uh_mf=$1
	shift
	# shellcheck disable=SC2046 # option list, split on purpose
	if ! _uh_out=$("$KEYD" handoff "$@" --manifest "$_uh_mf" $(keyd_upgrade_opts) --timings 2>&1); then
		keyd_error "upgrade: handoff refused"
		keyd_log_lines keyd_error "$_uh_out"
		return 1
	fi
	keyd_log_lines keyd_log "$_uh_out"
}

# keyd_upgrade_serve [CONFIG]: O, after keyd_unlock_all. keyd serves until a
# verified N completes or KEYD_UPGRADE_TIMEOUT passes: stray or refused
# connections do not end it. Returns keyd's status.
keyd_upgrade_serve() {
	_us_conf=${1:-/etc/keyd/volumes}
	_us_devs=
	while read -r _us_name _us_spec _ <&3; do
		case $_us_name in '' | '#'*) continue ;; esac
		case $(cat "$KEYD_RUN/$_us_name.state" 2>/dev/null) in
		unlocked | provisioned) ;;
		*) continue ;;
		esac
		_us_dev=$(keyd_resolve "$_us_spec") || continue
		_us_devs="$_us_devs --device $_us_dev"
	done 3<"$_us_conf"
	if [ -z "$_us_devs" ]; then
		keyd_error "upgrade: no unlocked volume to hand over"
		return 1
	fi
	_us_mf=$(keyd_upgrade_manifest) || return 1
	keyd_net_up "$KEYD_UPGRADE_O_ADDR" || return 1
	keyd_log "upgrade: serving${_us_devs} on $KEYD_UPGRADE_O_ADDR:$KEYD_UPGRADE_PORT"
	# shellcheck disable=SC2086 # the --device list, split on purpose
	keyd_upgrade_handoff "$_us_mf" serve --listen "0.0.0.0:$KEYD_UPGRADE_PORT" $_us_devs
}

# keyd_upgrade_receive: N, with no disk. O may still be booting (its address
# unreachable, no ARP reply), busy with a stray connection, or drop one:
# keyd retries every such failure until KEYD_UPGRADE_TIMEOUT. A refusal (a
# verdict about O, about this image's own release, or O's) is final.
keyd_upgrade_receive() {
	if [ ! -r /etc/keyd/peer-svn-floor ] && [ ! -e /etc/keyd/no-peer-svn-floor ]; then
		keyd_error "upgrade: this image pins no revocation floor (/etc/keyd/peer-svn-floor) and does not opt out (/etc/keyd/no-peer-svn-floor): its boot would refuse a pending slot"
		return 1
	fi
	_ur_mf=$(keyd_upgrade_manifest) || return 1
	keyd_net_up "$KEYD_UPGRADE_N_ADDR" || return 1
	keyd_log "upgrade: asking $KEYD_UPGRADE_O_ADDR:$KEYD_UPGRADE_PORT for a keyslot"
	keyd_upgrade_handoff "$_ur_mf" receive --connect "$KEYD_UPGRADE_O_ADDR:$KEYD_UPGRADE_PORT"
}

# keyd_commit_pending [CONFIG]: run after the volumes are unlocked and found
# usable. Only a volume that opened through a pending slot (recorded by
# keyd_unlock_volume in $KEYD_RUN/NAME.slot) is committed. Prints, per
# volume, "NAME ok" or "NAME failed" on stdout; returns the failure count.
# When the host hands this release's manifest over (fw_cfg, as for the
# handoff), keyd commit judges it (k of the pinned release keys, this
# launch's measurement) and rotates the volume key right after the commit if
# the release asks for it ("rotate": true); a manifest that does not check
# out commits nothing.
keyd_commit_pending() {
	_cp_conf=${1:-/etc/keyd/volumes}
	_cp_failed=0
	_cp_mf=
	mkdir -p "$KEYD_RUN"
	if keyd_host_param manifest >"$KEYD_RUN/commit-manifest.json" &&
		[ -s "$KEYD_RUN/commit-manifest.json" ]; then
		_cp_mf=$KEYD_RUN/commit-manifest.json
	fi
	while read -r _cp_name _cp_spec _ <&3; do
		case $_cp_name in '' | '#'*) continue ;; esac
		[ "$(cat "$KEYD_RUN/$_cp_name.slot" 2>/dev/null)" = pending ] || continue
		_cp_dev=$(keyd_resolve "$_cp_spec") || { _cp_failed=$((_cp_failed + 1)); continue; }
		set -- commit "$_cp_dev"
		[ -n "$_cp_mf" ] && set -- "$@" --manifest "$_cp_mf"
		if _cp_out=$("$KEYD" "$@" 2>&1); then
			keyd_log_lines keyd_log "$_cp_out"
			echo active >"$KEYD_RUN/$_cp_name.slot"
			echo "$_cp_name ok"
		else
			keyd_error "$_cp_name: keyd commit $_cp_dev failed"
			keyd_log_lines keyd_error "$_cp_out"
			_cp_failed=$((_cp_failed + 1))
			echo "$_cp_name failed"
		fi
	done 3<"$_cp_conf"
	return "$_cp_failed"
}
