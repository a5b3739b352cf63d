#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# QEMU harness for the VM scenarios, the demo and the boot benchmark.
# Source it from bash; it expects KEYD_BUILD and KEYD_SRC (exported by make,
# defaulted here for direct runs).
#
# Every guest runs under TCG (the test hosts have no usable KVM) inside
# `timeout`, with 512 MiB, -cpu max (emulated AES-NI),
# one vCPU and no NIC. The serial console goes to a log file that the
# scenarios grep for "KEYD-TEST:" lines.

: "${KEYD_SRC:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${KEYD_BUILD:=$KEYD_SRC/build}"
# shellcheck source=tests/lib.bash
. "$KEYD_SRC/tests/lib.bash"
kd_loud

# ---------------------------------------------------------------- children
# Every QEMU (under timeout) and keyd-simfw a harness starts is recorded in
# VM_PIDS and killed on exit, Ctrl-C and TERM: an interrupted `make check-vm`,
# demo or benchmark must not leave guests or simulators running. Background
# children of a non-interactive shell ignore SIGINT, and `timeout` puts QEMU
# in a process group of its own, so neither would see a Ctrl-C. The harness
# waits for its children with `wait`, which a trapped signal interrupts at
# once (bash runs no trap while a foreground child runs).
VM_PIDS=()
vm_track() { VM_PIDS+=("$1"); }
vm_untrack() { # PID
	local p keep=()
	for p in ${VM_PIDS[@]+"${VM_PIDS[@]}"}; do [ "$p" = "$1" ] || keep+=("$p"); done
	VM_PIDS=(${keep[@]+"${keep[@]}"})
}
vm_reap() {
	local p
	for p in ${VM_PIDS[@]+"${VM_PIDS[@]}"}; do kill "$p" 2>/dev/null || true; done
	for p in ${VM_PIDS[@]+"${VM_PIDS[@]}"}; do wait "$p" 2>/dev/null || true; done
	VM_PIDS=()
	return 0
}
# vm_traps [CLEANUP]: reap the children (then run CLEANUP) on exit; turn
# INT and TERM into an exit. Subshells that start children call it again
# (bash resets caught signals in a subshell).
# shellcheck disable=SC2120 # callers pass CLEANUP; lib.sh itself does not
vm_traps() {
	# shellcheck disable=SC2064 # CLEANUP is expanded now, on purpose
	trap "vm_reap; ${1:-:}" EXIT
	trap 'echo "$(basename "$0"): interrupted" >&2; exit 130' INT
	trap 'exit 143' TERM
}
vm_traps
: "${VM_TIMEOUT:=240}"
: "${VM_MEM:=512}"
VM_VCPUS=1
VM_VCPU_TYPE=EPYC-v4
VM_OVMF=${VM_OVMF:-$KEYD_SRC/tests/vm/ovmf_AmdSev_suffix.bin}
[ -f "$VM_OVMF" ] || VM_OVMF=${KEYD_VECTORS:-$KEYD_SRC/tests/vectors}/measure/ovmf_AmdSev_suffix.bin
# The command line is part of the measurement: every boot of one image
# must use exactly this string. The test image switches into no root: it
# declares so (keyd.root=initramfs), or keyd refuses to release state keys.
# no_timer_check: under TCG on a loaded host the kernel's IO-APIC timer test
# can time out and panic ("IO-APIC + timer doesn't work!"); a VM's timer is
# known to work, so the test is skipped rather than left to chance.
export VM_APPEND_KERNEL="console=ttyS0 panic=-1 quiet no_timer_check"
export VM_APPEND_BASE="$VM_APPEND_KERNEL keyd.root=initramfs"
VM_SIM_PORT=org.keyd.sim

