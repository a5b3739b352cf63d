/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The keyd LUKS2 token JSON (kd_token_parse): the host writes the header, so
 * the token text is hostile. Properties: whatever parses formats back to
 * JSON that parses to the same token, and formatting is then a fixed point
 * (format(parse(format(t))) == format(t)).
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "keyd/error.h"
#include "keyd/token.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

static void same(const struct kd_token *a, const struct kd_token *b)
{
	FUZZ_ASSERT(a->keyslot == b->keyslot && a->version == b->version);
	FUZZ_ASSERT(strcmp(a->backend, b->backend) == 0);
	FUZZ_ASSERT(a->root_key_select == b->root_key_select && a->fields == b->fields);
	FUZZ_ASSERT(a->vmpl == b->vmpl && a->guest_svn == b->guest_svn && a->tcb == b->tcb);
	FUZZ_ASSERT(memcmp(a->measurement, b->measurement, sizeof(a->measurement)) == 0);
	FUZZ_ASSERT(a->policy == b->policy && a->has_chip == b->has_chip);
	FUZZ_ASSERT(!a->has_chip || memcmp(a->chip, b->chip, sizeof(a->chip)) == 0);
	FUZZ_ASSERT(strcmp(a->label, b->label) == 0 && a->state == b->state && a->svn == b->svn);
	FUZZ_ASSERT(strcmp(a->created, b->created) == 0);
	FUZZ_ASSERT(memcmp(a->pin, b->pin, sizeof(a->pin)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kd_token t, t2, t3;
	char *s1 = NULL, *s2 = NULL;

	if (kd_token_parse((const char *)data, size, &t)) {
		kd_err_clear();
		return 0;
	}
	FUZZ_ASSERT(t.token_id == -1);
	FUZZ_ASSERT(memchr(t.label, 0, sizeof(t.label)) && memchr(t.backend, 0, sizeof(t.backend)));
	FUZZ_ASSERT(kd_token_format(&t, &s1) == 0);
	FUZZ_ASSERT(kd_token_parse(s1, strlen(s1), &t2) == 0);
	same(&t, &t2);
	FUZZ_ASSERT(kd_token_format(&t2, &s2) == 0);
	FUZZ_ASSERT(strcmp(s1, s2) == 0);
	FUZZ_ASSERT(kd_token_parse(s2, strlen(s2), &t3) == 0);
	same(&t2, &t3);
	free(s1);
	free(s2);
	kd_err_clear();
	return 0;
}
