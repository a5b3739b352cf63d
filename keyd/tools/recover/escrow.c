/* SPDX-License-Identifier: Apache-2.0 */
/* keyd-recover escrow add, export-shares, decrypt-share, unlock. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "keyd/error.h"
#include "keyd/util.h"
#include "recover.h"

static void free_certs(X509 *c[], size_t n)
{
	for (size_t i = 0; i < n; i++)
		X509_free(c[i]);
}

static int load_certs(const char *const paths[], size_t n, X509 *out[])
{
	for (size_t i = 0; i < n; i++) {
		int r = kd_escrow_load_cert(paths[i], &out[i]);

		if (r) {
			free_certs(out, i);
			return r;
		}
	}
	return 0;
}

/*
 * What escrow add and unlock share: the options both take (ESCROW_LONGOPTS,
 * parsed by escrow_opt) and what they hold until they end (job_done).
 */
struct escrow_job {
	const char *admins[MAX_FILES], *files[MAX_FILES], *key, *cert;
	size_t n_adm, n_sh;
	uint64_t k;
	bool json;
	struct kd_backend_opts bopts;
	struct kd_secret *sh[MAX_FILES];
	X509 *certs[MAX_FILES];
	struct kd_backend *b;
	struct kd_volume *v;
};

#define ESCROW_LONGOPTS                                                                       \
	{"admin", required_argument, NULL, 'a'}, {"share", required_argument, NULL, 's'},     \
	{"threshold", required_argument, NULL, 't'}, {"key", required_argument, NULL, 'k'},   \
	{"cert", required_argument, NULL, 'c'}, {"json", no_argument, NULL, 'j'}, BACKEND_LONGOPTS

/* 1 if opt is one of ESCROW_LONGOPTS (stored in j), 0 if not, -1 after a usage error. */
static int escrow_opt(int opt, const char *arg, struct escrow_job *j)
{
	switch (opt) {
	case 'a':
		return add_file("admin", arg, j->admins, &j->n_adm) ? -1 : 1;
	case 's':
		return add_file("share", arg, j->files, &j->n_sh) ? -1 : 1;
	case 't':
		if (kd_parse_u64(arg, KD_ESCROW_MAX_SHARES, &j->k) || !j->k) {
			cli_usage_error("--threshold must be 1..%u", KD_ESCROW_MAX_SHARES);
			return -1;
		}
		return 1;
	case 'k': j->key = arg; return 1;
	case 'c': j->cert = arg; return 1;
	case 'j': j->json = true; return 1;
	default: return backend_opts_handle(opt, arg, &j->bopts);
	}
}

/* Exit code of a job that ended with r; everything it held is released. */
static int job_done(struct escrow_job *j, int r)
{
	kd_recover_free_shares(j->sh, j->n_sh);
	free_certs(j->certs, j->n_adm);
	kd_volume_close(j->v);
	kd_backend_close(j->b);
	return r ? cli_refuse(r) : 0;
}

/* ---------------------------------------------------------------- escrow add */

