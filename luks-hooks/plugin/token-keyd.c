/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libcryptsetup-token-keyd.so: the keyd token as a libcryptsetup external
 * token plugin, so that `cryptsetup open --token-only --token-type keyd`
 * and systemd-cryptsetup open keyd volumes. It runs exactly the checks of
 * `keyd unlock` (header allow-list, token for this launch, derive, keyslot,
 * pin in constant time) before it hands out the keyslot passphrase. The
 * backend comes from $KEYD_SIM or detection (snp, tsm), as for keyd itself.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <libcryptsetup.h>

#include "keyd/error.h"
#include "keyd/pending.h"
#include "keyd/secret.h"
#include "keyd/token.h"
#include "keyd/util.h"
#include "keyd/volume.h"

/* Only these symbols are exported (token.sym, CRYPTSETUP_TOKEN_1.0). */
int cryptsetup_token_open(struct crypt_device *cd, int token, char **buffer, size_t *buffer_len,
			  void *usrptr);
int cryptsetup_token_open_pin(struct crypt_device *cd, int token, const char *pin, size_t pin_size,
			      char **buffer, size_t *buffer_len, void *usrptr);
void cryptsetup_token_buffer_free(void *buffer, size_t buffer_len);
int cryptsetup_token_validate(struct crypt_device *cd, const char *json);
void cryptsetup_token_dump(struct crypt_device *cd, const char *json);
const char *cryptsetup_token_version(void);

const char *cryptsetup_token_version(void)
{
	return KEYD_VERSION;
}

int cryptsetup_token_open(struct crypt_device *cd, int token, char **buffer, size_t *buffer_len,
			  void *usrptr)
{
	_kd_secret_ struct kd_secret *vk = NULL, *pass = NULL;
	struct kd_backend_opts bopts = {0};
	struct kd_backend *b = NULL;
	struct kd_volume *v = NULL;
	/* The header lives on the data device unless it is detached. */
	const char *path = crypt_get_metadata_device_name(cd) ?: crypt_get_device_name(cd);
	const char *uuid = crypt_get_uuid(cd);
	struct kd_launch l;
	struct kd_token tok;
	char *out;
	int r;

	(void)usrptr;
	if (!path || !uuid)
		return -EINVAL;
	if ((r = kd_volume_open(path, &v)) < 0)
		goto fail;
	/* A pending handoff slot opens after its evidence is judged (pending.h). */
	kd_volume_set_pending_opener(v, kd_pending_opener, NULL);
	if (strcmp(kd_volume_uuid(v), uuid)) {
		r = kd_fail(KD_ETAMPER, "header changed under the token plugin");
		goto fail;
	}
	/* This is a real unlock: refused while the header copies disagree
	 * (keyd reads on a private copy; the device is not keyd's to repair). */
	if ((r = kd_header_require_agree(kd_volume_health(v))) < 0)
		goto fail;
	if ((r = kd_backend_open(&bopts, &b)) < 0 || (r = kd_launch_get(b, &l)) < 0 ||
	    (r = kd_volume_unlock_secrets(v, b, &l, &vk, &pass, &tok)) < 0)
		goto fail;
	if (tok.token_id != token) {
		/* Another keyd token is this launch's; let libcryptsetup try it. */
		r = kd_fail(KD_ENOKEY, "this launch opens keyd token %d, not token %d", tok.token_id,
			    token);
		goto fail;
	}
	out = malloc(pass->len);
	if (!out) {
		r = kd_fail(KD_ENOMEM, "out of memory (passphrase buffer)");
		goto fail;
	}
	(void)mlock(out, pass->len);
	memcpy(out, pass->data, pass->len);
	*buffer = out;
	*buffer_len = pass->len;
	kd_volume_close(v);
	kd_backend_close(b);
	return 0;
fail:
	/* libcryptsetup logs through its own callback; keyd's detail names the
	 * failed check and never carries key material. */
	crypt_logf(cd, CRYPT_LOG_ERROR, "keyd token %d: %s\n", token, kd_err_detail(r));
	kd_volume_close(v);
	kd_backend_close(b);
	return r == KD_ENOMEM ? -ENOMEM : r == KD_ETAMPER ? -EPERM : -ENOENT;
}

int cryptsetup_token_open_pin(struct crypt_device *cd, int token, const char *pin, size_t pin_size,
			      char **buffer, size_t *buffer_len, void *usrptr)
{
	/* keyd tokens take no PIN: the key comes from the AMD-SP. */
	(void)pin;
	(void)pin_size;
	return cryptsetup_token_open(cd, token, buffer, buffer_len, usrptr);
}

void cryptsetup_token_buffer_free(void *buffer, size_t buffer_len)
{
	if (!buffer)
		return;
	kd_wipe(buffer, buffer_len);
	munlock(buffer, buffer_len);
	free(buffer);
}

int cryptsetup_token_validate(struct crypt_device *cd, const char *json)
{
	struct kd_token t;

	(void)cd;
	if (!json || kd_token_parse(json, strlen(json), &t) < 0)
		return -EINVAL;
	return 0;
}

void cryptsetup_token_dump(struct crypt_device *cd, const char *json)
{
	struct kd_token t;
	char tcb[KD_TCB_HEX_LEN], m[2 * KD_MEASUREMENT_SIZE + 1];

	if (!json || kd_token_parse(json, strlen(json), &t) < 0) {
		crypt_logf(cd, CRYPT_LOG_NORMAL, "\tinvalid keyd token\n");
		return;
	}
	kd_tcb_hex(t.tcb, tcb);
	kd_hex(t.measurement, sizeof(t.measurement), m);
	crypt_logf(cd, CRYPT_LOG_NORMAL,
		   "\tkeyd state:  %s\n\tkeyd label:  %s\n\tkeyd TCB:    %s\n"
		   "\tmeasurement: %s\n\tbackend:     %s\n",
		   kd_token_state_name(t.state), t.label, tcb, m, t.backend);
}
