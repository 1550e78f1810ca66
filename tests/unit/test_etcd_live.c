// SPDX-License-Identifier: MIT
/*
 * ha/etcd.c against a real etcd (/usr/bin/etcd, or $ETCD_BIN): one member
 * on loopback, random ports, a throwaway data directory, all of it gone
 * after (the member also dies with us: PR_SET_PDEATHSIG). No etcd binary
 * is a failure, never a skip. About 6 s, most of it a lease expiring.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ha/etcd.h"
#include "lib/loop.h"
#include "lib/mem.h"

#define TIMEOUT_MS 3000

static struct {
	pid_t pid;
	char dir[64];
	char url[64];
	struct loop *loop;
	struct etcd *e;
} t;

/* What a callback saw, copied out of its result. */
struct got {
	bool done;
	int calls;
	int err;
	char error[256];
	int64_t revision, lease_id, ttl_s;
	bool succeeded;
	uint64_t sent_ms, done_ms;
	size_t n_kvs;
	char *key[8], *value[8];
	int64_t lease[8];
};

static void got_reset(struct got *g)
{
	for (size_t i = 0; i < ARRAY_SIZE(g->key); i++) {
		free(g->key[i]);
		free(g->value[i]);
	}
	*g = (struct got){ 0 };
}

static void on_done(void *data, const struct etcd_result *r)
{
	struct got *g = data;

	g->calls++;
	g->done = true;
	g->done_ms = now_ms();
	g->err = r->err;
	snprintf(g->error, sizeof(g->error), "%s", r->error);
	g->revision = r->revision;
	g->lease_id = r->lease_id;
	g->ttl_s = r->ttl_s;
	g->succeeded = r->succeeded;
	g->sent_ms = r->sent_ms;
	g->n_kvs = r->n_kvs;
	for (size_t i = 0; i < r->n_kvs && i < ARRAY_SIZE(g->key); i++) {
		g->key[i] = xstrdup(r->kvs[i].key);
		g->value[i] = xstrdup(r->kvs[i].value);
		g->lease[i] = r->kvs[i].lease;
	}
}

/* Run the loop until @g is done; fail after @max_ms. */
static void wait_for(struct got *g, uint64_t max_ms)
{
	uint64_t end = now_ms() + max_ms;

	while (!g->done && now_ms() < end)
		loop_run_once(t.loop, (int)(end - now_ms()));
	if (!g->done)
		fail_msg("no answer within %" PRIu64 " ms", max_ms);
}

/* Start @call (an etcd_*() call with g as its data), wait for its result. */
#define SYNC(g, call)                                  \
	do {                                           \
		got_reset(g);                          \
		assert_int_equal((call), 0);           \
		wait_for(g, TIMEOUT_MS + 1000);        \
	} while (0)

#define assert_ok(g)                                                   \
	do {                                                           \
		if ((g)->err)                                          \
			fail_msg("etcd: %d %s", (g)->err, (g)->error); \
	} while (0)

static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		return -1;
	close(fd);
	return ntohs(a.sin_port);
}

static void show_log(void)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "tail -n 20 '%s/etcd.log' | sed 's/^/# /' >&2", t.dir);
	(void)!system(cmd);
}

static void stop_etcd(void)
{
	if (t.pid > 0) {
		kill(t.pid, SIGKILL);
		waitpid(t.pid, NULL, 0);
		t.pid = 0;
	}
}

static int teardown(void **state)
{
	(void)state;
	etcd_free(t.e);
	t.e = NULL;
	stop_etcd();
	if (t.dir[0]) {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t.dir);
		(void)!system(cmd);
		t.dir[0] = '\0';
	}
	loop_free(t.loop);
	t.loop = NULL;
	return 0;
}

