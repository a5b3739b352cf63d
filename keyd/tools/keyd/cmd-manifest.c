/* SPDX-License-Identifier: Apache-2.0 */
/* keyd manifest keygen|keys|create|sign|verify|show: signed release manifests. */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "keyd/error.h"
#include "keyd/manifest.h"
#include "keyd/secret.h"
#include "keyd/util.h"

static int load_manifest(const char *path, struct kd_manifest **ret)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r = kd_read_file(path, KD_MANIFEST_MAX_BYTES, &buf, &len);

	if (r)
		return kd_fail(r, "cannot read manifest %s", path);
	r = kd_manifest_parse(buf, len, ret);
	free(buf);
	return r;
}

static int save_manifest(const struct kd_manifest *m, const char *path)
{
	char *j = NULL;
	int r = kd_manifest_to_json(m, &j);

	if (r)
		return r;
	r = kd_write_file(path, j, strlen(j), 0644);
	free(j);
	return r ? kd_fail(r, "cannot write %s", path) : 0;
}

/* ---------------------------------------------------------------- keygen */

static int run_keygen(int argc, char **argv)
{
	static const struct option opts[] = {
		{"out", required_argument, NULL, 'o'},
		{"pub", required_argument, NULL, 'p'},
		{0},
	};
	const char *out = NULL, *pub = NULL;
	char *priv_pem = NULL, *pub_pem = NULL;
	int c, r;

	while ((c = getopt_long(argc, argv, "o:p:", opts, NULL)) != -1) {
		switch (c) {
		case 'o': out = optarg; break;
		case 'p': pub = optarg; break;
		default: return cli_usage_error("bad option");
		}
	}
	if (!out || optind != argc)
		return cli_usage_error("manifest keygen needs -o PRIVATE.pem");
	r = kd_manifest_keygen(&priv_pem, &pub_pem);
	if (r)
		return cli_refuse(r);
	if ((r = kd_write_file(out, priv_pem, strlen(priv_pem), 0600)) < 0)
		goto out;
	if (pub)
		r = kd_write_file(pub, pub_pem, strlen(pub_pem), 0644);
	else
		fputs(pub_pem, stdout);
out:
	kd_wipe(priv_pem, strlen(priv_pem));
	free(priv_pem);
	free(pub_pem);
	return r ? cli_refuse(kd_fail(r, "cannot write the key files")) : 0;
}

const struct kd_cmd cmd_manifest_keygen = {
	"manifest keygen", run_keygen, "make an Ed25519 release signing key",
	"Usage: keyd manifest keygen -o PRIVATE.pem [--pub PUBLIC.pem]\n"
	"\n"
	"Generate an Ed25519 release key. The private key (PKCS#8 PEM) is written\n"
	"with mode 0600; the public key (SPKI PEM) goes to --pub or stdout.\n",
};

/* ---------------------------------------------------------------- keys */

