// SPDX-License-Identifier: MIT
/* ha/etcd_json.c: the gateway's request bodies and answers, without etcd. */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ha/etcd_json.h"

/* @text is the same JSON as @want (key order aside); frees @text. */
static void assert_json(char *text, const char *want)
{
	json_t *a, *b;

	assert_non_null(text);
	a = json_loads(text, 0, NULL);
	b = json_loads(want, 0, NULL);
	assert_non_null(a);
	assert_non_null(b);
	if (!json_equal(a, b))
		fail_msg("got %s\nwant %s", text, want);
	json_decref(a);
	json_decref(b);
	free(text);
}

static int parse(enum etcd_call call, long status, const char *body, struct etcd_result *r)
{
	*r = (struct etcd_result){ 0 };
	return etcd_parse(call, status, body, strlen(body), r);
}

static void test_base64_roundtrip(void **state)
{
	unsigned char all[256];
	const char *texts[] = { "", "a", "ab", "abc", "/service/leader" };
	char *out;
	size_t len;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
		char *b = etcd_b64(texts[i], strlen(texts[i]));

		assert_int_equal(etcd_unb64(b, &out, &len), 0);
		assert_int_equal(len, strlen(texts[i]));
		assert_string_equal(out, texts[i]);
		free(out);
		free(b);
	}
	for (size_t i = 0; i < sizeof(all); i++)
		all[i] = (unsigned char)i;
	char *b = etcd_b64(all, sizeof(all));

	assert_int_equal(etcd_unb64(b, &out, &len), 0);
	assert_int_equal(len, sizeof(all));
	assert_memory_equal(out, all, sizeof(all));
	free(out);
	free(b);

	b = etcd_b64("foo", 3);
	assert_string_equal(b, "Zm9v"); /* the original alphabet, as etcd's */
	free(b);
	b = etcd_b64("\xfb\xff", 2);
	assert_string_equal(b, "+/8=");
	free(b);
	/* Not base64, or not all of it: refused. */
	assert_int_equal(etcd_unb64("Zm9", &out, NULL), -EPROTO);
	assert_int_equal(etcd_unb64("Zm9v!", &out, NULL), -EPROTO);
	assert_int_equal(etcd_unb64("-_8=", &out, NULL), -EPROTO);
	assert_int_equal(etcd_unb64("Zg==Zg==", &out, NULL), -EPROTO);
}

static void test_prefix_end(void **state)
{
	unsigned char out[16];

	(void)state;
	assert_int_equal(etcd_prefix_end("/svc/", out), 5);
	assert_memory_equal(out, "/svc0", 5);
	assert_int_equal(etcd_prefix_end("ab\xff", out), 2);
	assert_memory_equal(out, "ac", 2);
	assert_int_equal(etcd_prefix_end("a\xff\xff", out), 1);
	assert_memory_equal(out, "b", 1);
	/* Nothing to increment: "\0", every key from there on. */
	assert_int_equal(etcd_prefix_end("\xff\xff", out), 1);
	assert_int_equal(out[0], 0);
	assert_int_equal(etcd_prefix_end("", out), 1);
	assert_int_equal(out[0], 0);
}

static void test_requests(void **state)
{
	(void)state;
	assert_json(etcd_json_grant(2), "{\"TTL\":\"2\"}");
	/* Above 2^53: a string, exact. */
	assert_json(etcd_json_lease(7587880000000000001LL), "{\"ID\":\"7587880000000000001\"}");
	assert_json(etcd_json_range("foo", false), "{\"key\":\"Zm9v\"}");
	assert_json(etcd_json_range("foo", true), "{\"key\":\"Zm9v\",\"range_end\":\"Zm9w\"}");
	assert_json(etcd_json_delete("/a/", true), "{\"key\":\"L2Ev\",\"range_end\":\"L2Ew\"}");
	assert_json(etcd_json_put("foo", "bar", 0), "{\"key\":\"Zm9v\",\"value\":\"YmFy\"}");
	assert_json(etcd_json_put("foo", "", -5), "{\"key\":\"Zm9v\",\"value\":\"\",\"lease\":\"-5\"}");
	assert_null(etcd_json_put("foo", NULL, 0));
	assert_null(etcd_json_put(NULL, "bar", 0));
	assert_null(etcd_json_range(NULL, true));
}

