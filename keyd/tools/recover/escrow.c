/* SPDX-License-Identifier: Apache-2.0 */
/* keyd-recover escrow add, export-shares, decrypt-share, unlock. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* ---------------------------------------------------------------- escrow add */

static const char add_usage[] =
	"Usage: keyd-recover escrow add DEVICE --admin CERT... --threshold K\n"
	"                   [--rotate] [--shares FILE... --key KEY --cert CERT]\n"
	"                   [BACKEND OPTIONS]\n"
	"\n"
	"Add a k-of-n recovery escrow: a random 256-bit recovery key gets its own\n"
	"keyslot (PBKDF2-SHA512, 1000 iterations), is split with Shamir's scheme\n"
	"(libgfshare), and each share is encrypted to one admin certificate (CMS\n"
	"EnvelopedData, RSA-OAEP or ECDH, AES-256-CBC) in a keyd-escrow token.\n"
	"The volume key comes from this launch's keyd slot, or, with --shares,\n"
	"from K shares of the existing escrow (decrypted to the operator).\n"
	"\n"
	"  --admin CERT...        admin certificates (PEM or DER), one share each\n"
	"  --threshold K          shares needed to recover (1 <= K <= n <= 8)\n"
	"  --rotate               replace the existing escrow: the new one is\n"
	"                         written first, then the old token and keyslot are\n"
	"                         destroyed (its shares stop working)\n"
	"  --shares FILE...       operator-encrypted shares (see decrypt-share)\n"
	"  --key KEY, --cert CERT the operator's private key and certificate\n" BACKEND_OPTS_HELP
	"\nExit status: 0 added, 1 refused, 2 usage.\n";

static int run_add(int argc, char **argv)
{
	static const struct option opts[] = {
		{"admin", required_argument, NULL, 'a'}, {"threshold", required_argument, NULL, 't'},
		{"rotate", no_argument, NULL, 'R'},	 {"shares", required_argument, NULL, 's'},
		{"key", required_argument, NULL, 'k'},	 {"cert", required_argument, NULL, 'c'},
		BACKEND_LONGOPTS,			 {0},
	};
	const char *admins[MAX_FILES], *files[MAX_FILES], *key = NULL, *cert = NULL;
	size_t n_adm = 0, n_sh = 0;
	struct kd_backend_opts bopts = {0};
	struct kd_backend *b = NULL;
	struct kd_volume *v = NULL;
	struct kd_secret *sh[MAX_FILES] = {0};
	_kd_secret_ struct kd_secret *vk = NULL;
	X509 *certs[MAX_FILES] = {0};
	struct kd_launch l;
	struct kd_token tok;
	uint64_t k = 0;
	bool rotate = false;
	int c, r, slot = -1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			if (collect_files("admin", optarg, argc, argv, admins, &n_adm))
				return EXIT_USAGE;
			break;
		case 's':
			if (collect_files("shares", optarg, argc, argv, files, &n_sh))
				return EXIT_USAGE;
			break;
		case 't':
			if (kd_parse_u64(optarg, KD_ESCROW_MAX_SHARES, &k) || !k)
				return cli_usage_error("--threshold must be 1..%u", KD_ESCROW_MAX_SHARES);
			break;
		case 'R':
			rotate = true;
			break;
		case 'k':
			key = optarg;
			break;
		case 'c':
			cert = optarg;
			break;
		default:
			if (backend_opts_handle(c, optarg, &bopts) <= 0)
				return EXIT_USAGE;
		}
	}
	if (argc - optind != 1 || !n_adm || !k)
		return cli_usage_error("usage: keyd-recover escrow add DEVICE --admin CERT... "
				       "--threshold K");
	if (k > n_adm)
		return cli_usage_error("--threshold %u is above the %zu admins", (unsigned)k, n_adm);
	if (n_sh && (!key || !cert))
		return cli_usage_error("--shares needs --key and --cert of the operator");
	if ((r = load_certs(admins, n_adm, certs)))
		return cli_refuse(r);
	if ((r = kd_volume_open(argv[optind], &v)))
		goto out;
	if (n_sh) {
		if ((r = read_shares(files, n_sh, key, cert, sh)) ||
		    (r = kd_escrow_volume_key(v, sh, n_sh, &vk)))
			goto out;
		rotate = true; /* shares that were seen are spent */
	} else if ((r = get_launch(&bopts, &b, &l)) || (r = kd_volume_get_key(v, b, &l, &vk, &tok))) {
		goto out;
	}
	if ((r = kd_escrow_add(v, vk, (unsigned)k, certs, n_adm, rotate, &slot)))
		goto out;
	printf("%s: %u-of-%zu escrow on keyslot %d%s\n", kd_volume_path(v), (unsigned)k, n_adm, slot,
	       rotate ? " (any previous escrow destroyed)" : "");