static int start(void)
{
	const char *bin = getenv("ETCD_BIN") ? getenv("ETCD_BIN") : "/usr/bin/etcd";
	int client = free_port(), peer = free_port();
	char data[96], listen_client[64], peer_url[64], cluster[96], log[96];
	struct got g = { 0 };
	uint64_t end;

	if (access(bin, X_OK) != 0) {
		fprintf(stderr, "# FAIL: %s is missing: apt-get install etcd-server (scripts/setup)\n", bin);
		return -1;
	}
	if (client < 0 || peer < 0 || client == peer)
		return -1;
	snprintf(t.dir, sizeof(t.dir), "/tmp/etcd-test.XXXXXX");
	if (!mkdtemp(t.dir)) {
		t.dir[0] = '\0';
		return -1;
	}
	snprintf(data, sizeof(data), "%s/data", t.dir);
	snprintf(log, sizeof(log), "%s/etcd.log", t.dir);
	snprintf(t.url, sizeof(t.url), "http://127.0.0.1:%d", client);
	snprintf(listen_client, sizeof(listen_client), "http://127.0.0.1:%d", client);
	snprintf(peer_url, sizeof(peer_url), "http://127.0.0.1:%d", peer);
	snprintf(cluster, sizeof(cluster), "default=%s", peer_url);
	t.pid = fork();
	if (t.pid < 0)
		return -1;
	if (t.pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		prctl(PR_SET_PDEATHSIG, SIGKILL); /* a crashed test leaves no etcd behind */
		dup2(fd, 1);
		dup2(fd, 2);
		execl(bin, bin, "--name", "default", "--data-dir", data,
		      "--listen-client-urls", listen_client, "--advertise-client-urls", listen_client,
		      "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
		      "--initial-cluster", cluster, "--heartbeat-interval", "50",
		      "--election-timeout", "500", (char *)NULL);
		_exit(127);
	}
	if (loop_new(&t.loop) < 0 || etcd_new(t.loop, t.url, TIMEOUT_MS, &t.e) < 0)
		return -1;
	/* Up when a linearizable read answers (it needs a raft leader). */
	end = now_ms() + 15000;
	for (;;) {
		got_reset(&g);
		if (etcd_range(t.e, "/ready", false, on_done, &g) < 0)
			return -1;
		while (!g.done)
			loop_run_once(t.loop, 100);
		if (!g.err)
			break;
		if (waitpid(t.pid, NULL, WNOHANG) == t.pid || now_ms() > end) {
			t.pid = 0;
			fprintf(stderr, "# FAIL: etcd did not come up: %s\n", g.error);
			show_log();
			return -1;
		}
		usleep(50 * 1000);
	}
	got_reset(&g);
	return 0;
}

/* cmocka runs no group teardown after a failed setup: clean up here. */
static int setup(void **state)
{
	if (start() == 0)
		return 0;
	teardown(state);
	return -1;
}

static int64_t lease; /* granted by test_leader_key, left to expire by test_lease_expiry */

static void test_leader_key(void **state)
{
	struct got g = { 0 };
	uint64_t before = now_ms();

	(void)state;
	SYNC(&g, etcd_lease_grant(t.e, 2, on_done, &g));
	assert_ok(&g);
	assert_int_equal(g.ttl_s, 2);
	assert_true(g.lease_id != 0);
	assert_in_range(g.sent_ms, before, g.done_ms);
	lease = g.lease_id;

	SYNC(&g, etcd_lease_keepalive(t.e, lease, on_done, &g));
	assert_ok(&g);
	assert_true(g.lease_id == lease);
	assert_int_equal(g.ttl_s, 2);

	SYNC(&g, etcd_put(t.e, "/svc/status/me", "running", lease, on_done, &g));
	assert_ok(&g);
	assert_true(g.revision > 1);
	SYNC(&g, etcd_range(t.e, "/svc/status/", true, on_done, &g));
	assert_ok(&g);
	assert_int_equal(g.n_kvs, 1);
	assert_string_equal(g.key[0], "/svc/status/me");
	assert_string_equal(g.value[0], "running");
	assert_true(g.lease[0] == lease);

	/* Take the leader key if nobody holds it; else read who does. */
	struct etcd_cmp absent = { .key = "/svc/leader", .target = ETCD_CREATE, .result = ETCD_EQUAL };
	struct etcd_op take = { .kind = ETCD_OP_PUT, .key = "/svc/leader", .value = "me", .lease_id = lease };
	struct etcd_op read = { .kind = ETCD_OP_RANGE, .key = "/svc/leader" };

	SYNC(&g, etcd_txn(t.e, &absent, 1, &take, 1, &read, 1, on_done, &g));
	assert_ok(&g);
	assert_true(g.succeeded);
	assert_int_equal(g.n_kvs, 0);
	take.value = "other";
	SYNC(&g, etcd_txn(t.e, &absent, 1, &take, 1, &read, 1, on_done, &g));
	assert_ok(&g);
	assert_false(g.succeeded);
	assert_int_equal(g.n_kvs, 1);
	assert_string_equal(g.value[0], "me");
	assert_true(g.lease[0] == lease);

	/* Renew as the holder: VALUE == me; a stranger's compare fails. */
	struct etcd_cmp mine = { .key = "/svc/leader", .target = ETCD_VALUE, .result = ETCD_EQUAL, .value = "me" };
	struct etcd_op renew = { .kind = ETCD_OP_PUT, .key = "/svc/leader", .value = "me", .lease_id = lease };

	SYNC(&g, etcd_txn(t.e, &mine, 1, &renew, 1, NULL, 0, on_done, &g));
	assert_ok(&g);
	assert_true(g.succeeded);
	mine.value = "other";
	SYNC(&g, etcd_txn(t.e, &mine, 1, &renew, 1, NULL, 0, on_done, &g));
	assert_ok(&g);
	assert_false(g.succeeded);
	SYNC(&g, etcd_range(t.e, "/svc/leader", false, on_done, &g));
	assert_int_equal(g.n_kvs, 1);
	assert_string_equal(g.value[0], "me");
	got_reset(&g);
}

