#!/bin/bash
# keyd-recover with admin private keys in a PKCS#11 token (SoftHSM2 here, a
# smartcard or HSM in production): the admins' keys exist only in the token
# (no key file on disk), an RSA admin and an EC admin (ECDH inside the token)
# each decrypt their share through a pkcs11: URI, and the operator's
# recovery check combines them. A wrong PIN or object is refused in one
# line and nothing is written.
set -euo pipefail
# shellcheck source=tests/lib.bash
. "$(dirname "$0")/../lib.bash"
kd_loud
B=${KEYD_BUILD:?}
[ -x "$B/keyd-simfw" ] && [ -x "$B/keyd-recover" ] || exit 77
command -v softhsm2-util >/dev/null && command -v pkcs11-tool >/dev/null || exit 77
MOD=/usr/lib/softhsm/libsofthsm2.so
[ -e "$MOD" ] || exit 77
[ -e "$(openssl version -e | sed -n 's/^ENGINESDIR: "\(.*\)"$/\1/p')/pkcs11.so" ] || exit 77
T=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$T"; }
trap cleanup EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_refused() { # PATTERN CMD...
	local pat=$1 rc; shift
	set +e; "$@" >out 2>err; rc=$?; set -e
	[ $rc -eq 1 ] || fail "'$*': exit $rc, want 1 ($(cat err))"
	grep -q -- "$pat" err || fail "'$*': message '$(cat err)' lacks '$pat'"
}

# A SoftHSM2 token of its own, in this test's directory.
mkdir tokens
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$T" >softhsm2.conf
export SOFTHSM2_CONF=$T/softhsm2.conf KEYD_PKCS11_MODULE=$MOD
softhsm2-util --init-token --free --label keyd-admins --pin 1234 --so-pin 5678 >/dev/null
# RSA admin: key made outside, imported, then the file destroyed.
openssl req -x509 -nodes -newkey rsa:3072 -keyout rsa.key -out rsa.crt -subj /CN=rsa-admin -days 2 2>/dev/null
openssl pkcs8 -topk8 -nocrypt -in rsa.key -out rsa.pk8
softhsm2-util --import rsa.pk8 --token keyd-admins --label rsa-admin --id 01 --pin 1234 >/dev/null
rm -f rsa.key rsa.pk8
# EC admin: key generated inside the token (derive usage for ECDH); its
# certificate is signed by the token.
pkcs11-tool --module "$MOD" --token-label keyd-admins --login --pin 1234 --keypairgen \
	--key-type EC:prime256v1 --usage-derive --usage-sign --label ec-admin --id 02 >/dev/null 2>&1 \
	|| fail "EC key generation in the token"
EC_URI="pkcs11:token=keyd-admins;object=ec-admin;type=private?pin-value=1234"
RSA_URI="pkcs11:token=keyd-admins;object=rsa-admin;type=private?pin-value=1234"
openssl req -new -x509 -engine pkcs11 -keyform engine -key "$EC_URI" -subj /CN=ec-admin -days 2 \
	-out ec.crt >/dev/null 2>&1 || fail "certificate for the token's EC key"
[ -z "$(find . -name '*.key' -o -name '*.pk8')" ] || fail "an admin key file is on disk"
openssl req -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout op.key -out op.crt \
	-subj /CN=op -days 2 2>/dev/null

"$B/keyd-simfw" --state chip init --tcb 0300000000000873 >/dev/null 2>&1
"$B/keyd-simfw" --state chip serve --listen "unix:$T/a.sock" --measurement "$(printf 'beef%.0s' $(seq 24))" 2>a.log &
pids+=($!)
for _ in $(seq 50); do [ -S a.sock ] && break; sleep 0.1; done
export KEYD_SIM=unix:$T/a.sock
truncate -s 24M img
"$B/keyd" enroll img --format --escrow rsa.crt --escrow ec.crt --threshold 2 >out || fail "enroll"
COMMIT=$(sed -n 's/^  commitment \([0-9a-f]\{96\}\)$/\1/p' out)
"$B/keyd-recover" export-shares img --out shares >/dev/null

# Each admin decrypts through the token, checking the recorded commitment.
"$B/keyd-recover" decrypt-share shares/share-1.der --key "$RSA_URI" --cert rsa.crt --to op.crt \
	--out op1.der --expect-commitment "$COMMIT" >out 2>err || fail "RSA admin via PKCS#11: $(cat err)"
"$B/keyd-recover" decrypt-share shares/share-2.der --key "$EC_URI" --cert ec.crt --to op.crt \
	--out op2.der --expect-commitment "$COMMIT" >out 2>err || fail "EC admin via PKCS#11: $(cat err)"
sum=$(sha256sum <img)
"$B/keyd-recover" unlock img --share op1.der --share op2.der --key op.key --cert op.crt --check >out \
	|| fail "the token-decrypted shares do not combine"
[ "$(sha256sum <img)" = "$sum" ] || fail "--check wrote"

# A wrong PIN, an unknown object, the wrong admin's token key: refused.
expect_refused "no private key in a PKCS#11 token matches" "$B/keyd-recover" decrypt-share \
	shares/share-1.der --key "pkcs11:token=keyd-admins;object=rsa-admin;type=private?pin-value=0000" \
	--cert rsa.crt --to op.crt --out x.der
expect_refused "no private key in a PKCS#11 token matches" "$B/keyd-recover" decrypt-share \
	shares/share-1.der --key "pkcs11:token=keyd-admins;object=nobody;type=private?pin-value=1234" \
	--cert rsa.crt --to op.crt --out x.der
expect_refused "does not belong to the certificate" "$B/keyd-recover" decrypt-share \
	shares/share-1.der --key "$EC_URI" --cert rsa.crt --to op.crt --out x.der
[ ! -e x.der ] || fail "a refused decrypt-share wrote"
echo ok
