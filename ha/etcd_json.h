/* SPDX-License-Identifier: MIT */
/*
 * Private to ha/: the etcd gateway's JSON, pure (no I/O), so it is unit
 * tested without etcd. Requests are built here and answers parsed here;
 * ha/etcd.c only moves them over HTTP.
 */
#ifndef SUP_HA_ETCD_JSON_H
#define SUP_HA_ETCD_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "ha/etcd.h"
#include "lib/common.h"

/* Answers over this size are refused (-EPROTO): etcd's are far smaller. */
#define ETCD_RESPONSE_MAX (1024 * 1024)

/* The gateway's calls; each has its path and its answer's shape. */
enum etcd_call {
	ETCD_CALL_GRANT,
	ETCD_CALL_KEEPALIVE,
	ETCD_CALL_REVOKE,
	ETCD_CALL_RANGE,
	ETCD_CALL_PUT,
	ETCD_CALL_DELETE,
	ETCD_CALL_TXN,
};

/* etcd_call_path() - "/v3/lease/grant", ... (POST, all of them). */
const char *etcd_call_path(enum etcd_call call);

/* etcd_b64() - base64 (the original alphabet, padded) of @len bytes. Return: a string the caller frees. */
char *etcd_b64(const void *bin, size_t len);

/**
 * etcd_unb64() - decode base64 (original alphabet, padded) into a string.
 * @b64: the text; all of it must decode.
 * @out: receives the bytes plus a NUL the caller frees.
 * @len: receives their number (may be NULL).
 *
 * Return: 0 or -EPROTO.
 */
int etcd_unb64(const char *b64, char **out, size_t *len) _must_check_;

/**
 * etcd_prefix_end() - the range_end that makes @key a prefix (etcd's rule).
 * @key: the prefix.
 * @out: receives the bytes (strlen(@key) + 1 at most, not NUL-terminated).
 *
 * The last byte below 0xff is incremented and what follows it dropped; a
 * key of 0xff bytes only (or "") gives "\0": every key from @key on.
 * Return: the number of bytes in @out (at least 1).
 */
size_t etcd_prefix_end(const char *key, unsigned char *out);

/*
 * Request bodies. Each returns the JSON text the caller frees, or NULL when
 * the arguments are invalid (a NULL key or value where one is needed, a
 * value of no enum). int64 fields are sent as strings (lease IDs pass 2^53).
 */
char *etcd_json_grant(int64_t ttl_s);
char *etcd_json_lease(int64_t lease_id); /* keepalive and revoke: {"ID":"N"} */
char *etcd_json_range(const char *key, bool prefix);
char *etcd_json_put(const char *key, const char *value, int64_t lease_id);
char *etcd_json_delete(const char *key, bool prefix);
char *etcd_json_txn(const struct etcd_cmp *cmp, size_t n_cmp,
		    const struct etcd_op *success, size_t n_success,
		    const struct etcd_op *failure, size_t n_failure);

/**
 * etcd_parse() - fill @r from an answer of @call.
 * @call: what was asked.
 * @http_status: the HTTP status.
 * @body: the body (not NUL-terminated), @len bytes.
 * @r: receives err, error and the figures (kvs allocated: etcd_result_clear()).
 *
 * int64 fields are read from JSON strings or numbers; an absent one is 0.
 * A status other than 200 carries the gateway's {"error","code","message"}.
 * Return: @r->err.
 */
int etcd_parse(enum etcd_call call, long http_status, const char *body, size_t len,
	       struct etcd_result *r);

/* etcd_result_clear() - free @r's kvs and zero it. */
void etcd_result_clear(struct etcd_result *r);

#endif