static void test_txn_request(void **state)
{
	struct etcd_cmp cmp[] = {
		{ .key = "L", .target = ETCD_CREATE, .result = ETCD_EQUAL, .revision = 0 },
		{ .key = "L", .target = ETCD_VALUE, .result = ETCD_NOT_EQUAL, .value = "me" },
		{ .key = "L", .target = ETCD_MOD, .result = ETCD_LESS, .revision = 9 },
		{ .key = "L", .target = ETCD_VERSION, .result = ETCD_GREATER, .revision = 1 },
	};
	struct etcd_op ok[] = {
		{ .kind = ETCD_OP_PUT, .key = "L", .value = "me", .lease_id = 42 },
		{ .kind = ETCD_OP_DELETE, .key = "d", .prefix = true },
	};
	struct etcd_op ko[] = { { .kind = ETCD_OP_RANGE, .key = "L" } };

	(void)state;
	assert_json(etcd_json_txn(cmp, 4, ok, 2, ko, 1),
		    "{\"compare\":["
		    "{\"key\":\"TA==\",\"target\":\"CREATE\",\"result\":\"EQUAL\",\"create_revision\":\"0\"},"
		    "{\"key\":\"TA==\",\"target\":\"VALUE\",\"result\":\"NOT_EQUAL\",\"value\":\"bWU=\"},"
		    "{\"key\":\"TA==\",\"target\":\"MOD\",\"result\":\"LESS\",\"mod_revision\":\"9\"},"
		    "{\"key\":\"TA==\",\"target\":\"VERSION\",\"result\":\"GREATER\",\"version\":\"1\"}],"
		    "\"success\":["
		    "{\"request_put\":{\"key\":\"TA==\",\"value\":\"bWU=\",\"lease\":\"42\"}},"
		    "{\"request_delete_range\":{\"key\":\"ZA==\",\"range_end\":\"ZQ==\"}}],"
		    "\"failure\":[{\"request_range\":{\"key\":\"TA==\"}}]}");
	assert_json(etcd_json_txn(NULL, 0, NULL, 0, NULL, 0),
		    "{\"compare\":[],\"success\":[],\"failure\":[]}");

	/* A VALUE compare or a put without a value, a NULL key, no such enum value. */
	struct etcd_cmp bad_cmp = { .key = "L", .target = ETCD_VALUE };
	struct etcd_op bad_put = { .kind = ETCD_OP_PUT, .key = "L" };
	struct etcd_op no_key = { .kind = ETCD_OP_RANGE };
	struct etcd_cmp bad_result = { .key = "L", .result = (enum etcd_cmp_result)7 };
	struct etcd_op bad_kind = { .kind = (enum etcd_op_kind)9, .key = "L" };

	assert_null(etcd_json_txn(&bad_cmp, 1, NULL, 0, NULL, 0));
	assert_null(etcd_json_txn(NULL, 0, &bad_put, 1, NULL, 0));
	assert_null(etcd_json_txn(NULL, 0, NULL, 0, &no_key, 1));
	assert_null(etcd_json_txn(&bad_result, 1, NULL, 0, NULL, 0));
	assert_null(etcd_json_txn(NULL, 0, &bad_kind, 1, NULL, 0));
	assert_null(etcd_json_txn(NULL, 1, NULL, 0, NULL, 0));
}