static void test_lease_expiry(void **state)
{
	struct got g = { 0 };
	uint64_t last;

	(void)state;
	assert_true(lease != 0);
	SYNC(&g, etcd_lease_keepalive(t.e, lease, on_done, &g));
	assert_ok(&g);
	last = g.sent_ms;
	/* No keepalive any more: gone after its TTL (etcd checks every 500 ms). */
	got_reset(&g);
	while (now_ms() < last + 2000 + 1200)
		loop_run_once(t.loop, 100);
	for (int i = 0; i < 20; i++) {
		SYNC(&g, etcd_range(t.e, "/svc/", true, on_done, &g));
		assert_ok(&g);
		if (g.n_kvs == 0)
			break;
		usleep(100 * 1000);
	}
	assert_int_equal(g.n_kvs, 0);
	SYNC(&g, etcd_lease_keepalive(t.e, lease, on_done, &g));
	assert_int_equal(g.err, -ENOENT);
	SYNC(&g, etcd_lease_revoke(t.e, lease, on_done, &g));
	assert_int_equal(g.err, -ENOENT);
	assert_non_null(strstr(g.error, "lease not found"));
	/* A put naming the dead lease: etcd's NotFound. */
	SYNC(&g, etcd_put(t.e, "/svc/leader", "me", lease, on_done, &g));
	assert_int_equal(g.err, -ENOENT);
	/* Revoking a live lease takes its keys with it. */
	SYNC(&g, etcd_lease_grant(t.e, 30, on_done, &g));
	assert_ok(&g);
	lease = g.lease_id;
	SYNC(&g, etcd_put(t.e, "/svc/leader", "me", lease, on_done, &g));
	assert_ok(&g);
	SYNC(&g, etcd_lease_revoke(t.e, lease, on_done, &g));
	assert_ok(&g);
	SYNC(&g, etcd_range(t.e, "/svc/leader", false, on_done, &g));
	assert_int_equal(g.n_kvs, 0);
	got_reset(&g);
}

static void test_delete_prefix(void **state)
{
	const char *keys[] = { "/d/a", "/d/b/c", "/e" };
	struct got g = { 0 };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		SYNC(&g, etcd_put(t.e, keys[i], "x", 0, on_done, &g));
		assert_ok(&g);
	}
	SYNC(&g, etcd_delete(t.e, "/d/", true, on_done, &g));
	assert_ok(&g);
	SYNC(&g, etcd_range(t.e, "/d/", true, on_done, &g));
	assert_int_equal(g.n_kvs, 0);
	SYNC(&g, etcd_range(t.e, "/", true, on_done, &g));
	assert_int_equal(g.n_kvs, 1);
	assert_string_equal(g.key[0], "/e");
	SYNC(&g, etcd_delete(t.e, "/e", false, on_done, &g));
	assert_ok(&g);
	got_reset(&g);
}

static void test_many_in_flight(void **state)
{
	struct got g[40] = { 0 };
	char key[32];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(g); i++) {
		snprintf(key, sizeof(key), "/many/%02zu", i);
		assert_int_equal(etcd_put(t.e, key, key, 0, on_done, &g[i]), 0);
	}
	assert_int_equal(etcd_in_flight(t.e), ARRAY_SIZE(g));
	for (size_t i = 0; i < ARRAY_SIZE(g); i++) {
		wait_for(&g[i], TIMEOUT_MS);
		assert_ok(&g[i]);
		assert_int_equal(g[i].calls, 1);
	}
	assert_int_equal(etcd_in_flight(t.e), 0);
	SYNC(&g[0], etcd_range(t.e, "/many/", true, on_done, &g[0]));
	assert_int_equal(g[0].n_kvs, ARRAY_SIZE(g));

	/* Cancelled: no callback ever. */
	for (size_t i = 0; i < 5; i++) {
		got_reset(&g[i]);
		assert_int_equal(etcd_range(t.e, "/many/", true, on_done, &g[i]), 0);
	}
	etcd_cancel_all(t.e);
	assert_int_equal(etcd_in_flight(t.e), 0);
	for (int i = 0; i < 5; i++)
		loop_run_once(t.loop, 50);
	for (size_t i = 0; i < 5; i++)
		assert_false(g[i].done);
	SYNC(&g[0], etcd_delete(t.e, "/many/", true, on_done, &g[0]));
	assert_ok(&g[0]);
	for (size_t i = 0; i < ARRAY_SIZE(g); i++)
		got_reset(&g[i]);
}