out:
	free_shares(sh, n_sh);
	free_certs(certs, n_adm);
	kd_volume_close(v);
	kd_backend_close(b);
	return r ? cli_refuse(r) : 0;
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
	const char *dir = NULL;
	char path[4096], fp[2 * KD_ESCROW_FP_SIZE + 1];
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'o')
			return EXIT_USAGE;
		dir = optarg;
	}
	if (argc - optind != 1 || !dir)
		return cli_usage_error("usage: keyd-recover export-shares DEVICE --out DIR");
	if (mkdir(dir, 0755) && errno != EEXIST)
		return cli_usage_error("cannot create %s: %s", dir, strerror(errno));
	if ((r = kd_volume_open(argv[optind], &v)) || (r = kd_escrow_find(v, &t))) {
		kd_volume_close(v);
		return cli_refuse(r);
	}
	printf("volume %s: %u-of-%zu escrow, keyslot %d\n", kd_volume_uuid(v), t.threshold, t.n,
	       t.keyslot);
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
	"\n"
	"Run by one admin on their own machine: open SHARE (from export-shares)\n"
	"with the admin's key, check it is a well-formed keyd share (and, with\n"
	"--volume, that it belongs to that volume), and re-encrypt it to the\n"
	"recovering operator's certificate as CMS EnvelopedData in FILE. The\n"
	"share is never written in the clear.\n"
	"\nExit status: 0 written, 1 refused (wrong key, not a share), 2 usage.\n";

static int run_decrypt(int argc, char **argv)
{
	static const struct option opts[] = {
		{"key", required_argument, NULL, 'k'}, {"cert", required_argument, NULL, 'c'},
		{"to", required_argument, NULL, 't'},  {"out", required_argument, NULL, 'o'},
		{"volume", required_argument, NULL, 'u'}, {0},
	};
	const char *key = NULL, *cert = NULL, *to = NULL, *out = NULL, *uuid = NULL;
	struct kd_secret *sh[1] = {0};
	struct kd_escrow_share_info info;
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
		default: return EXIT_USAGE;
		}
	}
	if (argc - optind != 1 || !key || !cert || !to || !out)
		return cli_usage_error("usage: keyd-recover decrypt-share SHARE --key K --cert C --to "
				       "OPERATOR_CERT --out FILE");
	if (!access(out, F_OK))
		return cli_refuse(kd_fail(KD_EEXIST, "%.200s exists; refusing to overwrite it", out));
	if ((r = kd_escrow_load_cert(to, &op)) ||
	    (r = read_shares((const char *const[]){argv[optind]}, 1, key, cert, sh)) ||
	    (r = kd_escrow_share_parse(sh[0], &info)))
		goto done;
	if (uuid && strcasecmp(uuid, info.uuid)) {
		r = kd_fail(KD_EREFUSED, "the share is for volume %s, not %.40s", info.uuid, uuid);
		goto done;
	}
	if ((r = kd_escrow_encrypt(sh[0], op, &der, &len)) || (r = kd_write_file(out, der, len, 0600)))
		goto done;
	printf("share %u of a %u-of-%u escrow for volume %s re-encrypted to the operator in %s\n",
	       info.index, info.threshold, info.count, info.uuid, out);