static const char add_usage[] =
	"Usage: keyd-recover escrow add DEVICE --admin CERT [--admin CERT]...\n"
	"                   --threshold K [--rotate] [--json]\n"
	"                   [--share FILE [--share FILE]... --key KEY --cert CERT]\n"
	"                   [BACKEND OPTIONS]\n"
	"\n"
	"Add a k-of-n recovery escrow: a random 256-bit recovery key gets its own\n"
	"keyslot (PBKDF2-SHA512, 1000 iterations), is split with Shamir's scheme\n"
	"(libgfshare), and each share is encrypted to one admin certificate (CMS\n"
	"EnvelopedData, RSA-OAEP or ECDH, AES-256-CBC) in a keyd-escrow token.\n"
	"The volume key comes from this launch's keyd slot, or, with --share,\n"
	"from K shares of the existing escrow (decrypted to the operator).\n"
	"Prints the escrow's commitment: record it with the admins, who compare\n"
	"it before they ever decrypt a share (decrypt-share --expect-commitment).\n"
	"\n"
	"  --admin CERT           one admin certificate (PEM or DER) per option,\n"
	"                         one share each; repeat for every admin\n"
	"  --threshold K          shares needed to recover (1 <= K <= n <= 8)\n"
	"  --rotate               replace the existing escrow: the new one is\n"
	"                         written first, then the old token and keyslot are\n"
	"                         destroyed (its shares stop working)\n"
	"  --share FILE           one operator-encrypted share (see decrypt-share)\n"
	"                         per option; repeat for each\n"
	"  --key KEY, --cert CERT the operator's private key (file or pkcs11: URI)\n"
	"                         and certificate\n"
	"  --json                 print the result as JSON\n" BACKEND_OPTS_HELP
	"\nExit status: 0 added, 1 refused, 2 usage.\n";

/* The escrow just written, as one line or JSON (the provisioning record). */
static int print_escrow(const char *device, bool json)
{
	struct kd_escrow_token t;
	char hex[2 * KD_ESCROW_COMMIT_SIZE + 1];
	int r;

	if ((r = kd_recover_escrow_info(device, &t)))
		return r;
	kd_recover_commitment_hex(t.commitment, hex);
	if (json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "device", json_object_new_string(device));
		json_object_object_add(o, "keyslot", json_object_new_int(t.keyslot));
		json_object_object_add(o, "threshold", json_object_new_int((int)t.threshold));
		json_object_object_add(o, "admins", json_object_new_int((int)t.n));
		json_object_object_add(o, "commitment", json_object_new_string(hex));
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
	}
	else
		printf("%s: %u-of-%zu escrow on keyslot %d\n  commitment %s\n"
		       "  (record it: admins compare it before decrypting a share)\n",
		       device, t.threshold, t.n, t.keyslot, hex);
	kd_escrow_token_clear(&t);
	return 0;
}

static int run_add(int argc, char **argv)
{
	static const struct option opts[] = {{"rotate", no_argument, NULL, 'R'}, ESCROW_LONGOPTS,
					     {0}};
	struct escrow_job j = {0};
	_kd_secret_ struct kd_secret *vk = NULL;
	struct kd_launch l;
	struct kd_token tok;
	bool rotate = false;
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'R')
			rotate = true;
		else if (escrow_opt(c, optarg, &j) <= 0)
			return EXIT_USAGE;
	}
	if (argc - optind != 1 || !j.n_adm || !j.k)
		return cli_usage_error("usage: keyd-recover escrow add DEVICE --admin CERT "
				       "[--admin CERT]... --threshold K");
	if (j.k > j.n_adm)
		return cli_usage_error("--threshold %u is above the %zu admins", (unsigned)j.k,
				       j.n_adm);
	if (j.n_sh && (!j.key || !j.cert))
		return cli_usage_error("--share needs --key and --cert of the operator");
	if ((r = load_certs(j.admins, j.n_adm, j.certs)))
		return cli_refuse(r);
	if ((r = kd_volume_open(argv[optind], &j.v)))
		return job_done(&j, r);
	if (j.n_sh) {
		if ((r = kd_recover_read_shares(j.files, j.n_sh, j.key, j.cert, j.sh)) ||
		    (r = kd_recover_volume_key(j.v, j.files, j.sh, j.n_sh, &vk)))
			return job_done(&j, r);
		rotate = true; /* shares that were seen are spent */
	} else if ((r = cli_launch_open(&j.bopts, &j.b, &l)) ||
		   (r = kd_volume_get_key(j.v, j.b, &l, &vk, &tok))) {
		return job_done(&j, r);
	}
	if ((r = kd_escrow_add(j.v, vk, (unsigned)j.k, j.certs, j.n_adm, rotate, NULL)))
		return job_done(&j, r);
	if (!j.json && rotate)
		printf("%s: any previous escrow destroyed\n", kd_volume_path(j.v));
	return job_done(&j, print_escrow(kd_volume_path(j.v), j.json));
}