static int run_keys(int argc, char **argv)
{
	static const struct option opts[] = {
		{"threshold", required_argument, NULL, 'k'},
		{"out", required_argument, NULL, 'o'},
		{0},
	};
	const char *out = NULL;
	uint64_t k = 0;
	struct json_object *o, *a;
	struct kd_release_keys *ks = NULL;
	const char *s;
	int c, r = 0;

	while ((c = getopt_long(argc, argv, "k:o:", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			if (kd_parse_u64(optarg, KD_RELEASE_KEYS_MAX, &k) || k == 0)
				return cli_usage_error("--threshold must be 1..%u", KD_RELEASE_KEYS_MAX);
			break;
		case 'o': out = optarg; break;
		default: return cli_usage_error("bad option");
		}
	}
	if (!out || !k || optind >= argc)
		return cli_usage_error("manifest keys needs --threshold K -o FILE PUBLIC.pem...");
	o = json_object_new_object();
	a = json_object_new_array();
	json_object_object_add(o, "threshold", json_object_new_int((int)k));
	json_object_object_add(o, "keys", a);
	for (int i = optind; i < argc; i++) {
		uint8_t *pem = NULL;
		size_t len = 0;

		if ((r = kd_read_file(argv[i], 16384, &pem, &len))) {
			r = kd_fail(r, "cannot read %s", argv[i]);
			goto out;
		}
		json_object_array_add(a, json_object_new_string_len((const char *)pem, (int)len));
		free(pem);
	}
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
	/* Refuse to write a config that would not load. */
	if ((r = kd_release_keys_parse((const uint8_t *)s, strlen(s), &ks)))
		goto out;
	r = kd_write_file(out, s, strlen(s), 0644);
out:
	kd_release_keys_free(ks);
	json_object_put(o);
	return r ? cli_refuse(r) : 0;
}

const struct kd_cmd cmd_manifest_keys = {
	"manifest keys", run_keys, "build the pinned release-keys config",
	"Usage: keyd manifest keys --threshold K -o FILE PUBLIC.pem...\n"
	"\n"
	"Write the release-keys configuration baked into the image\n"
	"(default path " KD_RELEASE_KEYS_DEFAULT "):\n"
	"  {\"threshold\": K, \"keys\": [PEM, ...]}\n"
	"A manifest is accepted only with valid signatures by K distinct listed keys.\n",
};

/* ---------------------------------------------------------------- create */

static int run_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{"version-label", required_argument, NULL, 'l'},
		{"svn", required_argument, NULL, 's'},
		{"measurement", required_argument, NULL, 'm'},
		{"not-before", required_argument, NULL, 'b'},
		{"not-after", required_argument, NULL, 'a'},
		{"min-peer-svn", required_argument, NULL, 'f'},
		{"min-tcb", required_argument, NULL, 't'},
		{"rotate", no_argument, NULL, 'R'},
		{"out", required_argument, NULL, 'o'},
		{0},
	};
	const char *out = NULL, *label = NULL, *nb = NULL, *na = NULL;
	uint64_t floor_svn = 0;
	struct kd_manifest *m = NULL;
	uint64_t svn = 0;
	bool have_svn = false;
	int c, r;

	r = kd_manifest_new(&m);
	if (r)
		return cli_refuse(r);
	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		uint8_t meas[48];

		switch (c) {
		case 'l': label = optarg; break;
		case 's':
			if (kd_parse_u64(optarg, UINT32_MAX, &svn)) {
				kd_manifest_free(m);
				return cli_usage_error("--svn must be 0..4294967295");
			}
			have_svn = true;
			break;
		case 'm':
			if (kd_unhex(optarg, meas, 48)) {
				kd_manifest_free(m);
				return cli_usage_error("--measurement must be 96 hex digits");
			}
			if ((r = kd_manifest_add_measurement(m, meas))) {
				kd_manifest_free(m);
				return cli_refuse(r);
			}
			break;
		case 'b': nb = optarg; break;
		case 'a': na = optarg; break;
		case 'R': m->rotate = true; break;
		case 'f':
			if (kd_parse_u64(optarg, UINT32_MAX, &floor_svn)) {
				kd_manifest_free(m);
				return cli_usage_error("--min-peer-svn must be 0..4294967295");
			}
			m->has_min_peer_svn = true;
			m->min_peer_svn = (uint32_t)floor_svn;
			break;
		case 't': {
			const char *colon = strchr(optarg, ':');
			char prod[16];
			enum kd_product p = KD_PRODUCT_UNKNOWN;
			uint64_t raw;

			if (!colon || (size_t)(colon - optarg) >= sizeof(prod)) {
				kd_manifest_free(m);
				return cli_usage_error("--min-tcb needs PRODUCT:HEX (milan|genoa|turin)");
			}
			memcpy(prod, optarg, (size_t)(colon - optarg));
			prod[colon - optarg] = '\0';
			if (kd_product_from_name(prod, &p) < 0 || p == KD_PRODUCT_UNKNOWN ||
			    kd_tcb_parse_hex(colon + 1, &raw) < 0) {
				kd_manifest_free(m);
				return cli_usage_error("--min-tcb needs PRODUCT:HEX (milan|genoa|turin, "
						       "16 hex digits)");
			}
			m->has_min_tcb[p] = true;
			m->min_tcb[p] = raw;
			break;
		}
		case 'o': out = optarg; break;
		default: kd_manifest_free(m); return cli_usage_error("bad option");
		}
	}
	if (!out || !label || !have_svn || !m->n_measurements || !na || optind != argc ||
	    strlen(label) > KD_MANIFEST_LABEL_MAX) {
		kd_manifest_free(m);
		return cli_usage_error("manifest create needs --version-label, --svn, --measurement, "
				       "--not-after and -o");
	}
	strcpy(m->version, label);
	m->svn = (uint32_t)svn;
	m->not_before = time(NULL);
	if ((nb && (r = kd_manifest_parse_time(nb, &m->not_before))) ||
	    (r = kd_manifest_parse_time(na, &m->not_after)))
		goto out;
	if (m->not_after < m->not_before) {
		r = kd_fail(KD_EINVAL, "--not-after precedes --not-before");
		goto out;
	}
	/* Round trip through the parser so we never write what we would refuse. */
	{
		_kd_free_ char *j = NULL;
		struct kd_manifest *chk = NULL;

		if ((r = kd_manifest_to_json(m, &j)))
			goto out;
		r = kd_manifest_parse((const uint8_t *)j, strlen(j), &chk);
		kd_manifest_free(chk);
		if (r)
			goto out;
	}
	r = save_manifest(m, out);
