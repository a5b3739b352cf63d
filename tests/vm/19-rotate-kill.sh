#!/bin/bash
# Scenario 19: power loss in the middle of a volume-key rotation (issue 17).
# Boot 1 provisions the volume and writes four files of random data (their
# checksums on the console). Boot 2 starts an online `keyd rotate` of the
# mounted volume, throttled so that it runs for a while, and the host kills
# QEMU (SIGKILL: no shutdown, no sync) while it runs. Boots 3 and 4 find the
# rotation interrupted: the initramfs unlocks the volume anyway and resumes
# the rotation (keyd_rotate_resume), and the host kills them too, once a few
# seconds into the resume and once right as it starts. Boot 5 unlocks,
# finishes the rotation and mounts the volume: every file has the checksum it
# had before the first kill, the header holds the new key only, and the old
# volume key is gone. After every kill the host checks that it landed in the
# middle of the rotation (the header still carries the reencryption
# requirement); a kill inside a header write, which leaves the two copies
# disagreeing, is repaired as an admin would (keyd-recover repair, both
# copies saved first) before the next boot.
set -euo pipefail
# Boot 5 re-encrypts most of the volume under TCG: allow it time.
: "${VM_TIMEOUT:=420}"
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
vm_setup

T=$VM_WORK/rotate-kill
rm -rf "$T"
mkdir -p "$T"
img=$VM_WORK/rotate-kill.cpio.gz
echo "state /dev/vda ext4 /state label=1.0" >"$T/volumes"
echo "keyd-test-image v1 rotate-kill" >"$T/image-version"
# 1 MiB/s: the 48 MiB data area takes most of a minute to re-encrypt, so a
# kill a few seconds into a boot's rotation lands in its middle.
cat >"$T/boot.conf" <<'CONF'
KEYD_TEST_SEVGUEST_PORT=/dev/virtio-ports/org.keyd.sim
KEYD_ROTATE_MAX_RATE=1M
CONF
vm_initramfs "$img" --volumes "$T/volumes" --boot-conf "$T/boot.conf" \
	--add "$T/image-version=/etc/keyd/image-version" \
	--add "$KEYD_SRC/tests/vm/fixtures/rotate-kill-hook.sh=/etc/keyd/test-hook.sh" ||
	fail "cannot build the rotation-kill test image"
disk=$T/state.img
vm_blank_disk "$disk" 64
# shellcheck disable=SC2034 # read by vm_boot (lib.sh)
VM_QEMU_EXTRA=(-pidfile "$T/qemu.pid")

sums() { # LOG -> the digest of the files' checksums
	tr -d '\r' <"$1" | sed -n 's/.*KEYD-TEST: SUMS digest=\([0-9a-f]*\) files=4.*/\1/p' | tail -n 1
}
digest() { # DISK -> number of digests and the volume-key digests of the header
	cryptsetup luksDump --dump-json-metadata "$1" |
		python3 -c 'import json,sys; d=json.load(sys.stdin)["digests"]; print(len(d), *sorted(v["digest"] for v in d.values()))'
}
in_rotation() { # DISK: the header carries the online-reencrypt requirement
	cryptsetup luksDump --dump-json-metadata "$1" |
		python3 -c 'import json,sys; r=json.load(sys.stdin)["config"].get("requirements",{}); sys.exit(0 if any(m.startswith("online-reencrypt") for m in r.get("mandatory",[])) else 1)'
}
done_bytes() { # DISK -> bytes already under the new key, as keyd-recover status reads them
	"$KEYD_BUILD/keyd-recover" status "$1" --json 2>/dev/null |
		python3 -c 'import json,sys; print(json.load(sys.stdin).get("rotation",{}).get("bytes_done",0))'
}
n_repair=0
n_kills=0
heal() { # DISK: a kill inside a header write leaves the copies disagreeing
	if ! "$KEYD_BUILD/keyd-recover" status "$1" --json 2>/dev/null |
		python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["header"]["copies_agree"] else 1)'; then
		n_repair=$((n_repair + 1))
		echo "kill landed inside a header write: keyd-recover repair ($n_repair)"
		"$KEYD_BUILD/keyd-recover" repair "$1" "$T/repair-$n_repair" --yes >/dev/null ||
			fail "repair of the interrupted header write failed"
	fi
}