const struct kd_cmd cmd_escrow_add = {"escrow add", run_add,
				      "add (or rotate) the k-of-n recovery escrow", add_usage};

/* ---------------------------------------------------------------- export-shares */

static const char export_usage[] =
	"Usage: keyd-recover export-shares DEVICE --out DIR\n"
	"\n"
	"Write each encrypted share of the volume's escrow to\n"
	"DIR/share-<index>.der (CMS EnvelopedData, DER; encrypted to one admin,\n"
	"useless without their key) and list which admin holds which. An admin\n"
	"opens theirs with keyd-recover decrypt-share, or with stock OpenSSL:\n"
	"  openssl cms -decrypt -inform DER -in share-1.der -recip admin.crt\n"
	"          -inkey admin.key\n"
	"\nExit status: 0 written, 1 refused (no escrow, file exists), 2 usage.\n";

static int run_export(int argc, char **argv)
{
	static const struct option opts[] = {{"out", required_argument, NULL, 'o'}, {0}};
	struct kd_escrow_token t;
	struct kd_volume *v = NULL;
	char dir[4096] = "", path[4200], fp[2 * KD_ESCROW_FP_SIZE + 1];
	char commit[2 * KD_ESCROW_COMMIT_SIZE + 1];
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'o')
			return EXIT_USAGE;
		if (strlen(optarg) >= sizeof(dir))
			return cli_usage_error("--out: path too long");
		snprintf(dir, sizeof(dir), "%s", optarg);
	}
	if (argc - optind != 1 || !dir[0])
		return cli_usage_error("usage: keyd-recover export-shares DEVICE --out DIR");
	/* "shares/" and "shares" name the same folder: no "shares//share-1.der". */
	while (strlen(dir) > 1 && dir[strlen(dir) - 1] == '/')
		dir[strlen(dir) - 1] = 0;
	if (mkdir(dir, 0755) && errno != EEXIST)
		return cli_usage_error("cannot create %s: %s", dir, strerror(errno));
	if ((r = kd_volume_open(argv[optind], &v)) || (r = kd_escrow_find(v, &t))) {
		kd_volume_close(v);
		return cli_refuse(r);
	}
	kd_recover_commitment_hex(t.commitment, commit);
	printf("volume %s: %u-of-%zu escrow, keyslot %d\n  commitment %s\n", kd_volume_uuid(v),
	       t.threshold, t.n, t.keyslot, commit);
	for (size_t i = 0; i < t.n && !r; i++) {
		snprintf(path, sizeof(path), "%s/share-%u.der", dir, t.shares[i].index);
		if (!access(path, F_OK)) {
			r = kd_fail(KD_EEXIST, "%.200s exists; refusing to overwrite it", path);
			break;
		}
		if ((r = kd_write_file(path, t.shares[i].cms, t.shares[i].cms_len, 0644)))
			break;
		kd_hex(t.shares[i].admin, sizeof(t.shares[i].admin), fp);
		printf("  %s  for %s (cert sha256 %s)\n", path, t.shares[i].subject, fp);
	}
	kd_escrow_token_clear(&t);
	kd_volume_close(v);
	return r ? cli_refuse(r) : 0;
}

const struct kd_cmd cmd_export_shares = {"export-shares", run_export,
					 "write the encrypted escrow shares to files", export_usage};

/* ---------------------------------------------------------------- decrypt-share */

