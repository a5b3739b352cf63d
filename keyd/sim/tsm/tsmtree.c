/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The configfs-tsm report interface of the test guest (see tsmtree.h for
 * what is mirrored and from which kernel files).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyd/cursor.h"
#include "keyd/keyreq.h"
#include "tsmtree.h"

#define SEV_FW_BLOB_MAX_SIZE (16u * 1024u)
#define SNP_REPORT_SIZE 4096u /* sev_report_new's report_size (SZ_4K) */
#define RESP_HDR_SIZE 32u     /* snp_msg_report_resp_hdr: status, report_size, rsvd[24] */
#define CERT_ENTRY_SIZE 24u   /* snp_msg_cert_entry: guid[16], offset, length */

struct tsm_entry {
	struct tsm_entry *next;
	char *name;
	uint8_t inblob[TSM_INBLOB_MAX];
	size_t inblob_len;
	unsigned privlevel;
	uint64_t write_generation, read_generation;
	uint8_t *outblob, *auxblob;
	size_t outblob_len, auxblob_len;
};

struct tsm_tree {
	char *provider;
	unsigned floor;
	tsm_ioctl_fn ioctl;
	void *ctx;
	pthread_mutex_t lock; /* tsm_rwsem (taken for writing everywhere: a test rig) */
	struct tsm_entry *entries;
};

static const struct {
	const char *name;
	bool r, w, bin;
} attrs[TSM_NATTR] = {
	[TSM_INBLOB] = {"inblob", false, true, true},
	[TSM_OUTBLOB] = {"outblob", true, false, true},
	[TSM_AUXBLOB] = {"auxblob", true, false, true},
	[TSM_GENERATION] = {"generation", true, false, false},
	[TSM_PROVIDER] = {"provider", true, false, false},
	[TSM_PRIVLEVEL] = {"privlevel", false, true, false},
	[TSM_PRIVLEVEL_FLOOR] = {"privlevel_floor", true, false, false},
};

int tsm_attr_lookup(const char *name)
{
	for (int i = 0; i < TSM_NATTR; i++)
		if (!strcmp(attrs[i].name, name))
			return i;
	return -1;
}

const char *tsm_attr_name(enum tsm_attr a)
{
	return attrs[a].name;
}

bool tsm_attr_readable(enum tsm_attr a)
{
	return attrs[a].r;
}

bool tsm_attr_writable(enum tsm_attr a)
{
	return attrs[a].w;
}

bool tsm_attr_binary(enum tsm_attr a)
{
	return attrs[a].bin;
}

int tsm_tree_new(const struct tsm_opts *o, struct tsm_tree **ret)
{
	struct tsm_tree *t = calloc(1, sizeof(*t));

	if (!t || !(t->provider = strdup(o->provider ? o->provider : "sev_guest"))) {
		free(t);
		return -ENOMEM;
	}
	t->floor = o->privlevel_floor;
	t->ioctl = o->ioctl;
	t->ctx = o->ctx;
	pthread_mutex_init(&t->lock, NULL);
	*ret = t;
	return 0;
}

static void entry_free(struct tsm_entry *e)
{
	free(e->name);
	free(e->outblob);
	free(e->auxblob);
	explicit_bzero(e, sizeof(*e));
	free(e);
}

void tsm_tree_free(struct tsm_tree *t)
{
	if (!t)
		return;
	while (t->entries) {
		struct tsm_entry *e = t->entries;

		t->entries = e->next;
		entry_free(e);
	}
	pthread_mutex_destroy(&t->lock);
	free(t->provider);
	free(t);
}

static struct tsm_entry *find(struct tsm_tree *t, const char *name)
{
	for (struct tsm_entry *e = t->entries; e; e = e->next)
		if (!strcmp(e->name, name))
			return e;
	return NULL;
}