done:
	OPENSSL_free(der);
	X509_free(op);
	free_shares(sh, 1);
	return r ? cli_refuse(r) : 0;
}

const struct kd_cmd cmd_decrypt_share = {"decrypt-share", run_decrypt,
					 "re-encrypt one admin's share to the operator",
					 decrypt_usage};

/* ---------------------------------------------------------------- unlock */

static const char unlock_usage[] =
	"Usage: keyd-recover unlock DEVICE --shares FILE... --key OPERATOR_KEY\n"
	"                   --cert OPERATOR_CERT [--label NAME] [--rotate-escrow\n"
	"                   --admin CERT... [--threshold K]] (NAME | --dry-run | --check)\n"
	"                   [BACKEND OPTIONS]\n"
	"\n"
	"Combine K operator-encrypted shares (see decrypt-share), verify each\n"
	"against the escrow token and the combined recovery key against its\n"
	"commitment, open the volume through the escrow keyslot, and re-enroll it\n"
	"for the current launch: an ACTIVE keyd slot and token (with the\n"
	"volume-key pin) sealed to this launch, then verified through the normal\n"
	"keyd unlock path. Then activate as /dev/mapper/NAME.\n"
	"\n"
	"  --dry-run              re-enroll and verify, but do not activate (hosts\n"
	"                         without device-mapper)\n"
	"  --check                only check that the shares open the volume;\n"
	"                         writes nothing\n"
	"  --label NAME           label of the new keyd token (default \"recovered\")\n"
	"  --rotate-escrow        the shares have now been seen: replace the escrow\n"
	"                         with a fresh recovery key and shares for --admin\n"
	"                         (new escrow written first, old one destroyed after)\n"
	"  --admin CERT...        admins of the rotated escrow\n"
	"  --threshold K          its threshold (default: the old one)\n" BACKEND_OPTS_HELP
	"\nExit status: 0 unlocked, 1 refused, 2 usage.\n";