static const char decrypt_usage[] =
	"Usage: keyd-recover decrypt-share SHARE --key ADMINKEY --cert ADMINCERT\n"
	"                   --to OPERATOR_CERT --out FILE [--volume UUID]\n"
	"                   [--expect-commitment HEX]\n"
	"\n"
	"Run by one admin on their own machine: open SHARE (from export-shares)\n"
	"with the admin's key, check it is a well-formed keyd share, show the\n"
	"volume and escrow commitment it belongs to, and re-encrypt it to the\n"
	"recovering operator's certificate as CMS EnvelopedData in FILE. The\n"
	"share is never written in the clear.\n"
	"\n"
	"  --key ADMINKEY         the admin's private key: a PEM/DER file (one\n"
	"                         with a passphrase asks on the terminal), or a\n"
	"                         pkcs11: URI of a key in a token (smartcard, HSM)\n"
	"  --volume UUID          refuse a share of another volume\n"
	"  --expect-commitment HEX refuse (write nothing) unless the share's escrow\n"
	"                         commitment is HEX, the value recorded when the\n"
	"                         escrow was provisioned: a host that planted a\n"
	"                         header with its own escrow is caught here\n"
	"\nExit status: 0 written, 1 refused (wrong key, not a share, other volume,\n"
	"commitment mismatch), 2 usage.\n";

static int run_decrypt(int argc, char **argv)
{
	static const struct option opts[] = {
		{"key", required_argument, NULL, 'k'},	  {"cert", required_argument, NULL, 'c'},
		{"to", required_argument, NULL, 't'},	  {"out", required_argument, NULL, 'o'},
		{"volume", required_argument, NULL, 'u'}, {"expect-commitment", required_argument, NULL, 'e'},
		{0},
	};
	const char *key = NULL, *cert = NULL, *to = NULL, *out = NULL, *uuid = NULL, *expect = NULL;
	struct kd_secret *sh[1] = {0};
	struct kd_escrow_share_info info;
	uint8_t want[KD_ESCROW_COMMIT_SIZE];
	char have[2 * KD_ESCROW_COMMIT_SIZE + 1];
	X509 *op = NULL;
	uint8_t *der = NULL;
	size_t len = 0;
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'k': key = optarg; break;
		case 'c': cert = optarg; break;
		case 't': to = optarg; break;
		case 'o': out = optarg; break;
		case 'u': uuid = optarg; break;
		case 'e': expect = optarg; break;
		default: return EXIT_USAGE;
		}
	}
	if (argc - optind != 1 || !key || !cert || !to || !out)
		return cli_usage_error("usage: keyd-recover decrypt-share SHARE --key K --cert C --to "
				       "OPERATOR_CERT --out FILE");
	if (expect && (r = kd_recover_commitment_parse(expect, want)))
		return cli_usage_error("--expect-commitment: %s", kd_err_detail(r));
	if (!access(out, F_OK))
		return cli_refuse(kd_fail(KD_EEXIST, "%.200s exists; refusing to overwrite it", out));
	if ((r = kd_escrow_load_cert(to, &op)) ||
	    (r = kd_recover_read_shares((const char *const[]){argv[optind]}, 1, key, cert, sh)) ||
	    (r = kd_escrow_share_parse(sh[0], &info)))
		goto done;
	kd_recover_commitment_hex(info.commitment, have);
	printf("share %u of a %u-of-%u escrow for volume %s\n  commitment %s\n", info.index,
	       info.threshold, info.count, info.uuid, have);
	if (uuid && strcasecmp(uuid, info.uuid)) {
		r = kd_fail(KD_EREFUSED, "the share is for volume %s, not %.40s", info.uuid, uuid);
		goto done;
	}
	if (expect && !kd_ct_equal(want, info.commitment, sizeof(want))) {
		r = kd_fail(KD_EREFUSED, "the share's escrow commitment %.16s\u2026 is not the recorded "
					 "%.16s\u2026: this escrow is not the one provisioned (a "
					 "replaced header?); nothing written", have, expect);
		goto done;
	}
	if (!expect)
		printf("  (compare it with the commitment recorded at provisioning, or pass "
		       "--expect-commitment)\n");
	if ((r = kd_escrow_encrypt(sh[0], op, &der, &len)) || (r = kd_write_file(out, der, len, 0600)))
		goto done;
	printf("re-encrypted to the operator in %s%s\n", out,
	       expect ? " (commitment matches the recorded one)" : "");
