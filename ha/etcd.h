/* SPDX-License-Identifier: MIT */
/*
 * An etcd v3 client over its HTTP/JSON gateway (POST /v3/...), driven from
 * the event loop by libcurl's multi interface: many requests in flight on
 * reused connections, none of them ever blocks the loop. Each request ends
 * in exactly one call of its callback, unless the client is freed or
 * etcd_cancel_all() drops it first.
 *
 * Keys and values are C strings (etcd's bytes, base64 on the wire; a value
 * holding a NUL byte reads as cut at it). Lease IDs and revisions are int64.
 *
 * At least once: when a reused connection breaks before any byte of the
 * answer (etcd died or restarted, or it closed an idle connection),
 * libcurl sends the request again on another connection; etcd may have
 * applied the first. Every call is harmless twice (a second grant's lease
 * just expires, a second revoke says -ENOENT), a txn too if its failure
 * branch reads the key it guards: "CREATE == 0, else range" then shows our
 * own value.
 *
 * Private to ha/ (the module's public header will be ha/ha.h).
 */
#ifndef SUP_HA_ETCD_H
#define SUP_HA_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/common.h"
#include "lib/loop.h"

struct etcd;

/* A key as read: strings owned by the result that holds it. */
struct etcd_kv {
	char *key, *value;
	int64_t create_revision, mod_revision, version;
	int64_t lease; /* 0: none */
};

/**
 * struct etcd_result - what a request came to; valid only during its callback.
 * @err: 0, or
 *	-ETIMEDOUT: no answer within the client's timeout_ms;
 *	-ECONNREFUSED: nobody listens (etcd not up);
 *	-ECONNRESET: the connection broke mid-request (etcd died): the request
 *	may or may not have been applied;
 *	-ENOENT: the lease is gone: keepalive answered TTL <= 0, or a revoke,
 *	put or txn named a lease etcd does not know (gRPC NotFound);
 *	-EPROTO: any other HTTP status than 200, a gRPC error, or an answer
 *	that is not what etcd sends (bad JSON, over 1 MiB);
 *	-EIO: any other transport failure.
 * @error: text for logs when @err != 0 (etcd's message or curl's).
 * @revision: the store's revision when the request was served (header.revision).
 * @succeeded: txn only: the compares held, the success ops ran.
 * @kvs: range: the keys found, in key order; txn: those of the first range
 *	op that ran (in the branch taken); owned by the result.
 * @n_kvs: entries in @kvs.
 * @lease_id: lease grant and keepalive: the lease.
 * @ttl_s: lease grant and keepalive: the TTL etcd granted, in seconds.
 * @sent_ms: now_ms() when the request was handed to libcurl. The lease
 *	rule: a lease is valid until sent_ms of its last good keepalive (or
 *	grant) + ttl_s, on this node's monotonic clock.
 */
struct etcd_result {
	int err;
	char error[256];
	int64_t revision;
	bool succeeded;
	struct etcd_kv *kvs;
	size_t n_kvs;
	int64_t lease_id, ttl_s;
	uint64_t sent_ms;
};

/*
 * etcd_done_fn - a request's end. @r (and its kvs) is valid only during the
 * call. The callback may start new requests, cancel, or free the client.
 */
typedef void etcd_done_fn(void *data, const struct etcd_result *r);

/**
 * etcd_new() - a client of one etcd endpoint on @loop.
 * @loop: the loop; it must outlive the client.
 * @base_url: "http://127.0.0.1:2379" (copied; no trailing slash needed).
 * @timeout_ms: each request's whole time, connecting included (> 0).
 * @out: receives the client; the caller frees it with etcd_free().
 *
 * Return: 0, -EINVAL (no URL, zero timeout), or -EIO (libcurl failed to start).
 */
int etcd_new(struct loop *loop, const char *base_url, uint32_t timeout_ms,
	     struct etcd **out) _must_check_;