static void test_parse_range(void **state)
{
	struct etcd_result r;

	(void)state;
	assert_int_equal(parse(ETCD_CALL_RANGE, 200,
			       "{\"header\":{\"cluster_id\":\"14841639068965178418\",\"member_id\":\"10276657743932975437\","
			       "\"revision\":\"7\",\"raft_term\":\"2\"},"
			       "\"kvs\":[{\"key\":\"L2Ev\",\"create_revision\":\"4\",\"mod_revision\":\"6\","
			       "\"version\":\"3\",\"value\":\"bWU=\",\"lease\":\"7587880000000000001\"},"
			       "{\"key\":\"L2IK\",\"create_revision\":5,\"mod_revision\":\"5\",\"version\":\"1\"}],"
			       "\"count\":\"2\"}\n", &r), 0);
	assert_int_equal(r.revision, 7);
	assert_int_equal(r.n_kvs, 2);
	assert_string_equal(r.kvs[0].key, "/a/");
	assert_string_equal(r.kvs[0].value, "me");
	assert_int_equal(r.kvs[0].create_revision, 4);
	assert_int_equal(r.kvs[0].mod_revision, 6);
	assert_int_equal(r.kvs[0].version, 3);
	assert_true(r.kvs[0].lease == 7587880000000000001LL);
	/* Numbers too; absent value and lease: "" and 0. */
	assert_string_equal(r.kvs[1].key, "/b\n");
	assert_int_equal(r.kvs[1].create_revision, 5);
	assert_string_equal(r.kvs[1].value, "");
	assert_int_equal(r.kvs[1].lease, 0);
	etcd_result_clear(&r);

	/* Nothing found: no kvs, no count. */
	assert_int_equal(parse(ETCD_CALL_RANGE, 200, "{\"header\":{\"revision\":\"1\"}}", &r), 0);
	assert_int_equal(r.revision, 1);
	assert_int_equal(r.n_kvs, 0);
	assert_null(r.kvs);
	etcd_result_clear(&r);
	/* Even the header absent (revision 0). */
	assert_int_equal(parse(ETCD_CALL_PUT, 200, "{}", &r), 0);
	assert_int_equal(r.revision, 0);
	assert_int_equal(parse(ETCD_CALL_DELETE, 200, "{\"header\":{\"revision\":\"9\"},\"deleted\":\"3\"}", &r), 0);
	assert_int_equal(r.revision, 9);
}

static void test_parse_txn(void **state)
{
	struct etcd_result r;

	(void)state;
	assert_int_equal(parse(ETCD_CALL_TXN, 200,
			       "{\"header\":{\"revision\":\"3\"},\"succeeded\":true,"
			       "\"responses\":[{\"response_put\":{\"header\":{\"revision\":\"3\"}}}]}", &r), 0);
	assert_true(r.succeeded);
	assert_int_equal(r.revision, 3);
	assert_int_equal(r.n_kvs, 0);
	etcd_result_clear(&r);

	/* succeeded false is omitted; the first range's kvs are taken. */
	assert_int_equal(parse(ETCD_CALL_TXN, 200,
			       "{\"header\":{\"revision\":\"3\"},\"responses\":["
			       "{\"response_delete_range\":{\"header\":{}}},"
			       "{\"response_range\":{\"header\":{},\"kvs\":[{\"key\":\"TA==\",\"value\":\"aGU=\","
			       "\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":\"1\",\"lease\":\"8\"}],\"count\":\"1\"}},"
			       "{\"response_range\":{\"kvs\":[{\"key\":\"eA==\"}]}}]}", &r), 0);
	assert_false(r.succeeded);
	assert_int_equal(r.n_kvs, 1);
	assert_string_equal(r.kvs[0].key, "L");
	assert_string_equal(r.kvs[0].value, "he");
	assert_int_equal(r.kvs[0].lease, 8);
	etcd_result_clear(&r);

	assert_int_equal(parse(ETCD_CALL_TXN, 200, "{\"header\":{\"revision\":\"4\"}}", &r), 0);
	assert_false(r.succeeded);
	assert_int_equal(parse(ETCD_CALL_TXN, 200, "{\"succeeded\":\"true\"}", &r), -EPROTO);
	assert_int_equal(parse(ETCD_CALL_TXN, 200, "{\"responses\":{}}", &r), -EPROTO);
}