done:
	OPENSSL_free(der);
	X509_free(op);
	kd_recover_free_shares(sh, 1);
	return r ? cli_refuse(r) : 0;
}

const struct kd_cmd cmd_decrypt_share = {"decrypt-share", run_decrypt,
					 "an admin re-encrypts their share to the operator",
					 decrypt_usage};

/* ---------------------------------------------------------------- unlock */

static const char unlock_usage[] =
	"Usage: keyd-recover unlock DEVICE --share FILE [--share FILE]...\n"
	"                   --key KEY --cert CERT [--label NAME]\n"
	"                   [--rotate-escrow --admin CERT [--admin CERT]... [--threshold K]]\n"
	"                   [--json] (NAME | --dry-run | --check) [BACKEND OPTIONS]\n"
	"\n"
	"Combine K operator-encrypted shares (see decrypt-share), check which\n"
	"escrow each belongs to (this volume, the current escrow) and its digest\n"
	"in the escrow token, and the combined recovery key against the\n"
	"commitment; open the volume through the escrow keyslot, and re-enroll it\n"
	"for the current launch: an ACTIVE keyd slot and token (with the\n"
	"volume-key pin) sealed to this launch, then verified through the normal\n"
	"keyd unlock path. Then activate as /dev/mapper/NAME.\n"
	"\n"
	"  --share FILE           one operator-encrypted share per option; repeat\n"
	"  --key KEY, --cert CERT the operator's private key (file or pkcs11: URI)\n"
	"                         and certificate\n"
	"  --dry-run              re-enroll and verify, but do not activate (hosts\n"
	"                         without device-mapper)\n"
	"  --check                only check that the shares open the volume;\n"
	"                         writes nothing\n"
	"  --label NAME           label of the new keyd token (default \"recovered\")\n"
	"  --rotate-escrow        the shares have now been seen: replace the escrow\n"
	"                         with a fresh recovery key and shares for --admin\n"
	"                         (new escrow written first, old one destroyed after);\n"
	"                         prints the new commitment to record\n"
	"  --admin CERT           one admin of the rotated escrow per option; repeat\n"
	"  --threshold K          its threshold (default: the old one)\n"
	"  --json                 print the result as JSON\n" BACKEND_OPTS_HELP
	"\nExit status: 0 unlocked, 1 refused, 2 usage.\n";