out:
	kd_manifest_free(m);
	return r ? cli_refuse(r) : 0;
}

const struct kd_cmd cmd_manifest_create = {
	"manifest create", run_create, "write an unsigned release manifest",
	"Usage: keyd manifest create --version-label L --svn N --measurement HEX\n"
	"       [--measurement HEX ...] [--not-before RFC3339] --not-after RFC3339\n"
	"       [--min-peer-svn N] [--min-tcb PRODUCT:HEX ...] [--rotate] -o FILE\n"
	"\n"
	"One --measurement per supported vCPU count (from `keyd measure`).\n"
	"--not-before defaults to now. Times are UTC: 2026-01-01T00:00:00Z.\n"
	"The validity window is a convenience only: the guest clock is the host's.\n"
	"--min-peer-svn N is the revocation floor: in a handoff this release refuses\n"
	"any peer (old or new) whose manifest svn is below N, whatever the clock says.\n"
	"--min-tcb PRODUCT:HEX (milan|genoa|turin, 16 hex digits in report byte order)\n"
	"is the lowest TCB this release accepts from a handoff peer on that product;\n"
	"a handoff without a floor is refused unless run with --no-tcb-floor.\n"
	"--rotate asks every node that commits to this release (keyd commit\n"
	"--manifest, run by the boot scripts) to rotate its volume key right after\n"
	"the commit: a release that revokes its predecessors' keys.\n",
};

/* ---------------------------------------------------------------- sign */

static int run_sign(int argc, char **argv)
{
	static const struct option opts[] = {
		{"key", required_argument, NULL, 'k'},
		{"out", required_argument, NULL, 'o'},
		{0},
	};
	const char *key = NULL, *out = NULL;
	struct kd_manifest *m = NULL;
	struct kd_secret *pem = NULL;
	uint8_t *raw = NULL;
	size_t len = 0;
	int c, r;

	while ((c = getopt_long(argc, argv, "k:o:", opts, NULL)) != -1) {
		switch (c) {
		case 'k': key = optarg; break;
		case 'o': out = optarg; break;
		default: return cli_usage_error("bad option");
		}
	}
	if (!key || optind + 1 != argc)
		return cli_usage_error("manifest sign needs FILE --key PRIVATE.pem");
	r = load_manifest(argv[optind], &m);
	if (r)
		return cli_refuse(r);
	if ((r = kd_read_file(key, 16384, &raw, &len))) {
		r = kd_fail(r, "cannot read key %s", key);
		goto out;
	}
	r = kd_secret_dup(raw, len, &pem);
	kd_wipe(raw, len);
	if (r || (r = kd_manifest_sign(m, pem->data, pem->len)))
		goto out;
	r = save_manifest(m, out ? out : argv[optind]);
out:
	free(raw);
	kd_secret_free(pem);
	kd_manifest_free(m);
	return r ? cli_refuse(r) : 0;
}

const struct kd_cmd cmd_manifest_sign = {
	"manifest sign", run_sign, "add an Ed25519 signature to a manifest",
	"Usage: keyd manifest sign FILE --key PRIVATE.pem [-o OUT]\n"
	"\n"
	"Sign the canonical form of the manifest (see keyd-handoff(8)) and add the\n"
	"signature; a previous signature by the same key is replaced. Writes FILE\n"
	"in place unless -o is given.\n",
};

/* ---------------------------------------------------------------- verify/show */

static struct json_object *to_json(const struct kd_manifest *m)
{
	char *j = NULL;
	struct json_object *o;

	if (kd_manifest_to_json(m, &j))
		return NULL;
	o = json_tokener_parse(j);
	free(j);
	return o;
}