# The guest kernel. By default Debian's default kernel (the one the
# linux-image-amd64 package depends on, 6.1 on Debian 12), else the newest
# installed one that has its modules; no ABI number is hard-coded.
# VM_KROOT=DIR boots a kernel package unpacked into DIR instead
# (tests/vm/fetch-kernel.sh: Debian 12's 6.12 for the scenarios that touch
# the guest interface).
: "${VM_KROOT:=}"
vm_kernel_version() {
	local k v
	if [ -n "$VM_KROOT" ]; then
		for k in "$VM_KROOT"/boot/vmlinuz-*; do
			[ -e "$k" ] && [ -d "$VM_KROOT/lib/modules/${k##*/vmlinuz-}" ] || continue
			echo "${k##*/vmlinuz-}"
			return 0
		done
		return 1
	fi
	v=$(dpkg-query -W -f='${Depends}' linux-image-amd64 2>/dev/null |
		sed -n 's/^linux-image-\([^ ,]*\).*/\1/p')
	if [ -n "$v" ] && [ -e "/boot/vmlinuz-$v" ] && [ -d "/lib/modules/$v" ]; then
		echo "$v"
		return 0
	fi
	for k in $(printf '%s\n' /boot/vmlinuz-* | sort -rV); do
		v=${k#/boot/vmlinuz-}
		if [ -d "/lib/modules/$v" ]; then
			echo "$v"
			return 0
		fi
	done
	return 1
}

vm_have_qemu() {
	command -v qemu-system-x86_64 >/dev/null && vm_kernel_version >/dev/null
}

VM_KVER=${VM_KVER:-$(vm_kernel_version || true)}
VM_KERNEL=$VM_KROOT/boot/vmlinuz-$VM_KVER

# vm_boot LOG DISK INITRD APPEND [SIM_SOCKET] -> exit status of qemu/timeout
# A guest that powers off exits 0; a timeout gives 124. An empty DISK boots
# without one; the array VM_QEMU_EXTRA, when set, is appended to QEMU's
# arguments (the upgrade scenario's NIC and fw_cfg files: none of it is
# measured).
vm_boot() {
	local log=$1 disk=$2 initrd=$3 append=$4 sock=${5:-}
	local args=(-machine q35 -accel tcg -cpu max -m "$VM_MEM" -smp "$VM_VCPUS"
		-nic none -display none -monitor none -no-reboot
		-serial "file:$log"
		-kernel "$VM_KERNEL" -initrd "$initrd" -append "$append")
	[ -n "$disk" ] && args+=(-drive "file=$disk,if=virtio,format=raw")
	args+=(${VM_QEMU_EXTRA[@]+"${VM_QEMU_EXTRA[@]}"})
	if [ -n "$sock" ]; then
		args+=(-chardev "socket,id=simfw,path=$sock"
			-device virtio-serial-pci
			-device "virtserialport,chardev=simfw,name=$VM_SIM_PORT")
	fi
	local pid rc=0
	timeout "$VM_TIMEOUT" qemu-system-x86_64 "${args[@]}" </dev/null >"$log.qemu" 2>&1 &
	pid=$!
	vm_track "$pid"
	wait "$pid" || rc=$?
	vm_untrack "$pid"
	return "$rc"
}

# vm_measure INITRD APPEND -> the launch digest the simulator will report.
vm_measure() {
	"$KEYD_BUILD/keyd" measure --ovmf "$VM_OVMF" --kernel "$VM_KERNEL" --initrd "$1" \
		--append "$2" --vcpus "$VM_VCPUS" --vcpu-type "$VM_VCPU_TYPE"
}

# sim_init STATE_DIR: a fresh simulated chip.
sim_init() {
	local out
	out=$("$KEYD_BUILD/keyd-simfw" --state "$1" init 2>&1) || { echo "$out" >&2; return 1; }
}

# sim_start STATE_DIR SOCKET INITRD APPEND [POLICY_HEX] -> sets SIM_PID.
# One simulator process per launch: it fixes the measurement of exactly the
# kernel, initrd and command line that QEMU boots.
sim_start() {
	local state=$1 sock=$2 initrd=$3 append=$4 policy=${5:-}
	local extra=()
	[ -n "$policy" ] && extra=(--policy "$policy")
	rm -f "$sock"
	"$KEYD_BUILD/keyd-simfw" --state "$state" serve --listen "unix:$sock" \
		--ovmf "$VM_OVMF" --kernel "$VM_KERNEL" --initrd "$initrd" --append "$append" \
		--vcpus "$VM_VCPUS" "${extra[@]}" >"$sock.log" 2>&1 &
	SIM_PID=$!
	vm_track "$SIM_PID"
	local _
	for _ in $(seq 1 100); do
		[ -S "$sock" ] && return 0
		kill -0 "$SIM_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "sim_start: keyd-simfw did not come up:" >&2
	cat "$sock.log" >&2
	return 1
}

sim_stop() {
	if [ -n "${SIM_PID:-}" ]; then
		kill "$SIM_PID" 2>/dev/null || true
		wait "$SIM_PID" 2>/dev/null || true
		vm_untrack "$SIM_PID"
		SIM_PID=
	fi
	return 0
}

# vm_backend LOG -> the trust backend keyd's own detection picked in the
# guest ("KEYD-TEST: BACKEND name=snp" from test-init).
vm_backend() {
	tr -d '\r' <"$1" | sed -n 's/.*KEYD-TEST: BACKEND name=\([a-z]*\).*/\1/p' | tail -n 1
}

# expect_snp LOG: keyd ran its production /dev/sev-guest backend, and every
# request it made reached the simulated AMD-SP (through the emulated
# device: the image has no other way to it).
expect_snp() {
	local got
	got=$(vm_backend "$1")
	[ "$got" = snp ] || fail "keyd picked backend '${got:-none}', not snp (/dev/sev-guest)"
	grep -aq 'keyd-test: /dev/sev-guest is up' "$1" || fail "the emulated /dev/sev-guest did not come up"
}

# expect_no_sim_config IMG: the image's /init and /etc/keyd select no
# simulator (no KEYD_SIM): keyd is configured exactly as on hardware.
expect_no_sim_config() {
	local cfg tmp
	tmp=$(mktemp)
	# Unpacked from a file: cpio stops at its trailer, and a pipe from zcat
	# would then die of SIGPIPE.
	zcat "$1" >"$tmp"
	cfg=$(cpio -i --quiet --to-stdout init 'etc/keyd/*' <"$tmp" 2>/dev/null) || true
	rm -f "$tmp"
	grep -aq KEYD_TEST_SEVGUEST_PORT <<<"$cfg" || fail "image $1 does not start the emulated /dev/sev-guest"
	if grep -aq KEYD_SIM <<<"$cfg"; then
		fail "image $1 configures the simulator socket backend (KEYD_SIM)"
	fi
	return 0
}

# vm_result LOG -> the RESULT=... word of the KEYD-TEST line ("" if none).
vm_result() {
	tr -d '\r' <"$1" | sed -n 's/.*KEYD-TEST: RESULT=\([a-z]*\).*/\1/p' | tail -n 1
}

# vm_field LOG KEY -> value of KEY=value on the RESULT line.
vm_field() {
	tr -d '\r' <"$1" | grep -a 'KEYD-TEST: RESULT=' | tail -n 1 | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# vm_uptime LOG EVENT -> guest uptime (s) printed with "KEYD-TEST: EVENT t=".
vm_uptime() {
	tr -d '\r' <"$1" | sed -n "s/.*KEYD-TEST: $2 .*t=\([0-9.]*\).*/\1/p; s/.*KEYD-TEST: $2 t=\([0-9.]*\).*/\1/p" | sed -n 1p
}

# Build the test initramfs: vm_initramfs OUT [builder options...]
vm_initramfs() {
	local out=$1
	shift
	"$KEYD_SRC/initramfs/build-test-initramfs.sh" -o "$out" --kver "$VM_KVER" \
		${VM_KROOT:+--modroot "$VM_KROOT"} "$@" "$KEYD_BUILD" >/dev/null
}

# An initramfs-tools configuration for mkinitramfs -d (scenario 05 and the
# systemd GuestOS): vm_mkinitramfs_conf CONFDIR TOOLSDIR MODULE... writes
# the initramfs.conf both use and the MODULEs to load, installs keyd's hook
# and local-top script from TOOLSDIR (the tree's initramfs/initramfs-tools,
# or a package's usr/share/initramfs-tools), and adds the test rig's
# emulated /dev/sev-guest (tests/vm/fixtures).
vm_mkinitramfs_conf() {
	local conf=$1 tools=$2
	shift 2
	mkdir -p "$conf/hooks" "$conf/scripts/init-premount" "$conf/scripts/local-top"
	cat >"$conf/initramfs.conf" <<'CONF'
MODULES=list
BUSYBOX=y
KEYMAP=n
COMPRESS=gzip
DEVICE=
NFSROOT=auto
RUNSIZE=10%
FSTYPE=ext4
RESUME=none
CONF
	printf '%s\n' "$@" >"$conf/modules"
	install -m 0755 "$tools/hooks/keyd" "$conf/hooks/keyd"
	install -m 0755 "$tools/scripts/local-top/keyd" "$conf/scripts/local-top/keyd"
	install -m 0755 "$KEYD_SRC/tests/vm/fixtures/hook-keyd-test-sevguest" "$conf/hooks/keyd-test-sevguest"
	install -m 0755 "$KEYD_SRC/tests/vm/fixtures/init-premount-keyd-test-sevguest" \
		"$conf/scripts/init-premount/keyd-test-sevguest"
}

# A blank (all-zero) disk image of SIZE MiB.
vm_blank_disk() {
	rm -f "$1"
	truncate -s "${2:-64}M" "$1"
}

vm_sha() { sha256sum "$1" | cut -d' ' -f1; }

# luks2_fix_checksums IMG: recompute the SHA-256 checksum of both LUKS2
# header copies after their JSON was edited in place.
luks2_fix_checksums() {
	local img=$1 hdr_size off sum
	hdr_size=$((16#$(dd if="$img" bs=1 skip=8 count=8 status=none | xxd -p)))
	for off in 0 "$hdr_size"; do
		printf '\0%.0s' $(seq 64) | dd of="$img" bs=1 seek=$((off + 448)) conv=notrunc status=none
		sum=$(dd if="$img" bs=4096 skip=$((off / 4096)) count=$((hdr_size / 4096)) status=none |
			sha256sum | cut -d' ' -f1)
		echo "$sum" | xxd -r -p | dd of="$img" bs=1 seek=$((off + 448)) conv=notrunc status=none
	done
}

# vm_cipher_null_rebuild IMG KEYFILE: what a malicious host does to a keyd
# volume (CVE-2025-59054 class): a brand-new LUKS2 header with the same UUID
# and data offset, a key the host knows, the victim's keyd token(s) copied
# over, and cipher_null for the data segment and the keyslot - so that any
# passphrase "opens" it and the guest writes its state in clear.
# cryptsetup refuses cipher_null without kernel crypto, so the header is
# made with AES by cryptsetup and the cipher names are then swapped in the
# JSON (same length) with fresh checksums.
vm_cipher_null_rebuild() {
	local img=$1 keyfile=$2 uuid offset toks t
	uuid=$(cryptsetup luksUUID "$img")
	offset=$(cryptsetup luksDump --dump-json-metadata "$img" |
		sed -n 's/.*"segments":{"0":{[^}]*"offset":"\([0-9]*\)".*/\1/p')
	toks=$(mktemp -d)
	for t in $(seq 0 31); do
		cryptsetup token export --token-id "$t" "$img" >"$toks/$t.json" 2>/dev/null || rm -f "$toks/$t.json"
	done
	cryptsetup luksFormat -q --type luks2 --uuid "$uuid" --offset $((offset / 512)) \
		--sector-size 4096 --cipher aes-xts-plain64 --key-size 512 \
		--pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file "$keyfile" "$img" || return 1
	for t in "$toks"/*.json; do
		[ -e "$t" ] || continue
		sed 's/"keyslots":\[[^]]*\]/"keyslots":["0"]/' "$t" |
			cryptsetup token import --json-file - --token-id "$(basename "$t" .json)" "$img" || return 1
	done
	rm -rf "$toks"
	local hdr_size
	hdr_size=$((16#$(dd if="$img" bs=1 skip=8 count=8 status=none | xxd -p)))
	perl -e '
		my ($img, $len) = @ARGV;
		open(my $fh, "+<:raw", $img) or die;
		for my $off (0, $len) {
			seek($fh, $off + 4096, 0); read($fh, my $js, $len - 4096);
			$js =~ s/aes-xts-plain64/cipher_null-ecb/g;
			seek($fh, $off + 4096, 0); print $fh $js;
		}
		close($fh);' "$img" "$hdr_size"
	luks2_fix_checksums "$img"
}

# ---------------------------------------------------------------- scenarios
# Shared state of one check-vm run lives in $VM_WORK: the chip, the original
# image, the state disk and the console logs.
vm_setup() {
	: "${VM_WORK:?VM_WORK must be set}"
	VM_ORIG=$VM_WORK/orig.cpio.gz
	export VM_DISK=$VM_WORK/state.img
	VM_CHIP=$VM_WORK/chip
	# The chip first: its ARK is pinned in the image (vm_release_setup).
	if [ ! -d "$VM_CHIP" ]; then
		sim_init "$VM_CHIP" || return 1
	fi
	vm_release_setup || return 1
	if [ ! -f "$VM_ORIG" ]; then
		echo "keyd-test-image v1" >"$VM_WORK/image-version" # read by tests/bench/boot.sh
		vm_image_variant "$VM_ORIG" "keyd-test-image v1" || return 1
	fi
}

# vm_image_variant OUT VERSION_TEXT: the original image with VERSION_TEXT in
# /etc/keyd/image-version; "keyd-test-image v1" gives the original itself.
# Anything else differs from it in that one file only (same volumes, same
# pinned release keys and ARK), hence another measurement.
vm_image_variant() {
	local out=$1 f
	f=$VM_WORK/$(basename "$out").version
	echo "$2" >"$f"
	# Provisioning labels the token with the version that created the
	# volume (1.0); a handoff labels N's slot from N's manifest.
	echo "state /dev/vda ext4 /state label=1.0" >"$VM_WORK/volumes"
	vm_release_adds
	vm_initramfs "$out" --add "$f=/etc/keyd/image-version" --volumes "$VM_WORK/volumes" \
		"${VM_RELEASE_ADDS[@]}"
}

# vm_release_setup: the release signing keys of this run (3 keys, any 2 sign
# a manifest) in $VM_RELEASE, and the chip's ARK. Every image gets the public
# side through vm_release_adds: measured, as release keys are on real images.
vm_release_setup() {
	VM_RELEASE=$VM_WORK/release
	[ -f "$VM_RELEASE/release-keys.json" ] && return 0
	mkdir -p "$VM_RELEASE"
	local i
	for i in 1 2 3; do
		"$KEYD_BUILD/keyd" manifest keygen -o "$VM_RELEASE/k$i.pem" --pub "$VM_RELEASE/k$i.pub" || return 1
	done
	"$KEYD_BUILD/keyd-simfw" --state "$VM_CHIP" certs --out "$VM_RELEASE/certs" >/dev/null || return 1
	"$KEYD_BUILD/keyd" manifest keys --threshold 2 -o "$VM_RELEASE/release-keys.json.tmp" \
		"$VM_RELEASE"/k[123].pub || return 1
	mv "$VM_RELEASE/release-keys.json.tmp" "$VM_RELEASE/release-keys.json"
}

# Builder options that put the release keys and the ARK into an image, in
# the array VM_RELEASE_ADDS.
# The revocation floor every image of the scenarios pins is 1, the svn of
# the first release (what N's boot judges a pending slot's maker by).
vm_release_adds() {
	[ -f "$VM_WORK/release/peer-svn-floor" ] || echo 1 >"$VM_WORK/release/peer-svn-floor"
	VM_RELEASE_ADDS=(--add "$VM_WORK/release/release-keys.json=/etc/keyd/release-keys.json"
		--add "$VM_WORK/release/certs/ark.pem=/etc/keyd/ark.pem"
		--add "$VM_WORK/release/peer-svn-floor=/etc/keyd/peer-svn-floor")
}

# vm_launch NAME INITRD APPEND DISK [POLICY]: one launch with its own
# simulator; the console ends up in $VM_WORK/NAME.console.
vm_launch() {
	local name=$1 initrd=$2 append=$3 disk=$4 policy=${5:-} rc
	local sock=$VM_WORK/$name.sock
	VM_LOG=$VM_WORK/$name.console
	sim_start "$VM_CHIP" "$sock" "$initrd" "$append" "$policy" || return 1
	rc=0
	vm_boot "$VM_LOG" "$disk" "$initrd" "$append" "$sock" || rc=$?
	sim_stop
	if [ "$rc" -ne 0 ]; then
		echo "vm_launch $name: qemu exited $rc (124 = timeout)" >&2
		tail -n 5 "$VM_LOG.qemu" >&2
	fi
	return "$rc"
}

# Test assertions: print what failed and the relevant console lines.
fail() {
	echo "FAIL: $*" >&2
	if [ -n "${VM_LOG:-}" ] && [ -f "$VM_LOG" ]; then
		echo "--- console ($VM_LOG), keyd lines:" >&2
		grep -a -E 'keyd|KEYD-TEST|Kernel panic|not found' "$VM_LOG" | grep -av '^\[' | tail -n 40 >&2
	fi
	exit 1
}

expect_result() { # LOG WANT
	local got
	got=$(vm_result "$1")
	[ "$got" = "$2" ] || fail "expected RESULT=$2, console says '${got:-nothing}'"
}
