# shellcheck shell=sh
# SPDX-License-Identifier: Apache-2.0
#
# Benchmark only (tests/bench/rotate-guest.sh): shipped in the bench image
# as /etc/keyd/test-hook.sh, which the test /init sources. After keyd has
# unlocked and mounted the state volume on /dev/vda, in the same boot:
#   /dev/vdb  a plain LUKS2 volume of the same size and layout, made on the
#             host with a PBKDF2-1000 key file (/etc/keyd/bench-cs.key, in
#             this image only); opened and mounted here as ext4
#   /dev/vdc  a raw disk of the same size: the dd ceiling
# then, for each of BENCH_RUNS runs and each resilience mode (interleaved,
# the first tool alternating from run to run), with the guest's monotonic
# clock (/proc/uptime) around each command, caches dropped before each:
#   keyd rotate /dev/vda (online: the mapping is active and mounted)
#   cryptsetup reencrypt --active-name bench-cs (online, same resilience,
#     libcryptsetup's default hotzone as keyd, PBKDF2-SHA512-1000 keyslots)
#   dd read+write in place of the same data area of /dev/vdc (conv=fsync)
# Console lines:
#   KEYD-TEST: BENCH-ROT tool=T mode=M run=N s=SECONDS [run_s=S]
#   KEYD-TEST: BENCH-ROT-DONE mb=MB ok=1|0 why=...
test_hook_post_action() {
	_bh_runs=$(cat /etc/keyd/bench-runs)
	_bh_modes=$(cat /etc/keyd/bench-modes)
	_bh_key=/etc/keyd/bench-cs.key
	_bh_off=16 # MiB: the LUKS2 data offset of both volumes (checked by the host)
	_bh_sz=$(($(cat /sys/block/vda/size) / 2048 - _bh_off))
	if [ "$(cat /sys/block/vdb/size)" != "$(cat /sys/block/vda/size)" ] ||
		[ "$(cat /sys/block/vdc/size)" != "$(cat /sys/block/vda/size)" ]; then
		say "BENCH-ROT-DONE mb=$_bh_sz ok=0 why=disk-sizes-differ"
		return 0
	fi
	if ! cryptsetup open --type luks2 --key-file "$_bh_key" /dev/vdb bench-cs ||
		! /usr/lib/keyd/mke2fs -q -t ext4 /dev/mapper/bench-cs ||
		! mkdir -p /mnt/cs || ! mount -t ext4 /dev/mapper/bench-cs /mnt/cs; then
		say "BENCH-ROT-DONE mb=$_bh_sz ok=0 why=cryptsetup-volume"
		return 0
	fi
	# The same file on both file systems, checked after every rotation.
	head -c 4194304 /dev/urandom >/tmp/bench.data
	cp /tmp/bench.data "$2/bench.data" && cp /tmp/bench.data /mnt/cs/bench.data && sync
	_bh_sum=$(md5sum </tmp/bench.data)
	say "BENCH-ROT-START mb=$_bh_sz runs=$_bh_runs modes=$_bh_modes t=$(uptime_s)"
	_bh_i=1
	while [ "$_bh_i" -le "$_bh_runs" ]; do
		if [ $((_bh_i % 2)) = 1 ]; then _bh_order="keyd cryptsetup"; else _bh_order="cryptsetup keyd"; fi
		for _bh_mode in $_bh_modes; do
			for _bh_tool in $_bh_order; do
				bench_rot_one "$_bh_tool" "$_bh_mode" "$_bh_i" "$_bh_sz" "$2" || {
					say "BENCH-ROT-DONE mb=$_bh_sz ok=0 why=$_bh_tool-$_bh_mode-run-$_bh_i"
					return 0
				}
			done
		done
		bench_rot_one dd - "$_bh_i" "$_bh_sz" "$2" || {
			say "BENCH-ROT-DONE mb=$_bh_sz ok=0 why=dd-run-$_bh_i"
			return 0
		}
		_bh_i=$((_bh_i + 1))
	done
	umount /mnt/cs
	cryptsetup close bench-cs
	say "BENCH-ROT-DONE mb=$_bh_sz ok=1 t=$(uptime_s)"
}

# bench_rot_one TOOL MODE RUN MB MOUNTPOINT: one timed command.
bench_rot_one() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	case $1 in
	keyd)
		_bo_t0=$(uptime_s)
		_bo_out=$(keyd rotate /dev/vda --resilience "$2" --json 2>/tmp/bench-rot.err) || {
			echo "rotate-bench: keyd rotate failed: $_bo_out $(tail -n 5 /tmp/bench-rot.err)"
			return 1
		}
		_bo_t1=$(uptime_s)
		case $_bo_out in
		*'"online":true'*'"resilience":"'"$2"'"'*'"bytes":'"$(($4 * 1048576))",*) ;;
		*)
			echo "rotate-bench: keyd rotate was not an online $2 rotation of $4 MiB: $_bo_out"
			return 1
			;;
		esac
		_bo_run=$(echo "$_bo_out" | sed -n 's/.*"seconds":\([0-9.e+-]*\).*/\1/p')
		;;
	cryptsetup)
		_bo_t0=$(uptime_s)
		cryptsetup reencrypt -q --active-name bench-cs --resilience "$2" \
			--key-file /etc/keyd/bench-cs.key --pbkdf pbkdf2 --hash sha512 \
			--pbkdf-force-iterations 1000 /dev/vdb >/tmp/bench-rot.err 2>&1 || {
			echo "rotate-bench: cryptsetup reencrypt failed: $(tail -n 5 /tmp/bench-rot.err)"
			return 1
		}
		_bo_t1=$(uptime_s)
		_bo_dump=$(cryptsetup luksDump /dev/vdb)
		if [ -z "$_bo_dump" ] || [ "${_bo_dump#*online-reencrypt}" != "$_bo_dump" ]; then
			echo "rotate-bench: cryptsetup reencrypt left the requirement in the header"
			return 1
		fi
		_bo_run=
		;;
	dd)
		_bo_t0=$(uptime_s)
		dd if=/dev/vdc of=/dev/vdc bs=1048576 skip=16 seek=16 count="$4" conv=notrunc,fsync \
			2>/tmp/bench-rot.err || {
			echo "rotate-bench: dd failed: $(cat /tmp/bench-rot.err)"
			return 1
		}
		_bo_t1=$(uptime_s)
		_bo_run=
		;;
	esac
	if [ "$1" != dd ]; then
		sync
		echo 3 >/proc/sys/vm/drop_caches
		if [ "$(md5sum <"$5/bench.data")" != "$_bh_sum" ] ||
			[ "$(md5sum </mnt/cs/bench.data)" != "$_bh_sum" ]; then
			echo "rotate-bench: a file changed after $1 $2"
			return 1
		fi
	fi
	say "BENCH-ROT tool=$1 mode=$2 run=$3 s=$(awk "BEGIN {printf \"%.2f\", $_bo_t1 - $_bo_t0}")${_bo_run:+ run_s=$_bo_run}"
}