static int run_unlock(int argc, char **argv)
{
	static const struct option opts[] = {
		{"label", required_argument, NULL, 'l'}, {"rotate-escrow", no_argument, NULL, 'R'},
		{"dry-run", no_argument, NULL, 'n'},	 {"check", no_argument, NULL, 'C'},
		ESCROW_LONGOPTS,			 {0},
	};
	struct kd_recover_unlock_opts o = {.label = "recovered"};
	struct kd_recover_unlock_result res;
	struct escrow_job j = {0};
	_kd_secret_ struct kd_secret *vk = NULL;
	struct kd_launch l;
	char hex[2 * KD_ESCROW_COMMIT_SIZE + 1];
	bool rotate = false, dry = false, check = false;
	struct stat st;
	const char *dev;
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'l': o.label = optarg; break;
		case 'R': rotate = true; break;
		case 'n': dry = true; break;
		case 'C': check = true; break;
		default:
			if (escrow_opt(c, optarg, &j) <= 0)
				return EXIT_USAGE;
		}
	}
	if (argc - optind < 1 || argc - optind > 2 || !j.n_sh || !j.key || !j.cert)
		return cli_usage_error("usage: keyd-recover unlock DEVICE --share FILE [--share FILE]... "
				       "--key K --cert C (NAME | --dry-run | --check)");
	dev = argv[optind];
	o.name = argc - optind == 2 ? argv[optind + 1] : NULL;
	if ((o.name != NULL) + dry + check != 1)
		return cli_usage_error("give exactly one of NAME, --dry-run or --check");
	/* A mapping name is never a path, and a file name is a forgotten --share. */
	if (o.name && (strchr(o.name, '/') || (!stat(o.name, &st) && S_ISREG(st.st_mode))))
		return cli_usage_error("NAME %s is a file, not a mapping name (give each share "
				       "with its own --share)", o.name);
	if (rotate != (j.n_adm > 0))
		return cli_usage_error("--rotate-escrow and --admin go together");
	if (rotate && check)
		return cli_usage_error("--check writes nothing; it cannot rotate the escrow");
	o.threshold = (unsigned)j.k;
	if (j.n_adm && (r = load_certs(j.admins, j.n_adm, j.certs)))
		return cli_refuse(r);
	o.admins = j.certs;
	o.n_admins = j.n_adm;
	if ((r = kd_recover_read_shares(j.files, j.n_sh, j.key, j.cert, j.sh)))
		return job_done(&j, r);
	if (check) {
		if ((r = kd_volume_open(dev, &j.v)) ||
		    (r = kd_recover_volume_key(j.v, j.files, j.sh, j.n_sh, &vk)))
			return job_done(&j, r);
		printf("%s: %zu shares combine; the escrow keyslot opens the volume (nothing "
		       "written)\n", kd_volume_path(j.v), j.n_sh);
		return job_done(&j, 0);
	}
	if ((r = cli_launch_open(&j.bopts, &j.b, &l)) ||
	    (r = kd_recover_unlock(dev, j.b, &l, j.files, j.sh, j.n_sh, &o, &res)))
		return job_done(&j, r);
	kd_recover_commitment_hex(res.commitment, hex);
	if (j.json) {
		json_object *jo = json_object_new_object(), *je = NULL;

		json_object_object_add(jo, "device", json_object_new_string(dev));
		json_object_object_add(jo, "enrolled",
				       res.enrolled >= 0 ? json_object_new_int(res.enrolled) : NULL);
		json_object_object_add(jo, "verified", json_object_new_int(res.verified));
		if (res.escrow_keyslot >= 0) {
			je = json_object_new_object();
			json_object_object_add(je, "keyslot", json_object_new_int(res.escrow_keyslot));
			json_object_object_add(je, "threshold", json_object_new_int((int)res.threshold));
			json_object_object_add(je, "admins", json_object_new_int((int)res.admins));
			json_object_object_add(je, "commitment", json_object_new_string(hex));
		}
		json_object_object_add(jo, "escrow", je);
		json_object_object_add(jo, "activated", json_object_new_boolean(o.name != NULL));
		printf("%s\n", json_object_to_json_string_ext(jo, JSON_C_TO_STRING_PLAIN));
		json_object_put(jo);
		return job_done(&j, 0);
	}
	if (res.enrolled >= 0)
		printf("%s: enrolled keyslot %d (active, label %s) for this launch\n", dev,
		       res.enrolled, o.label);
	else
		printf("%s: this launch already has a keyslot; nothing to enroll\n", dev);
	printf("%s: keyslot %d verified (pin verified)\n", dev, res.verified);
	if (res.escrow_keyslot >= 0)
		printf("%s: escrow rotated: %u-of-%zu on keyslot %d; the old shares are void\n"
		       "  commitment %s\n  (record it: admins compare it before decrypting a share)\n",
		       dev, res.threshold, res.admins, res.escrow_keyslot, hex);
	if (o.name)
		printf("%s: activated as /dev/mapper/%s\n", dev, o.name);
	return job_done(&j, 0);
}

const struct kd_cmd cmd_unlock = {"unlock", run_unlock,
				  "recover with k shares and re-enroll for this launch",
				  unlock_usage};