/* Frees the client from its own callback, with another request in flight. */
static void free_in_callback(void *data, const struct etcd_result *r)
{
	struct etcd **e = data;

	assert_int_equal(r->err, 0);
	*e = etcd_free(*e);
}

static void test_free_in_callback(void **state)
{
	struct etcd *e;
	struct got other = { 0 };
	uint64_t end = now_ms() + TIMEOUT_MS;

	(void)state;
	assert_int_equal(etcd_new(t.loop, t.url, TIMEOUT_MS, &e), 0);
	assert_int_equal(etcd_range(e, "/x", false, free_in_callback, &e), 0);
	assert_int_equal(etcd_range(e, "/y", false, on_done, &other), 0);
	while (e && now_ms() < end)
		loop_run_once(t.loop, 100);
	assert_null(e);
	for (int i = 0; i < 5; i++)
		loop_run_once(t.loop, 20);
	/* The other one may have finished first (then it was called back), or not at all. */
	assert_in_range(other.calls, 0, 1);
}

static void test_big_answer(void **state)
{
	size_t n = 900 * 1000; /* base64: 1.2 MB, over the 1 MiB cap; etcd takes 1.5 MiB requests */
	_cleanup_free_ char *big = xmalloc(n + 1);
	struct got g = { 0 };

	(void)state;
	memset(big, 'v', n);
	big[n] = '\0';
	SYNC(&g, etcd_put(t.e, "/big", big, 0, on_done, &g));
	assert_ok(&g);
	SYNC(&g, etcd_range(t.e, "/big", false, on_done, &g));
	assert_int_equal(g.err, -EPROTO);
	assert_non_null(strstr(g.error, "over"));
	SYNC(&g, etcd_delete(t.e, "/big", false, on_done, &g));
	assert_ok(&g);
	got_reset(&g);
}

static void test_refused(void **state)
{
	char url[64];
	struct etcd *e;
	struct got g = { 0 };

	(void)state;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", free_port());
	assert_int_equal(etcd_new(t.loop, url, TIMEOUT_MS, &e), 0);
	SYNC(&g, etcd_lease_keepalive(e, 1, on_done, &g));
	assert_int_equal(g.err, -ECONNREFUSED);
	assert_true(g.done_ms - g.sent_ms < 500);
	assert_true(g.error[0] != '\0');
	etcd_free(e);
	got_reset(&g);
}

static void test_timeout(void **state)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char url[64];
	struct etcd *e;
	struct got g = { 0 };

	(void)state;
	/* Listening, never answering: the kernel accepts the connection, nobody reads. */
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(a.sin_port));
	assert_int_equal(etcd_new(t.loop, url, 300, &e), 0);
	SYNC(&g, etcd_range(e, "/x", false, on_done, &g));
	assert_int_equal(g.err, -ETIMEDOUT);
	assert_in_range(g.done_ms - g.sent_ms, 250, 1000);
	etcd_free(e);
	close(fd);
	got_reset(&g);
}

/* Last: etcd frozen with a request in it, then killed. An error, quickly; no hang. */
static void test_etcd_killed(void **state)
{
	struct got g = { 0 };
	uint64_t start;

	(void)state;
	assert_int_equal(kill(t.pid, SIGSTOP), 0);
	assert_int_equal(etcd_range(t.e, "/x", false, on_done, &g), 0);
	for (int i = 0; i < 3; i++)
		loop_run_once(t.loop, 50);
	assert_false(g.done);
	start = now_ms();
	stop_etcd();
	wait_for(&g, 2000);
	/*
	 * Reset; or, as nothing came back on a reused connection, libcurl sent
	 * it again on a fresh one, which was refused.
	 */
	assert_true(g.err == -ECONNRESET || g.err == -ECONNREFUSED);
	assert_true(g.done_ms - start < 1000);
	fprintf(stderr, "# killed mid-request: %d %s\n", g.err, g.error);
	/* And after: refused, at once. */
	SYNC(&g, etcd_range(t.e, "/x", false, on_done, &g));
	assert_int_equal(g.err, -ECONNREFUSED);
	got_reset(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_leader_key),
		cmocka_unit_test(test_lease_expiry),
		cmocka_unit_test(test_delete_prefix),
		cmocka_unit_test(test_many_in_flight),
		cmocka_unit_test(test_free_in_callback),
		cmocka_unit_test(test_big_answer),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_etcd_killed),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