static int run_unlock(int argc, char **argv)
{
	static const struct option opts[] = {
		{"shares", required_argument, NULL, 's'}, {"key", required_argument, NULL, 'k'},
		{"cert", required_argument, NULL, 'c'},	  {"label", required_argument, NULL, 'l'},
		{"rotate-escrow", no_argument, NULL, 'R'}, {"admin", required_argument, NULL, 'a'},
		{"threshold", required_argument, NULL, 't'}, {"dry-run", no_argument, NULL, 'n'},
		{"check", no_argument, NULL, 'C'},	  BACKEND_LONGOPTS, {0},
	};
	const char *files[MAX_FILES], *admins[MAX_FILES], *key = NULL, *cert = NULL,
		   *label = "recovered", *name = NULL;
	size_t n_sh = 0, n_adm = 0, idx;
	struct kd_backend_opts bopts = {0};
	struct kd_backend *b = NULL;
	struct kd_volume *v = NULL;
	struct kd_secret *sh[MAX_FILES] = {0};
	_kd_secret_ struct kd_secret *vk = NULL, *vk2 = NULL, *pass = NULL, *pin = NULL;
	X509 *certs[MAX_FILES] = {0};
	struct kd_escrow_token old;
	struct kd_launch l;
	struct kd_token tok, used;
	uint64_t k = 0;
	bool rotate = false, dry = false, check = false;
	char *dev;
	int c, r, slot = -1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (collect_files("shares", optarg, argc, argv, files, &n_sh))
				return EXIT_USAGE;
			break;
		case 'a':
			if (collect_files("admin", optarg, argc, argv, admins, &n_adm))
				return EXIT_USAGE;
			break;
		case 'k': key = optarg; break;
		case 'c': cert = optarg; break;
		case 'l': label = optarg; break;
		case 'R': rotate = true; break;
		case 'n': dry = true; break;
		case 'C': check = true; break;
		case 't':
			if (kd_parse_u64(optarg, KD_ESCROW_MAX_SHARES, &k) || !k)
				return cli_usage_error("--threshold must be 1..%u", KD_ESCROW_MAX_SHARES);
			break;
		default:
			if (backend_opts_handle(c, optarg, &bopts) <= 0)
				return EXIT_USAGE;
		}
	}
	if (argc - optind < 1 || argc - optind > 2 || !n_sh || !key || !cert)
		return cli_usage_error("usage: keyd-recover unlock DEVICE --shares FILE... --key K "
				       "--cert C (NAME | --dry-run | --check)");
	dev = argv[optind];
	name = argc - optind == 2 ? argv[optind + 1] : NULL;
	if ((name != NULL) + dry + check != 1)
		return cli_usage_error("give exactly one of NAME, --dry-run or --check");
	if (rotate != (n_adm > 0))
		return cli_usage_error("--rotate-escrow and --admin go together");
	if (rotate && check)
		return cli_usage_error("--check writes nothing; it cannot rotate the escrow");
	if (n_adm && (r = load_certs(admins, n_adm, certs)))
		return cli_refuse(r);
	if ((r = kd_volume_open(dev, &v)) || (r = read_shares(files, n_sh, key, cert, sh)) ||
	    (r = kd_escrow_volume_key(v, sh, n_sh, &vk)))
		goto out;
	if (check) {
		printf("%s: %zu shares combine; the escrow keyslot opens the volume (nothing "
		       "written)\n", kd_volume_path(v), n_sh);
		goto out;
	}
	if ((r = get_launch(&bopts, &b, &l)))
		goto out;
	if (kd_volume_match(v, &l, &idx) == 0) {
		size_t nt;

		printf("%s: this launch already has keyslot %d; nothing to enroll\n",
		       kd_volume_path(v), kd_volume_tokens(v, &nt)[idx].keyslot);
	} else {
		if ((r = kd_token_for_launch(&l, label, 0, KD_TOKEN_ACTIVE, &tok)) ||
		    (r = kd_seal_keys_for_token(b, &tok, kd_volume_uuid(v), &pass, &pin)) ||
		    (r = kd_volume_add_slot_fp(v, vk, pass, pin, &tok, "recover.after-keyslot",
					       "recover.after-token", &slot)))
			goto out;
		printf("%s: enrolled keyslot %d (active, label %s) for this launch\n",
		       kd_volume_path(v), slot, label);
	}
	/* Prove the new slot through the ordinary unlock path (allow-list, pin). */
	if ((r = kd_volume_get_key(v, b, &l, &vk2, &used)))
		goto out;
	if (!kd_ct_equal(vk2->data, vk->data, vk->len)) {
		r = kd_fail(KD_ETAMPER, "the keyd slot opens a different volume key than the escrow");
		goto out;
	}
	printf("%s: keyslot %d verified (pin verified)\n", kd_volume_path(v), used.keyslot);
	if (rotate) {
		if ((r = kd_escrow_find(v, &old)))
			goto out;
		if (!k)
			k = old.threshold;
		kd_escrow_token_clear(&old);
		if (k > n_adm) {
			r = kd_fail(KD_EINVAL, "threshold %u is above the %zu admins", (unsigned)k, n_adm);
			goto out;
		}
		kd_volume_close(v);
		v = NULL;
		if ((r = kd_volume_open(dev, &v)) ||
		    (r = kd_escrow_add(v, vk, (unsigned)k, certs, n_adm, true, &slot)))
			goto out;
		printf("%s: escrow rotated: %u-of-%zu on keyslot %d; the old shares are void\n",
		       kd_volume_path(v), (unsigned)k, n_adm, slot);
	}
	if (name) {
		kd_volume_close(v);
		v = NULL;
		if ((r = kd_volume_open(dev, &v)) || (r = kd_volume_activate(v, name, vk, 0)))
			goto out;
		printf("%s: activated as /dev/mapper/%s\n", kd_volume_path(v), name);
	}
out:
	free_shares(sh, n_sh);
	free_certs(certs, n_adm);
	kd_volume_close(v);
	kd_backend_close(b);
	return r ? cli_refuse(r) : 0;
}

const struct kd_cmd cmd_unlock = {"unlock", run_unlock,
				  "recover with k shares and re-enroll for this launch",
				  unlock_usage};