static int run_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{"release-keys", required_argument, NULL, 'r'},
		{"at", required_argument, NULL, 't'},
		{"measurement", required_argument, NULL, 'm'},
		{"json", no_argument, NULL, 'j'},
		{0},
	};
	const char *keys_path = NULL, *meas_hex = NULL;
	struct kd_release_keys *ks = NULL;
	struct kd_manifest *m = NULL;
	bool json = false;
	time_t at = 0;
	unsigned valid = 0;
	int c, r;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r': keys_path = optarg; break;
		case 't':
			if (kd_manifest_parse_time(optarg, &at))
				return cli_usage_error("--at must be RFC 3339 UTC");
			break;
		case 'm': meas_hex = optarg; break;
		case 'j': json = true; break;
		default: return cli_usage_error("bad option");
		}
	}
	if (optind + 1 != argc)
		return cli_usage_error("manifest verify needs FILE");
	if ((r = load_manifest(argv[optind], &m)) || (r = kd_release_keys_load(keys_path, &ks)) ||
	    (r = kd_manifest_verify(m, ks, at, &valid)))
		goto out;
	if (meas_hex) {
		uint8_t meas[48];

		r = kd_unhex(meas_hex, meas, 48) ? kd_fail(KD_EINVAL, "--measurement must be 96 hex digits")
						 : kd_manifest_has_measurement(m, meas);
		if (r)
			goto out;
	}
	if (json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "ok", json_object_new_boolean(1));
		json_object_object_add(o, "version", json_object_new_string(m->version));
		json_object_object_add(o, "svn", json_object_new_int64(m->svn));
		json_object_object_add(o, "valid_signatures", json_object_new_int((int)valid));
		json_object_object_add(o, "threshold", json_object_new_int((int)ks->threshold));
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
		json_object_put(o);
	} else {
		printf("manifest %s (svn %u): OK, %u of %u required signatures\n", m->version,
		       m->svn, valid, ks->threshold);
	}
out:
	kd_manifest_free(m);
	kd_release_keys_free(ks);
	return r ? cli_refuse(r) : 0;
}

const struct kd_cmd cmd_manifest_verify = {
	"manifest verify", run_verify, "check a manifest's k-of-n signatures and validity",
	"Usage: keyd manifest verify FILE [--release-keys FILE] [--at RFC3339]\n"
	"       [--measurement HEX] [--json]\n"
	"\n"
	"Refuses fewer than k valid signatures by distinct pinned keys (signatures by\n"
	"unknown keys are ignored, two by one key count once), a manifest outside its\n"
	"validity window, and any field edited after signing. --release-keys defaults\n"
	"to " KD_RELEASE_KEYS_DEFAULT ". --measurement also requires that digest to be listed.\n",
};

static int run_show(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{0},
	};
	struct kd_manifest *m = NULL;
	bool json = false;
	char t1[32], t2[32], hex[129];
	int c, r;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'j')
			return cli_usage_error("bad option");
		json = true;
	}
	if (optind + 1 != argc)
		return cli_usage_error("manifest show needs FILE");
	r = load_manifest(argv[optind], &m);
	if (r)
		return cli_refuse(r);
	if (json) {
		struct json_object *o = to_json(m);

		puts(o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							      JSON_C_TO_STRING_NOSLASHESCAPE)
		       : "null");
		json_object_put(o);
	} else {
		kd_manifest_format_time(m->not_before, t1);
		kd_manifest_format_time(m->not_after, t2);
		printf("version:      %s\nsvn:          %u\nvalid:        %s .. %s\n", m->version, m->svn,
		       t1, t2);
		for (size_t i = 0; i < m->n_measurements; i++) {
			kd_hex(m->measurements[i], 48, hex);
			printf("measurement:  %s\n", hex);
		}
		if (m->has_min_peer_svn)
			printf("min peer svn: %u\n", m->min_peer_svn);
		if (m->rotate)
			printf("rotate:       yes (nodes rotate their volume key when they commit)\n");
		for (int p = KD_PRODUCT_MILAN; p <= KD_PRODUCT_TURIN; p++) {
			char th[KD_TCB_HEX_LEN];

			if (!m->has_min_tcb[p])
				continue;
			kd_tcb_hex(m->min_tcb[p], th);
			printf("min tcb:      %s %s\n", kd_product_name((enum kd_product)p), th);
		}
		for (size_t i = 0; i < m->n_sigs; i++) {
			kd_hex(m->sigs[i].key_id, 32, hex);
			printf("signed by:    %s (not verified here)\n", hex);
		}
	}
	kd_manifest_free(m);
	return 0;
}

const struct kd_cmd cmd_manifest_show = {
	"manifest show", run_show, "print a release manifest",
	"Usage: keyd manifest show FILE [--json]\n"
	"\n"
	"Decode a manifest (parsed strictly; signatures are not checked: use verify).\n",
};
