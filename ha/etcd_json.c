// SPDX-License-Identifier: MIT
/*
 * The etcd v3 gateway's JSON: protobuf messages in jsonpb form. Keys and
 * values (bytes) are base64; int64 fields are strings on the way out, and
 * on the way back strings too (numbers accepted), omitted when 0, like
 * every default value (false, empty). Errors of unary calls come as an
 * HTTP error status with {"error","code","message"}; those of the
 * keepalive stream as {"error":{"grpc_code","message",...}} under 200.
 */
#include "ha/etcd_json.h"
#include "lib/log.h"
#include "lib/mem.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define GRPC_NOT_FOUND 5

const char *etcd_call_path(enum etcd_call call)
{
	switch (call) {
	case ETCD_CALL_GRANT:
		return "/v3/lease/grant";
	case ETCD_CALL_KEEPALIVE:
		return "/v3/lease/keepalive";
	case ETCD_CALL_REVOKE:
		return "/v3/lease/revoke";
	case ETCD_CALL_RANGE:
		return "/v3/kv/range";
	case ETCD_CALL_PUT:
		return "/v3/kv/put";
	case ETCD_CALL_DELETE:
		return "/v3/kv/deleterange";
	case ETCD_CALL_TXN:
		return "/v3/kv/txn";
	}
	return NULL;
}

char *etcd_b64(const void *bin, size_t len)
{
	size_t size = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	char *s = xmalloc(size);

	return sodium_bin2base64(s, size, bin, len, sodium_base64_VARIANT_ORIGINAL);
}

int etcd_unb64(const char *b64, char **out, size_t *len)
{
	size_t n = strlen(b64), got = 0;
	const char *end = NULL;
	char *bin = xmalloc(n / 4 * 3 + 3);

	if (sodium_base642bin((unsigned char *)bin, n / 4 * 3 + 2, b64, n, NULL, &got, &end,
			      sodium_base64_VARIANT_ORIGINAL) != 0 || end != b64 + n) {
		free(bin);
		return -EPROTO;
	}
	bin[got] = '\0';
	*out = bin;
	if (len)
		*len = got;
	return 0;
}

size_t etcd_prefix_end(const char *key, unsigned char *out)
{
	size_t n = strlen(key);

	memcpy(out, key, n);
	while (n > 0) {
		if (out[n - 1] < 0xff) {
			out[n - 1]++;
			return n;
		}
		n--; /* 0xff cannot be incremented: carry to the byte before */
	}
	out[0] = '\0';
	return 1;
}

/* Building: out of memory is fatal, as everywhere (lib/mem.h). */

static void set(json_t *o, const char *k, json_t *v)
{
	if (!v || json_object_set_new(o, k, v) < 0)
		fatalx("etcd", "out of memory building a request");
}

static void append(json_t *a, json_t *v)
{
	if (!v || json_array_append_new(a, v) < 0)
		fatalx("etcd", "out of memory building a request");
}

static json_t *new_object(void)
{
	json_t *o = json_object();

	if (!o)
		fatalx("etcd", "out of memory building a request");
	return o;
}

static json_t *new_array(void)
{
	json_t *a = json_array();

	if (!a)
		fatalx("etcd", "out of memory building a request");
	return a;
}

static json_t *i64(int64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%" PRId64, v);
	return json_string(buf);
}

static json_t *b64(const void *bin, size_t len)
{
	_cleanup_free_ char *s = etcd_b64(bin, len);

	return json_string(s);
}

static char *dump(json_t *o)
{
	char *s;

	if (!o)
		return NULL;
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!s)
		fatalx("etcd", "out of memory building a request");
	return s;
}

/* {"key": K} with "range_end" when @prefix: RangeRequest, DeleteRangeRequest. */
static json_t *key_object(const char *key, bool prefix)
{
	json_t *o;

	if (!key)
		return NULL;
	o = new_object();
	set(o, "key", b64(key, strlen(key)));
	if (prefix) {
		_cleanup_free_ unsigned char *end = xmalloc(strlen(key) + 1);
		size_t n = etcd_prefix_end(key, end);

		set(o, "range_end", b64(end, n));
	}
	return o;
}

static json_t *put_object(const char *key, const char *value, int64_t lease_id)
{
	json_t *o;

	if (!value || !(o = key_object(key, false)))
		return NULL;
	set(o, "value", b64(value, strlen(value)));
	if (lease_id)
		set(o, "lease", i64(lease_id));
	return o;
}

char *etcd_json_grant(int64_t ttl_s)
{
	json_t *o = new_object();

	set(o, "TTL", i64(ttl_s));
	return dump(o);
}

char *etcd_json_lease(int64_t lease_id)
{
	json_t *o = new_object();

	set(o, "ID", i64(lease_id));
	return dump(o);
}

char *etcd_json_range(const char *key, bool prefix)
{
	/* serializable is false by default: a linearizable read, through the raft leader. */
	return dump(key_object(key, prefix));
}

