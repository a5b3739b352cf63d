/* SPDX-License-Identifier: Apache-2.0 */
/* TCB roll-forward of this launch's slot, for keyd and keyd-recover (recover.h). */
#include "keyd/error.h"
#include "keyd/recover.h"

int kd_recover_rekey(const char *device, struct kd_backend *b, const struct kd_launch *l,
		     bool *ret_done)
{
	_kd_secret_ struct kd_secret *vk = NULL;
	struct kd_volume *v = NULL;
	struct kd_token tok;
	bool done = false;
	int r;

	if ((r = kd_volume_open(device, &v)))
		return r;
	if ((r = kd_volume_get_key(v, b, l, &vk, &tok)) == 0)
		r = kd_volume_rekey(v, b, l, vk, &tok, &done);
	kd_volume_close(v);
	if (r)
		return r;
	*ret_done = done;
	return 0;
}