int tsm_mkdir(struct tsm_tree *t, const char *name)
{
	struct tsm_entry *e;
	int r = 0;

	if (!*name || strchr(name, '/'))
		return -EINVAL;
	if (strlen(name) > TSM_NAME_MAX)
		return -ENAMETOOLONG;
	pthread_mutex_lock(&t->lock);
	if (find(t, name)) {
		r = -EEXIST;
	} else if (!(e = calloc(1, sizeof(*e))) || !(e->name = strdup(name))) {
		free(e);
		r = -ENOMEM;
	} else {
		e->next = t->entries;
		t->entries = e;
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}

int tsm_rmdir(struct tsm_tree *t, const char *name)
{
	int r = -ENOENT;

	pthread_mutex_lock(&t->lock);
	for (struct tsm_entry **p = &t->entries; *p; p = &(*p)->next) {
		if (!strcmp((*p)->name, name)) {
			struct tsm_entry *e = *p;

			*p = e->next;
			entry_free(e);
			r = 0;
			break;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}

bool tsm_exists(struct tsm_tree *t, const char *name)
{
	bool r;

	pthread_mutex_lock(&t->lock);
	r = find(t, name) != NULL;
	pthread_mutex_unlock(&t->lock);
	return r;
}

void tsm_list(struct tsm_tree *t, void (*fn)(void *ctx, const char *name), void *ctx)
{
	pthread_mutex_lock(&t->lock);
	for (struct tsm_entry *e = t->entries; e; e = e->next)
		fn(ctx, e->name);
	pthread_mutex_unlock(&t->lock);
}

/* try_advance_write_generation */
static int advance(struct tsm_entry *e)
{
	if (e->write_generation == e->read_generation - 1)
		return -EBUSY;
	e->write_generation++;
	return 0;
}

/* kstrtouint(buf, 0, &val): base prefix, digits, at most one trailing newline. */
static int parse_uint(const char *buf, size_t len, unsigned *ret)
{
	char s[32], *end;
	unsigned long long v;

	if (len && buf[len - 1] == '\n')
		len--;
	if (!len || len >= sizeof(s))
		return -EINVAL;
	memcpy(s, buf, len);
	s[len] = '\0';
	if (s[0] == '+' || s[0] == '-' || s[0] == ' ')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (*end)
		return -EINVAL;
	if (errno == ERANGE || v > 0xffffffffull)
		return -ERANGE;
	*ret = (unsigned)v;
	return 0;
}

long tsm_store(struct tsm_tree *t, const char *name, enum tsm_attr a, const void *buf, size_t len)
{
	struct tsm_entry *e;
	unsigned val = 0;
	long r;

	if ((unsigned)a >= TSM_NATTR || !attrs[a].w)
		return -EACCES;
	if (a == TSM_INBLOB && len > TSM_INBLOB_MAX)
		return -EFBIG;
	if (a == TSM_PRIVLEVEL) {
		if ((r = parse_uint(buf, len, &val)) < 0)
			return r;
		/* privlevel_store: floor..TSM_PRIVLEVEL_MAX, checked before the lock. */
		if (t->floor > val || val > TSM_PRIVLEVEL_MAX)
			return -EINVAL;
	}
	pthread_mutex_lock(&t->lock);
	if (!(e = find(t, name))) {
		r = -ENOENT;
	} else if ((r = advance(e)) == 0) {
		if (a == TSM_PRIVLEVEL) {
			e->privlevel = val;
		} else {
			e->inblob_len = len;
			memcpy(e->inblob, buf, len);
		}
		r = (long)len;
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}

static void cert_table_size(const uint8_t *tab, size_t *ret)
{
	static const uint8_t zero[16];
	size_t size = 0, i;

	for (i = 0; i < SEV_FW_BLOB_MAX_SIZE / CERT_ENTRY_SIZE; i++) {
		const uint8_t *ent = tab + i * CERT_ENTRY_SIZE;
		uint32_t off = kd_get_le32(ent + 16), len = kd_get_le32(ent + 20);

		if (!memcmp(ent, zero, 16) && !off && !len)
			break;
		/* u32 arithmetic as in the driver */
		if ((uint32_t)(off + len) > size)
			size = (uint32_t)(off + len);
	}
	/* "certificate data truncated" */
	*ret = size > SEV_FW_BLOB_MAX_SIZE ? SEV_FW_BLOB_MAX_SIZE : size;
}

/* sev_report_new(); lock held. */
static int report_new(struct tsm_tree *t, struct tsm_entry *e)
{
	struct snp_ext_report_req req;
	struct snp_guest_request_ioctl io;
	uint8_t *buf, *out = NULL, *aux = NULL;
	uint32_t status, size;
	size_t certs_size = 0;
	int r;

	if (e->inblob_len != 64)
		return -EINVAL;
	if (!(buf = calloc(1, SNP_REPORT_SIZE + SEV_FW_BLOB_MAX_SIZE)))
		return -ENOMEM;
	memset(&req, 0, sizeof(req));
	req.data.vmpl = e->privlevel;
	memcpy(req.data.user_data, e->inblob, 64);
	req.certs_address = (uint64_t)(uintptr_t)(buf + SNP_REPORT_SIZE);
	req.certs_len = SEV_FW_BLOB_MAX_SIZE;
	memset(&io, 0, sizeof(io));
	io.msg_version = 1;
	io.req_data = (uint64_t)(uintptr_t)&req;
	io.resp_data = (uint64_t)(uintptr_t)buf;
	io.exitinfo2 = 0xff;
	if ((r = t->ioctl(t->ctx, SNP_GET_EXT_REPORT, &io)) < 0)
		goto out;
	status = kd_get_le32(buf);
	size = kd_get_le32(buf + 4);
	if (status == KD_FW_INVALID_PARAMS || status == KD_FW_INVALID_KEY) {
		r = -EINVAL;
		goto out;
	}
	if (status) {
		r = -ENXIO;
		goto out;
	}
	if ((uint64_t)size + RESP_HDR_SIZE > SNP_REPORT_SIZE) {
		r = -ENOMEM;
		goto out;
	}
	cert_table_size(buf + SNP_REPORT_SIZE, &certs_size);
	if (!(out = malloc(size ? size : 1)) || (certs_size && !(aux = malloc(certs_size)))) {
		free(out);
		r = -ENOMEM;
		goto out;
	}
	memcpy(out, buf + RESP_HDR_SIZE, size);
	if (certs_size)
		memcpy(aux, buf + SNP_REPORT_SIZE, certs_size);
	e->outblob = out;
	e->outblob_len = size;
	e->auxblob = aux;
	e->auxblob_len = certs_size;
	r = 0;
out:
	explicit_bzero(buf, SNP_REPORT_SIZE + SEV_FW_BLOB_MAX_SIZE);
	free(buf);
	return r;
}

static int dup_out(const void *p, size_t len, uint8_t **ret, size_t *ret_len)
{
	uint8_t *b = malloc(len ? len : 1);

	if (!b)
		return -ENOMEM;
	if (len)
		memcpy(b, p, len);
	*ret = b;
	*ret_len = len;
	return 0;
}

int tsm_show(struct tsm_tree *t, const char *name, enum tsm_attr a, uint8_t **ret, size_t *ret_len)
{
	struct tsm_entry *e;
	char s[96];
	int r = 0;

	if ((unsigned)a >= TSM_NATTR || !attrs[a].r)
		return -EACCES;
	pthread_mutex_lock(&t->lock);
	if (!(e = find(t, name))) {
		r = -ENOENT;
		goto out;
	}
	switch (a) {
	case TSM_GENERATION:
		snprintf(s, sizeof(s), "%llu\n", (unsigned long long)e->write_generation);
		r = dup_out(s, strlen(s), ret, ret_len);
		break;
	case TSM_PROVIDER:
		snprintf(s, sizeof(s), "%s\n", t->provider);
		r = dup_out(s, strlen(s), ret, ret_len);
		break;
	case TSM_PRIVLEVEL_FLOOR:
		snprintf(s, sizeof(s), "%u\n", t->floor);
		r = dup_out(s, strlen(s), ret, ret_len);
		break;
	default: /* outblob, auxblob: tsm_report_read */
		if (!e->inblob_len) {
			r = -EINVAL;
			break;
		}
		if (!e->outblob || e->read_generation != e->write_generation) {
			free(e->outblob);
			free(e->auxblob);
			e->outblob = e->auxblob = NULL;
			e->outblob_len = e->auxblob_len = 0;
			if ((r = report_new(t, e)) < 0)
				break;
			e->read_generation = e->write_generation;
		}
		r = a == TSM_OUTBLOB ? dup_out(e->outblob, e->outblob_len, ret, ret_len)
				     : dup_out(e->auxblob, e->auxblob_len, ret, ret_len);
		break;
	}
out:
	pthread_mutex_unlock(&t->lock);
	return r;
}

int tsm_test_set_write_generation(struct tsm_tree *t, const char *name, uint64_t gen)
{
	struct tsm_entry *e;
	int r = -ENOENT;

	pthread_mutex_lock(&t->lock);
	if ((e = find(t, name))) {
		e->write_generation = gen;
		r = 0;
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}