char *etcd_json_put(const char *key, const char *value, int64_t lease_id)
{
	return dump(put_object(key, value, lease_id));
}

char *etcd_json_delete(const char *key, bool prefix)
{
	return dump(key_object(key, prefix));
}

static json_t *compare(const struct etcd_cmp *c)
{
	static const char *const results[] = {
		[ETCD_EQUAL] = "EQUAL", [ETCD_NOT_EQUAL] = "NOT_EQUAL",
		[ETCD_GREATER] = "GREATER", [ETCD_LESS] = "LESS",
	};
	json_t *o;

	if ((unsigned)c->result >= ARRAY_SIZE(results) || !(o = key_object(c->key, false)))
		return NULL;
	set(o, "result", json_string(results[c->result]));
	switch (c->target) {
	case ETCD_CREATE:
		set(o, "target", json_string("CREATE"));
		set(o, "create_revision", i64(c->revision));
		return o;
	case ETCD_MOD:
		set(o, "target", json_string("MOD"));
		set(o, "mod_revision", i64(c->revision));
		return o;
	case ETCD_VERSION:
		set(o, "target", json_string("VERSION"));
		set(o, "version", i64(c->revision));
		return o;
	case ETCD_VALUE:
		if (!c->value)
			break;
		set(o, "target", json_string("VALUE"));
		set(o, "value", b64(c->value, strlen(c->value)));
		return o;
	}
	json_decref(o);
	return NULL;
}

static json_t *request_op(const struct etcd_op *op)
{
	json_t *inner = NULL, *o;
	const char *name = NULL;

	switch (op->kind) {
	case ETCD_OP_PUT:
		name = "request_put";
		inner = put_object(op->key, op->value, op->lease_id);
		break;
	case ETCD_OP_DELETE:
		name = "request_delete_range";
		inner = key_object(op->key, op->prefix);
		break;
	case ETCD_OP_RANGE:
		name = "request_range";
		inner = key_object(op->key, op->prefix);
		break;
	}
	if (!inner)
		return NULL;
	o = new_object();
	set(o, name, inner);
	return o;
}

/* Adds the array @name to @txn; false if an element is invalid. */
static bool add_list(json_t *txn, const char *name, const void *items, size_t n, bool is_cmp)
{
	json_t *a = new_array();

	set(txn, name, a);
	for (size_t i = 0; i < n; i++) {
		json_t *v = is_cmp ? compare((const struct etcd_cmp *)items + i)
				   : request_op((const struct etcd_op *)items + i);

		if (!v)
			return false;
		append(a, v);
	}
	return true;
}

char *etcd_json_txn(const struct etcd_cmp *cmp, size_t n_cmp,
		    const struct etcd_op *success, size_t n_success,
		    const struct etcd_op *failure, size_t n_failure)
{
	json_t *o = new_object();

	if ((n_cmp && !cmp) || (n_success && !success) || (n_failure && !failure) ||
	    !add_list(o, "compare", cmp, n_cmp, true) ||
	    !add_list(o, "success", success, n_success, false) ||
	    !add_list(o, "failure", failure, n_failure, false)) {
		json_decref(o);
		return NULL;
	}
	return dump(o);
}

/* Parsing. */

void etcd_result_clear(struct etcd_result *r)
{
	for (size_t i = 0; i < r->n_kvs; i++) {
		free(r->kvs[i].key);
		free(r->kvs[i].value);
	}
	free(r->kvs);
	*r = (struct etcd_result){ 0 };
}

_printf_(3, 4) static int fail(struct etcd_result *r, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
	r->err = err;
	return err;
}

/* An int64 field: a string of digits or a number; absent (or null) is 0. */
static int get_i64(const json_t *o, const char *k, int64_t *out)
{
	const json_t *v = json_object_get(o, k);
	const char *s;
	char *end;

	*out = 0;
	if (!v || json_is_null(v))
		return 0;
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v))
		return -EPROTO;
	s = json_string_value(v);
	errno = 0;
	long long x = strtoll(s, &end, 10);

	if (!*s || *end || errno)
		return -EPROTO;
	*out = x;
	return 0;
}

/* A bytes field into a string; absent is "". */
static int get_bytes(const json_t *o, const char *k, char **out)
{
	const json_t *v = json_object_get(o, k);

	if (!v || json_is_null(v)) {
		*out = xstrdup("");
		return 0;
	}
	if (!json_is_string(v))
		return -EPROTO;
	return etcd_unb64(json_string_value(v), out, NULL);
}

static int parse_header(const json_t *o, struct etcd_result *r)
{
	const json_t *h = json_object_get(o, "header");

	if (!h)
		return 0;
	if (!json_is_object(h) || get_i64(h, "revision", &r->revision) < 0)
		return fail(r, -EPROTO, "bad header in etcd's answer");
	return 0;
}

