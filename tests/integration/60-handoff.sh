#!/bin/bash
# Attested upgrade handoff, host level: two simfw launches on one chip with
# different measurements, full handoff over loopback TLS, N unlocks with its
# own key (dry-run), `keyd commit` activates N and keeps O for one rollback,
# `keyd status` shows the states; a rerun replaces rather than duplicates.
set -euo pipefail
# shellcheck source=tests/integration/handoff-lib.bash
. "$(dirname "$0")/handoff-lib.bash"

setup_world
SHA0=$(img_sha)

# N cannot open the volume before the handoff.
if "$KEYD" unlock "$T/disk.img" --dry-run "${RK[@]}" --backend sim --sim "unix:$T/n.sock" 2>"$T/err"; then fail "N opened before handoff"; fi

serve_bg --timings
receive --timings --json
wait_o
[ "$ORC" = 0 ] || fail "O exit $ORC: $(cat "$T/o.err")"
[ "$NRC" = 0 ] || fail "N exit $NRC: $(cat "$T/n.err")"
grep -q "1 volume(s) enrolled" "$T/o.out" || fail "O output: $(cat "$T/o.out")"
grep -Eq "timings: tls .* verify .* enroll .* total" "$T/o.out" || fail "O timings missing"
python3 - "$T/n.out" <<'EOF' || fail "N --json: $(cat "$T/n.out")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ok"] is True and d["role"] == "N"
for k in ("tls_ms", "report_ms", "verify_ms", "enroll_ms", "total_ms"):
    assert d["timings"][k] >= 0, k
EOF
[ "$(img_sha)" != "$SHA0" ] || fail "handoff wrote nothing"

# N now unlocks (dry-run) with its own key; O still does too.
"$KEYD" unlock "$T/disk.img" --dry-run --state-file "$T/n.slot" "${RK[@]}" --backend sim --sim "unix:$T/n.sock" >"$T/out" || fail "N cannot unlock after handoff"
grep -q "pending" "$T/out" || fail "N unlocked through an unexpected slot: $(cat "$T/out")"
[ "$(cat "$T/n.slot")" = pending ] || fail "N's --state-file says '$(cat "$T/n.slot")', not pending"
"$KEYD" unlock "$T/disk.img" --dry-run --state-file "$T/o.slot" "${RK[@]}" --backend sim --sim "unix:$T/o.sock" >/dev/null || fail "O lost access after handoff"
[ "$(cat "$T/o.slot")" = active ] || fail "O's --state-file says '$(cat "$T/o.slot")', not active"
# Retire never removes O while N is only pending (N has not proven it boots).
"$KEYD" status "$T/disk.img" --json "${SIM_o[@]}" >"$T/st.json" || true
OSLOT=$(python3 -c 'import json,sys; print([t["keyslot"] for t in json.load(open(sys.argv[1]))["tokens"] if t["measurement"]==sys.argv[2]][0])' "$T/st.json" "$MO")
SHA1=$(img_sha)
if "$KEYD_BUILD/keyd-recover" retire "$T/disk.img" "$OSLOT" >"$T/out" 2>"$T/err"; then
	fail "keyd-recover retired O while N is only pending"
fi
grep -q "last slot that opens" "$T/err" || fail "retire refusal: $(cat "$T/err")"
[ "$(img_sha)" = "$SHA1" ] || fail "refused retire wrote to the image"

# Status: O active, N pending with N's label, svn and measurement.
"$KEYD" status "$T/disk.img" --json "${SIM_n[@]}" >"$T/st.json" || true
python3 - "$T/st.json" "$MO" "$MN" <<'EOF' || fail "status after handoff: $(cat "$T/st.json")"
import json, sys
d = json.load(open(sys.argv[1]))
toks = d["tokens"]
by = {t["measurement"]: t for t in toks}
assert len(toks) == 2, toks
assert by[sys.argv[2]]["state"] == "active"
n = by[sys.argv[3]]
assert n["state"] == "pending" and n["label"] == "2.0" and n["svn"] == 2, n
EOF

# A second handoff to the same N replaces the pending slot, never adds one.
serve_bg
receive
wait_o
[ "$ORC" = 0 ] && [ "$NRC" = 0 ] || fail "rerun: O $ORC N $NRC: $(cat "$T/o.err" "$T/n.err")"
"$KEYD" status "$T/disk.img" --json "${SIM_n[@]}" >"$T/st.json" || true
python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["tokens"]; assert len(t)==2, t' "$T/st.json" ||
	fail "rerun duplicated the pending slot"

