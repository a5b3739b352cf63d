#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# The attested upgrade handoff between two VMs (scenario 08 and the demo's
# upgrade act). Source it after lib.sh and vm_setup.
#
# O boots its image with the state disk and fw_cfg mode "serve-upgrade"; N
# boots the new image with no disk and mode "upgrade" (initramfs/
# keyd-upgrade.sh). Each has its own keyd-simfw launch on the one chip, with
# the measurement of its own kernel, initrd and command line; the command
# line is the same VM_APPEND_BASE as for every other boot, so N's upgrade
# launch and its later real boot share one measurement and one key.
#
# The two TCG guests share one Ethernet link: QEMU's socket netdev over UDP
# on 127.0.0.1, each end sending to the other's port. Unlike listen/connect,
# it does not matter which QEMU starts first.
# shellcheck disable=SC2034 # VM_LOG_O, VM_LOG_N, VM_QEMU_EXTRA are read by the caller and lib.sh

# vm_manifest OUT LABEL SVN MEASUREMENT [CREATE OPTIONS...]: a release
# manifest signed by release keys 1 and 2 (2 of 3, the threshold the images
# pin), whose TCB floor is the simulated chip's current TCB (keyd refuses a
# handoff without a floor); further options go to `keyd manifest create`
# (--rotate).
vm_manifest() {
	local out=$1 label=$2 svn=$3 meas=$4 k show prod tcb
	show=$("$KEYD_BUILD/keyd-simfw" --state "$VM_CHIP" show) || return 1
	prod=$(sed -n 's/^product *\([A-Za-z]*\).*/\1/p' <<<"$show")
	tcb=$(sed -n 's/^current_tcb *\([0-9a-f]*\).*/\1/p' <<<"$show")
	"$KEYD_BUILD/keyd" manifest create --version-label "$label" --svn "$svn" \
		--measurement "$meas" --not-before 2020-01-01T00:00:00Z \
		--not-after 2099-01-01T00:00:00Z --min-tcb "${prod,,}:$tcb" "${@:5}" -o "$out" || return 1
	for k in 1 2; do
		"$KEYD_BUILD/keyd" manifest sign "$out" --key "$VM_RELEASE/k$k.pem" || return 1
	done
}

# A UDP port on 127.0.0.1 that nothing uses right now.
vm_udp_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 30000))
		ss -Hunl "sport = :$p" 2>/dev/null | kd_has . || { echo "$p"; return 0; }
	done
}

# vm_net_args SELF_PORT PEER_PORT MAC_BYTE MODE MANIFEST -> QEMU arguments,
# one per line.
vm_net_args() {
	printf '%s\n' -netdev "socket,id=hn0,udp=127.0.0.1:$2,localaddr=127.0.0.1:$1" \
		-device "virtio-net-pci,netdev=hn0,mac=52:54:00:88:00:$3,romfile=" \
		-fw_cfg "name=opt/org.keyd/mode,string=$4" \
		-fw_cfg "name=opt/org.keyd/manifest,file=$5"
}

# vm_handoff NAME O_INITRD O_MANIFEST DISK N_INITRD N_MANIFEST
# Boots O (with DISK) and N (no disk) side by side. Consoles end up in
# $VM_WORK/NAME-O.console and $VM_WORK/NAME-N.console; sets VM_LOG_O and
# VM_LOG_N. Returns non-zero if either VM did not power off by itself.
vm_handoff() {
	local name=$1 oi=$2 om=$3 disk=$4 ni=$5 nm=$6 po pn ro=0 rn=0 opid npid
	po=$(vm_udp_port)
	pn=$(vm_udp_port)
	while [ "$pn" = "$po" ]; do pn=$(vm_udp_port); done
	VM_LOG_O=$VM_WORK/$name-O.console
	VM_LOG_N=$VM_WORK/$name-N.console
	(
		VM_PIDS=()
		vm_traps
		mapfile -t VM_QEMU_EXTRA < <(vm_net_args "$po" "$pn" 01 serve-upgrade "$om")
		vm_launch "$name-O" "$oi" "$VM_APPEND_BASE" "$disk"
	) &
	opid=$!
	vm_track "$opid"
	(
		VM_PIDS=()
		vm_traps
		mapfile -t VM_QEMU_EXTRA < <(vm_net_args "$pn" "$po" 02 upgrade "$nm")
		vm_launch "$name-N" "$ni" "$VM_APPEND_BASE" ""
	) &
	npid=$!
	vm_track "$npid"
	wait "$opid" || ro=$?
	wait "$npid" || rn=$?
	vm_untrack "$opid"
	vm_untrack "$npid"
	[ "$ro" -eq 0 ] && [ "$rn" -eq 0 ]
}

# vm_handoff_result LOG -> ok | refused | "" (the guest's HANDOFF line)
vm_handoff_result() {
	tr -d '\r' <"$1" | sed -n 's/.*KEYD-TEST: HANDOFF role=[ON] result=\([a-z]*\).*/\1/p' | tail -n 1
}

# vm_commit_result LOG -> ok | failed | "" (the guest's COMMIT line)
vm_commit_result() {
	tr -d '\r' <"$1" | sed -n 's/.*KEYD-TEST: COMMIT name=[^ ]* result=\([a-z]*\).*/\1/p' | tail -n 1
}

# vm_header_sha DISK: SHA-256 of the LUKS2 area (both header copies and the
# keyslots, everything before the data segment). O mounts the filesystem
# while it serves, so only this part must stay byte-for-byte the same when a
# handoff is refused.
vm_header_sha() {
	local off
	off=$(cryptsetup luksDump --dump-json-metadata "$1" | tr -d " \t\n" |
		sed -n 's/.*"segments":{"0":{[^}]*"offset":"\([0-9]*\)".*/\1/p')
	[ -n "$off" ] || return 1
	head -c "$off" "$1" | sha256sum | cut -d' ' -f1
}

# vm_token_states DISK -> "LABEL:STATE:MEASUREMENT" per keyd token, sorted.
vm_token_states() {
	"$KEYD_BUILD/keyd" status "$1" --json 2>/dev/null |
		python3 -c 'import json, sys
for t in json.load(sys.stdin)["tokens"]:
    print("%s:%s:%s" % (t["label"], t["state"], t["measurement"]))' | sort
}