# kill_launch NAME PATTERN DELAY: boot, wait for PATTERN on the console, let
# the guest run DELAY more seconds, then SIGKILL QEMU.
kill_launch() {
	local name=$1 pattern=$2 delay=$3 pid i
	rm -f "$T/qemu.pid"
	VM_LOG=$VM_WORK/$name.console
	(
		# shellcheck disable=SC2034 # vm_traps reaps this subshell's own children
		VM_PIDS=()
		vm_traps
		vm_launch "$name" "$img" "$VM_APPEND_BASE" "$disk" >/dev/null 2>&1 || true
	) &
	pid=$!
	vm_track "$pid"
	for i in $(seq 1 $((VM_TIMEOUT * 5))); do
		if [ -f "$VM_LOG" ]; then
			tr -d '\r' <"$VM_LOG" >"$T/console.now"
			grep -aq -- "$pattern" "$T/console.now" && break
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	[ "$i" -lt $((VM_TIMEOUT * 5)) ] && [ -s "$T/qemu.pid" ] && kill -0 "$pid" 2>/dev/null ||
		fail "$name: '$pattern' never appeared on the console"
	sleep "$delay"
	# A fast host can finish the rotation before DELAY is up: the guest may
	# then be gone already. That is no failure of keyd; the kill simply
	# interrupted nothing, and the final boot's checks still apply.
	kill -KILL "$(cat "$T/qemu.pid")" 2>/dev/null || true
	wait "$pid" || true
	vm_untrack "$pid"
	heal "$disk"
	if ! in_rotation "$disk"; then
		echo "$name: the rotation had reached its end before the kill; nothing was interrupted"
		return 0
	fi
	n_kills=$((n_kills + 1))
	echo "$name: killed ${delay}s after '$pattern'; $(done_bytes "$disk") bytes under the new key"
}

# 1: provision, write the files.
vm_launch 19a-rotate-kill-provision "$img" "$VM_APPEND_BASE" "$disk" || fail "provisioning boot did not power off"
expect_result "$VM_LOG" ok
[ "$(vm_field "$VM_LOG" state)" = provisioned ] || fail "volume was not provisioned"
want=$(sums "$VM_LOG")
[ ${#want} -eq 64 ] || fail "no checksums on the console"
marker=$(vm_field "$VM_LOG" marker)
old_digest=$(digest "$disk")

# 2: online rotation of the mounted volume, killed a few seconds in.
kill_launch 19b-rotate-kill-online 'keyd rotate: /dev/vda: starting,' 6
[ "$(vm_field "$VM_LOG" marker)" = "$marker" ] || fail "marker differs before the rotation"
[ "$(sums "$VM_LOG")" = "$want" ] || fail "files differ before the rotation"

# The boot-time resume's first progress line.
resume_line='keyd: state: /dev/vda: \(resuming\|starting\),'

# 3: the initramfs unlocks the interrupted volume and resumes; killed again.
kill_launch 19c-rotate-kill-resume "$resume_line" 5
grep -aq 'unlocked as /dev/mapper/state' "$VM_LOG" || fail "the interrupted volume did not unlock"

# 4: killed as the resume starts (in the replay of the interrupted hotzone
# or the first one after it), if a rotation is still left to resume.
if in_rotation "$disk"; then
	kill_launch 19d-rotate-kill-resume-early "$resume_line" 0
fi
# The first kill always lands: the online rotation is throttled to about
# 1 MiB/s of its 48 MiB.
[ "$n_kills" -ge 1 ] || fail "no kill landed in the middle of a rotation"

# 5: unlock, finish, mount: every file intact.
vm_launch 19e-rotate-kill-finish "$img" "$VM_APPEND_BASE" "$disk" || fail "final boot did not power off"
expect_result "$VM_LOG" ok
[ "$(vm_field "$VM_LOG" state)" = unlocked ] || fail "volume was not unlocked"
# Usually the final boot resumes and finishes. When kill 4 came after the
# last hotzone was written but before the header was finalized, activating
# the volume finalizes it (libcryptsetup's recovery on activation) and there
# is nothing left to resume; the header checks below prove the rotation
# completed either way.
if grep -aq "$resume_line" "$VM_LOG"; then
	grep -aq 'keyd: state: /dev/vda: rotation finished' "$VM_LOG" ||
		fail "the final boot resumed the rotation but did not finish it"
else
	echo "19e: nothing left to resume: the unlock completed the rotation kill 4 interrupted at its end"
fi
[ "$(vm_field "$VM_LOG" marker)" = "$marker" ] || fail "marker differs after the rotation"
[ "$(sums "$VM_LOG")" = "$want" ] || fail "files differ after the interrupted rotation"
in_rotation "$disk" && fail "the header still carries the reencryption requirement"
new_digest=$(digest "$disk")
[ "${new_digest%% *}" = 1 ] || fail "header after rotation has ${new_digest%% *} digests"
[ "${new_digest#* }" != "${old_digest#* }" ] || fail "volume key digest unchanged: nothing was rotated"
echo "rotation killed $n_kills times mid-way (online, resuming, resume start; $n_repair header repairs); finished at boot; marker $marker and 16 MiB of files intact"