# Commit as N: N active, O retired (kept for one rollback).
"$KEYD" commit "$T/disk.img" --json "${RK[@]}" --backend sim --sim "unix:$T/n.sock" >"$T/c.json" || fail "commit failed"
python3 - "$T/c.json" <<'EOF' || fail "commit json: $(cat "$T/c.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["activated"] is True and d["retired"] == 1 and d["killed"] == 0, d
EOF
"$KEYD" status "$T/disk.img" --json "${SIM_n[@]}" >"$T/st.json" || true
python3 - "$T/st.json" "$MO" "$MN" <<'EOF' || fail "status after commit: $(cat "$T/st.json")"
import json, sys
d = json.load(open(sys.argv[1]))
by = {t["measurement"]: t for t in d["tokens"]}
assert by[sys.argv[3]]["state"] == "active", by
assert by[sys.argv[2]]["state"] == "retired", by
EOF
"$KEYD" unlock "$T/disk.img" --dry-run "${RK[@]}" --backend sim --sim "unix:$T/n.sock" >/dev/null || fail "N cannot unlock after commit"
# Rollback: O's retired slot still opens for O (kept for one rollback).
"$KEYD" unlock "$T/disk.img" --dry-run "${RK[@]}" --backend sim --sim "unix:$T/o.sock" >/dev/null || fail "O cannot roll back through its retired slot"
# Rolled back, O must still refuse a peer below the volume's newest ACTIVE
# release (N, SVN 2), even though that peer's SVN equals O's own (1).
MP=$(printf 'd4%.0s' $(seq 48))
manifest "$T/mp.json" 1.1 1 "$MP" 1 2
launch p "$T/chip" "$MP"
SHA2=$(img_sha)
N_LAUNCH=p N_MANIFEST=$T/mp.json serve_bg
N_LAUNCH=p N_MANIFEST=$T/mp.json receive
wait_o
[ "$ORC" != 0 ] || fail "O enrolled a release below the active SVN"
grep -q "active slot at SVN 2" "$T/o.err" || fail "SVN-below-active refusal: $(cat "$T/o.err")"
[ "$(img_sha)" = "$SHA2" ] || fail "refused downgrade wrote to the image"
# Rerun is harmless.
"$KEYD" commit "$T/disk.img" "${RK[@]}" --backend sim --sim "unix:$T/n.sock" | kd_has "already active" || fail "commit rerun"

# A third version M: N (now active) serves, M commits. Keep-previous keeps N
# as retired and kills O's older retired slot.
launch m "$T/chip" "$MX"
manifest "$T/mm.json" 3.0 3 "$MX" 2 3
O_LAUNCH=n O_MANIFEST=$T/mn.json serve_bg
N_LAUNCH=m N_MANIFEST=$T/mm.json receive
wait_o
[ "$ORC" = 0 ] && [ "$NRC" = 0 ] || fail "N -> M handoff: $(cat "$T/o.err" "$T/n.err")"
"$KEYD" commit "$T/disk.img" --json "${RK[@]}" --backend sim --sim "unix:$T/m.sock" >"$T/c.json" || fail "M commit failed"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["retired"]==1 and d["killed"]==1, d' \
	"$T/c.json" || fail "M commit: $(cat "$T/c.json")"
"$KEYD" status "$T/disk.img" --json "${SIM_m[@]}" >"$T/st.json" || true
python3 - "$T/st.json" "$MO" "$MN" "$MX" <<'EOF2' || fail "status after M commit: $(cat "$T/st.json")"
import json, sys
by = {t["measurement"]: t["state"] for t in json.load(open(sys.argv[1]))["tokens"]}
assert sys.argv[2] not in by and by[sys.argv[3]] == "retired" and by[sys.argv[4]] == "active", by
EOF2
"$KEYD" unlock "$T/disk.img" --dry-run "${RK[@]}" --backend sim --sim "unix:$T/m.sock" >/dev/null || fail "M cannot unlock"

# --retire-previous kills the previous slot; the committed one still opens.
"$KEYD" commit "$T/disk.img" --retire-previous --json "${RK[@]}" --backend sim --sim "unix:$T/m.sock" >"$T/c.json" || fail "retire-previous"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["killed"]==1, d' "$T/c.json" ||
	fail "retire-previous did not kill N's slot: $(cat "$T/c.json")"
"$KEYD" unlock "$T/disk.img" --dry-run "${RK[@]}" --backend sim --sim "unix:$T/m.sock" >/dev/null || fail "M lost access"
[ "$(cryptsetup luksDump --dump-json-metadata "$T/disk.img" |
	python3 -c 'import json,sys; print(len(json.load(sys.stdin)["keyslots"]))')" = 1 ] ||
	fail "retired keyslots left behind"
echo "PASS: handoff"