static void test_parse_leases(void **state)
{
	struct etcd_result r;

	(void)state;
	assert_int_equal(parse(ETCD_CALL_GRANT, 200,
			       "{\"header\":{\"revision\":\"1\"},\"ID\":\"7587880000000000001\",\"TTL\":\"2\"}", &r), 0);
	assert_true(r.lease_id == 7587880000000000001LL);
	assert_int_equal(r.ttl_s, 2);
	assert_int_equal(parse(ETCD_CALL_GRANT, 200, "{\"ID\":\"5\",\"TTL\":\"2\",\"error\":\"no space\"}", &r),
			 -EPROTO);
	assert_string_equal(r.error, "no space");
	assert_int_equal(parse(ETCD_CALL_GRANT, 200, "{\"header\":{}}", &r), -EPROTO);

	assert_int_equal(parse(ETCD_CALL_KEEPALIVE, 200,
			       "{\"result\":{\"header\":{\"revision\":\"5\"},\"ID\":\"123\",\"TTL\":\"2\"}}\n", &r), 0);
	assert_int_equal(r.lease_id, 123);
	assert_int_equal(r.ttl_s, 2);
	assert_int_equal(r.revision, 5);
	/* The lease is gone: TTL absent (0), or negative. */
	assert_int_equal(parse(ETCD_CALL_KEEPALIVE, 200, "{\"result\":{\"header\":{},\"ID\":\"123\"}}", &r),
			 -ENOENT);
	assert_non_null(strstr(r.error, "not found"));
	assert_int_equal(parse(ETCD_CALL_KEEPALIVE, 200, "{\"result\":{\"ID\":\"123\",\"TTL\":\"-1\"}}", &r),
			 -ENOENT);
	assert_int_equal(parse(ETCD_CALL_KEEPALIVE, 200, "{\"ID\":\"123\",\"TTL\":\"2\"}", &r), -EPROTO);
	/* The stream's own error shape, under 200. */
	assert_int_equal(parse(ETCD_CALL_KEEPALIVE, 200,
			       "{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"etcdserver: no leader\","
			       "\"http_status\":\"Service Unavailable\"}}", &r), -EPROTO);
	assert_string_equal(r.error, "etcdserver: no leader");
	assert_int_equal(parse(ETCD_CALL_REVOKE, 200, "{\"header\":{\"revision\":\"6\"}}", &r), 0);
	assert_int_equal(r.revision, 6);
}

static void test_parse_errors(void **state)
{
	struct etcd_result r;

	(void)state;
	/* The gateway's error: message surfaced; gRPC NotFound is -ENOENT. */
	assert_int_equal(parse(ETCD_CALL_REVOKE, 404,
			       "{\"error\":\"etcdserver: requested lease not found\",\"code\":5,"
			       "\"message\":\"etcdserver: requested lease not found\"}", &r), -ENOENT);
	assert_string_equal(r.error, "etcdserver: requested lease not found");
	assert_int_equal(parse(ETCD_CALL_RANGE, 400,
			       "{\"error\":\"etcdserver: key is not provided\",\"code\":3,"
			       "\"message\":\"etcdserver: key is not provided\"}", &r), -EPROTO);
	assert_string_equal(r.error, "etcdserver: key is not provided");
	assert_int_equal(parse(ETCD_CALL_PUT, 503, "upstream down\n", &r), -EPROTO);
	assert_string_equal(r.error, "etcd answered HTTP 503");
	assert_int_equal(parse(ETCD_CALL_PUT, 500, "{\"code\":13}", &r), -EPROTO);
	assert_string_equal(r.error, "etcd answered HTTP 500");

	/* Truncated, garbage, another type, wrong field types: never a crash. */
	const char *bad[] = {
		"", "{", "{\"header\":{\"revision\":\"7\"},\"kvs\":[{\"key\":\"TA==\"", "garbage", "[]", "42",
		"{\"header\":[]}", "{\"header\":{\"revision\":\"7x\"}}", "{\"header\":{\"revision\":\"\"}}",
		"{\"header\":{\"revision\":true}}", "{\"header\":{\"revision\":\"99999999999999999999\"}}",
		"{\"kvs\":{}}", "{\"kvs\":[1]}", "{\"kvs\":[{\"key\":\"!!\"}]}", "{\"kvs\":[{\"key\":5}]}",
		"{\"kvs\":[{\"key\":\"TA==\",\"version\":1.5}]}", "{\"a\":1,\"a\":2}",
		"{\"kvs\":[{\"key\":\"TA==\"},{\"key\":\"TA==\",\"value\":[]}]}",
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (parse(ETCD_CALL_RANGE, 200, bad[i], &r) != -EPROTO)
			fail_msg("accepted: %s", bad[i]);
		assert_true(r.error[0] != '\0');
		etcd_result_clear(&r);
	}
	/* Not NUL-terminated: only @len bytes are read. */
	r = (struct etcd_result){ 0 };
	assert_int_equal(etcd_parse(ETCD_CALL_RANGE, 200, "{}xyz", 2, &r), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64_roundtrip),
		cmocka_unit_test(test_prefix_end),
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_txn_request),
		cmocka_unit_test(test_parse_range),
		cmocka_unit_test(test_parse_txn),
		cmocka_unit_test(test_parse_leases),
		cmocka_unit_test(test_parse_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
