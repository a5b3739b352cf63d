#!/bin/bash
# The module layering of docs/architecture.md ("Dependencies"), checked on
# the tree: each keyd/lib module includes only the public headers of the
# modules below it (and its own private internal.h); nothing in libkeyd, the
# production tools or the plugin includes the simulator's keyd/sim.h.
set -euo pipefail
# shellcheck source=tests/lib.bash
. "$(dirname "$0")/../lib.bash"
kd_loud
: "${KEYD_SRC:=$(cd "$(dirname "$0")/../.." && pwd)}"
cd "$KEYD_SRC"
fail() { echo "FAIL: $*" >&2; exit 1; }

# Public header -> module that owns it.
declare -A owner=(
	[error.h]=core [cursor.h]=core [secret.h]=core [util.h]=core [failpoint.h]=core [hkdf.h]=core [cleanup.h]=core
	[report.h]=snp [keyreq.h]=snp [certtable.h]=snp
	[backend.h]=backend [simwire.h]=backend
	[verify.h]=attest [certbundle.h]=attest [measure.h]=measure [manifest.h]=manifest [root.h]=boot
	[header.h]=luks2 [token.h]=luks2 [volume.h]=luks2 [luks2json.h]=luks2 [rotate.h]=luks2
	[escrow.h]=escrow [recover.h]=recover [handoff.h]=handoff [frame.h]=handoff [pending.h]=handoff
)
# Module -> the modules it may include besides core and itself.
declare -A allowed=(
	[core]="" [snp]="" [backend]="snp" [attest]="snp" [measure]="" [manifest]="" [boot]=""
	[luks2]="backend snp" [escrow]="luks2 backend snp" [recover]="escrow luks2 backend snp"
	[handoff]="luks2 backend attest manifest snp"
)

# Every public header has an owner (a new header must be placed on purpose).
for h in keyd/include/keyd/*.h; do
	b=$(basename "$h")
	[ -n "${owner[$b]:-}" ] || fail "keyd/include/keyd/$b belongs to no module in this test and docs/architecture.md"
done

n=0
for dir in keyd/lib/*/; do
	mod=$(basename "$dir")
	[ -n "${allowed[$mod]+set}" ] || fail "keyd/lib/$mod is not a module of docs/architecture.md"
	for f in "$dir"*.[ch]; do
		while IFS= read -r inc; do
			n=$((n + 1))
			case $inc in
			keyd/sim.h) fail "$f includes the simulator (keyd/sim.h)" ;;
			keyd/*.h)
				o=${owner[${inc#keyd/}]:-}
				[ -n "$o" ] || fail "$f includes unknown header $inc"
				[ "$o" = core ] || [ "$o" = "$mod" ] && continue
				case " ${allowed[$mod]} " in
				*" $o "*) ;;
				*) fail "$f ($mod) includes $inc of module $o: not allowed by docs/architecture.md" ;;
				esac
				;;
			internal.h | "$mod"/internal.h) ;;
			*/internal.h) fail "$f includes another module's private header $inc" ;;
			*) fail "$f includes $inc" ;;
			esac
		done < <(sed -n 's/^#include "\(.*\)"/\1/p' "$f")
	done
done
[ "$n" -gt 50 ] || fail "found only $n includes: the scan is broken"

# No simulator in production code.
for d in keyd/lib keyd/tools/keyd keyd/tools/recover keyd/tools/common luks-hooks; do
	if grep -rln '#include "keyd/sim.h"' "$d" >/tmp/keyd-layering.$$ 2>/dev/null; then
		hits=$(tr '\n' ' ' </tmp/keyd-layering.$$)
		rm -f /tmp/keyd-layering.$$
		fail "production code includes keyd/sim.h: $hits"
	fi
done
rm -f /tmp/keyd-layering.$$
echo "ok: $n includes follow the layering"