/* etcd_free() - cancel everything in flight (no callback runs) and free. NULL is fine. Return: NULL. */
struct etcd *etcd_free(struct etcd *e);

/*
 * etcd_cancel_all() - abort every request in flight; none of their callbacks
 * runs. A request already sent may still be applied by etcd.
 */
void etcd_cancel_all(struct etcd *e);

/* etcd_in_flight() - how many requests wait for their callback. */
size_t etcd_in_flight(const struct etcd *e);

/*
 * Requests. Each returns 0 once the request is on its way, and @fn(@data, r)
 * runs later from the loop (never from inside the call); or -EINVAL (a NULL
 * key, value or callback, a TTL <= 0) and then @fn never runs. Strings are
 * copied.
 */

/* etcd_lease_grant() - a new lease of @ttl_s seconds: r->lease_id, r->ttl_s. */
int etcd_lease_grant(struct etcd *e, int64_t ttl_s, etcd_done_fn *fn, void *data) _must_check_;
/* etcd_lease_keepalive() - renew @lease_id once: r->ttl_s, or r->err -ENOENT if it is gone. */
int etcd_lease_keepalive(struct etcd *e, int64_t lease_id, etcd_done_fn *fn, void *data) _must_check_;
/* etcd_lease_revoke() - end @lease_id now, deleting its keys (-ENOENT: already gone). */
int etcd_lease_revoke(struct etcd *e, int64_t lease_id, etcd_done_fn *fn, void *data) _must_check_;

/* etcd_range() - read @key, or every key starting with it (@prefix); linearizable. */
int etcd_range(struct etcd *e, const char *key, bool prefix, etcd_done_fn *fn, void *data) _must_check_;
/* etcd_put() - set @key to @value, attached to @lease_id (0: none). */
int etcd_put(struct etcd *e, const char *key, const char *value, int64_t lease_id,
	     etcd_done_fn *fn, void *data) _must_check_;
/* etcd_delete() - delete @key, or every key starting with it (@prefix). */
int etcd_delete(struct etcd *e, const char *key, bool prefix, etcd_done_fn *fn, void *data) _must_check_;

enum etcd_target { ETCD_CREATE, ETCD_MOD, ETCD_VALUE, ETCD_VERSION };
enum etcd_cmp_result { ETCD_EQUAL, ETCD_NOT_EQUAL, ETCD_GREATER, ETCD_LESS };

/*
 * A txn compare: @key's @target compared to @revision (ETCD_CREATE,
 * ETCD_MOD: a revision; ETCD_VERSION: a version) or to @value (ETCD_VALUE).
 * "Absent" is ETCD_CREATE ETCD_EQUAL 0.
 */
struct etcd_cmp {
	const char *key;
	enum etcd_target target;
	enum etcd_cmp_result result;
	int64_t revision;
	const char *value;
};

enum etcd_op_kind { ETCD_OP_PUT, ETCD_OP_DELETE, ETCD_OP_RANGE };

/* A txn op: @value and @lease_id for ETCD_OP_PUT; @prefix for delete and range. */
struct etcd_op {
	enum etcd_op_kind kind;
	const char *key;
	const char *value;
	int64_t lease_id;
	bool prefix;
};

/**
 * etcd_txn() - if every compare holds, run @success, else @failure; atomically.
 * @e: the client.
 * @cmp: the compares (all must hold), @n_cmp of them.
 * @success: ops run when they hold, @n_success of them.
 * @failure: ops run otherwise, @n_failure of them (may be NULL, 0).
 * @fn: called with r->succeeded, and r->kvs from the first range op that ran.
 * @data: passed to @fn.
 *
 * Return: 0, or -EINVAL (a NULL key, a put or ETCD_VALUE compare without a value).
 */
int etcd_txn(struct etcd *e, const struct etcd_cmp *cmp, size_t n_cmp,
	     const struct etcd_op *success, size_t n_success,
	     const struct etcd_op *failure, size_t n_failure,
	     etcd_done_fn *fn, void *data) _must_check_;

#endif
