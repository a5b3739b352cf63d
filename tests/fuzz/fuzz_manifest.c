/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Release manifests (kd_manifest_parse) and release-key configuration
 * (kd_release_keys_parse). A manifest arrives in the peer's HELLO before the
 * peer is verified. The first input byte picks the parser.
 * Properties: a parsed manifest serialises to JSON that parses back to the
 * same canonical signed bytes (so the JSON form cannot smuggle anything past
 * the signature), and verification of the hostile signatures against a
 * pinned key set runs without crashing and never succeeds.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "keyd/error.h"
#include "keyd/manifest.h"

static struct kd_release_keys *pinned;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char *priv = NULL, *pub = NULL, *cfg = NULL;

	FUZZ_ASSERT(kd_manifest_keygen(&priv, &pub) == 0);
	FUZZ_ASSERT(asprintf(&cfg, "{\"threshold\": 1, \"keys\": [\"%s\"]}", pub) > 0);
	/* PEM newlines are not legal inside a JSON string: escape them. */
	{
		size_t n = 0;
		char *esc = malloc(strlen(cfg) * 2 + 1);

		FUZZ_ASSERT(esc);
		for (const char *s = cfg; *s; s++) {
			if (*s == '\n') {
				esc[n++] = '\\';
				esc[n++] = 'n';
			} else {
				esc[n++] = *s;
			}
		}
		esc[n] = 0;
		FUZZ_ASSERT(kd_release_keys_parse((const uint8_t *)esc, n, &pinned) == 0);
		free(esc);
	}
	free(priv);
	free(pub);
	free(cfg);
	return 0;
}

static void manifest(const uint8_t *p, size_t n)
{
	struct kd_manifest *m = NULL, *m2 = NULL;
	uint8_t *c1 = NULL, *c2 = NULL;
	size_t l1 = 0, l2 = 0;
	char *json = NULL;
	unsigned valid = 99;

	if (kd_manifest_parse(p, n, &m))
		return;
	FUZZ_ASSERT(m->n_measurements >= 1 && m->n_measurements <= KD_MANIFEST_MAX_MEAS);
	FUZZ_ASSERT(m->n_sigs <= KD_MANIFEST_MAX_SIGS);
	FUZZ_ASSERT(strlen(m->version) >= 1 && strlen(m->version) <= KD_MANIFEST_LABEL_MAX);
	FUZZ_ASSERT(kd_manifest_canonical(m, &c1, &l1) == 0);
	FUZZ_ASSERT(kd_manifest_to_json(m, &json) == 0);
	FUZZ_ASSERT(kd_manifest_parse((const uint8_t *)json, strlen(json), &m2) == 0);
	FUZZ_ASSERT(kd_manifest_canonical(m2, &c2, &l2) == 0);
	FUZZ_ASSERT(l1 == l2 && memcmp(c1, c2, l1) == 0);
	FUZZ_ASSERT(m2->n_sigs == m->n_sigs);
	FUZZ_ASSERT(m->n_sigs == 0 ||
		    memcmp(m->sigs, m2->sigs, m->n_sigs * sizeof(m->sigs[0])) == 0);
	for (size_t i = 0; i < m->n_measurements; i++)
		FUZZ_ASSERT(kd_manifest_has_measurement(m, m->measurements[i]) == 0);
	FUZZ_ASSERT(kd_manifest_verify(m, pinned, m->not_before, &valid) != 0);
	FUZZ_ASSERT(valid == 0);
	free(c1);
	free(c2);
	free(json);
	kd_manifest_free(m);
	kd_manifest_free(m2);
}

static void release_keys(const uint8_t *p, size_t n)
{
	struct kd_release_keys *k = NULL;

	if (kd_release_keys_parse(p, n, &k))
		return;
	FUZZ_ASSERT(k->n >= 1 && k->n <= KD_RELEASE_KEYS_MAX);
	FUZZ_ASSERT(k->threshold >= 1 && k->threshold <= k->n);
	for (size_t i = 0; i < k->n; i++)
		for (size_t j = 0; j < i; j++)
			FUZZ_ASSERT(memcmp(k->ids[i], k->ids[j], 32) != 0);
	kd_release_keys_free(k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		release_keys(data + 1, size - 1);
	else
		manifest(data + 1, size - 1);
	kd_err_clear();
	return 0;
}
