/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The escrow's part of a volume-key rotation (keyd/rotate.h): kd_rotate, in
 * the LUKS2 module below this one, calls back here to learn about an existing
 * escrow and to re-split it for the new volume key.
 */
#include "keyd/escrow.h"
#include "keyd/rotate.h"

static int find(struct kd_volume *v, unsigned *ret_k, size_t *ret_n, void *usr)
{
	struct kd_escrow_token esc = {0};
	int r;

	(void)usr;
	r = kd_escrow_find(v, &esc);
	if (r)
		goto out;
	*ret_k = esc.threshold;
	*ret_n = esc.n;
out:
	kd_escrow_token_clear(&esc);
	return r;
}

static int add(struct kd_volume *v, const struct kd_secret *vk, unsigned k, X509 *const *certs,
	       size_t n_certs, void *usr)
{
	(void)usr;
	return kd_escrow_add(v, vk, k, certs, n_certs, false, NULL);
}

void kd_escrow_rotate_hooks(struct kd_rotate_opts *o)
{
	o->escrow_find = find;
	o->escrow_add = add;
	o->escrow_usr = NULL;
}