static int parse_kvs(const json_t *o, struct etcd_result *r)
{
	const json_t *a = json_object_get(o, "kvs"), *kv;
	size_t i;

	if (!a)
		return 0;
	if (!json_is_array(a))
		return fail(r, -EPROTO, "kvs is not an array");
	r->kvs = xcalloc(json_array_size(a) + 1, sizeof(*r->kvs));
	json_array_foreach(a, i, kv) {
		struct etcd_kv *k = &r->kvs[r->n_kvs];

		/* Counted before it is filled, so etcd_result_clear() frees a half one. */
		r->n_kvs++;
		if (!json_is_object(kv) || get_bytes(kv, "key", &k->key) < 0 ||
		    get_bytes(kv, "value", &k->value) < 0 ||
		    get_i64(kv, "create_revision", &k->create_revision) < 0 ||
		    get_i64(kv, "mod_revision", &k->mod_revision) < 0 ||
		    get_i64(kv, "version", &k->version) < 0 || get_i64(kv, "lease", &k->lease) < 0)
			return fail(r, -EPROTO, "bad key-value in etcd's answer");
	}
	return 0;
}

/* The error of a gRPC call: @code and @message, from either error shape. */
static int grpc_error(struct etcd_result *r, long http_status, const json_t *doc)
{
	const json_t *e = json_object_get(doc, "error");
	const char *msg = json_string_value(json_object_get(doc, "message"));
	json_int_t code = json_integer_value(json_object_get(doc, "code"));

	if (json_is_object(e)) { /* the keepalive stream's */
		msg = json_string_value(json_object_get(e, "message"));
		code = json_integer_value(json_object_get(e, "grpc_code"));
	} else if (!msg) {
		msg = json_string_value(e);
	}
	if (msg && *msg)
		return fail(r, code == GRPC_NOT_FOUND ? -ENOENT : -EPROTO, "%s", msg);
	return fail(r, -EPROTO, "etcd answered HTTP %ld", http_status);
}

static int parse_txn(const json_t *doc, struct etcd_result *r)
{
	const json_t *ok = json_object_get(doc, "succeeded");
	const json_t *a = json_object_get(doc, "responses"), *resp;
	size_t i;

	if (ok && !json_is_boolean(ok))
		return fail(r, -EPROTO, "bad succeeded in etcd's answer");
	r->succeeded = json_is_true(ok);
	if (a && !json_is_array(a))
		return fail(r, -EPROTO, "bad responses in etcd's answer");
	json_array_foreach(a, i, resp) {
		const json_t *range = json_object_get(resp, "response_range");

		if (range)
			return json_is_object(range) ? parse_kvs(range, r)
						     : fail(r, -EPROTO, "bad response_range");
	}
	return 0;
}

int etcd_parse(enum etcd_call call, long http_status, const char *body, size_t len,
	       struct etcd_result *r)
{
	json_error_t jerr;
	json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	const json_t *res = doc;
	int err = 0;

	if (http_status != 200) {
		err = json_is_object(doc) ? grpc_error(r, http_status, doc)
					  : fail(r, -EPROTO, "etcd answered HTTP %ld", http_status);
		goto out;
	}
	if (!json_is_object(doc)) {
		err = fail(r, -EPROTO, "etcd's answer is not a JSON object: %s",
			   doc ? "another type" : jerr.text);
		goto out;
	}
	if (json_object_get(doc, "error") && !json_is_string(json_object_get(doc, "error"))) {
		err = grpc_error(r, http_status, doc);
		goto out;
	}
	if (call == ETCD_CALL_KEEPALIVE && !json_is_object(res = json_object_get(doc, "result"))) {
		err = fail(r, -EPROTO, "no result in etcd's keepalive answer");
		goto out;
	}
	if ((err = parse_header(res, r)) < 0)
		goto out;
	switch (call) {
	case ETCD_CALL_GRANT:
	case ETCD_CALL_KEEPALIVE:
		if (get_i64(res, "ID", &r->lease_id) < 0 || get_i64(res, "TTL", &r->ttl_s) < 0) {
			err = fail(r, -EPROTO, "bad ID or TTL in etcd's answer");
		} else if (call == ETCD_CALL_GRANT) {
			const char *e = json_string_value(json_object_get(res, "error"));

			if (e && *e)
				err = fail(r, -EPROTO, "%s", e);
			else if (!r->lease_id || r->ttl_s <= 0)
				err = fail(r, -EPROTO, "etcd granted no lease");
		} else if (r->ttl_s <= 0) {
			err = fail(r, -ENOENT, "lease %" PRId64 " not found (TTL %" PRId64 ")",
				   r->lease_id, r->ttl_s);
		}
		break;
	case ETCD_CALL_RANGE:
		err = parse_kvs(res, r);
		break;
	case ETCD_CALL_TXN:
		err = parse_txn(res, r);
		break;
	case ETCD_CALL_REVOKE:
	case ETCD_CALL_PUT:
	case ETCD_CALL_DELETE:
		break;
	}
out:
	json_decref(doc);
	r->err = err;
	return err;
}
