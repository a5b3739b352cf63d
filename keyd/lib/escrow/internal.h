/* SPDX-License-Identifier: Apache-2.0 */
/* Shared inside keyd/lib/escrow only. */
#ifndef KEYD_ESCROW_INTERNAL_H
#define KEYD_ESCROW_INTERNAL_H

#include <json-c/json.h>
#include <libcryptsetup.h>

#include "keyd/volume.h"

/* PBKDF2-SHA512, 1000 iterations, no benchmark, on every keyslot write. */

#endif
