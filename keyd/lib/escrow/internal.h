/* SPDX-License-Identifier: Apache-2.0 */
/* Shared inside keyd/lib/escrow only. */
#ifndef KEYD_ESCROW_INTERNAL_H
#define KEYD_ESCROW_INTERNAL_H

#include <json-c/json.h>
#include <libcryptsetup.h>

#include "keyd/volume.h"

/*
 * libcryptsetup handle on v whose loaded metadata is byte-for-byte the JSON
 * that a fresh header read (header.h) put through the allow-list, for the
 * UUID v was opened with: the host could swap the header between the check
 * and its use. *ret_meta is that JSON (json_object_put).
 */
int escrow_checked_cd(struct kd_volume *v, struct crypt_device **ret, json_object **ret_meta);

/* PBKDF2-SHA512, 1000 iterations, no benchmark, on every keyslot write. */
int escrow_set_pbkdf(struct crypt_device *cd);

#endif
