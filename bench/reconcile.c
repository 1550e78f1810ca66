// SPDX-License-Identifier: MIT
/*
 * The overlay's reconcile pass at scale, for bench/peers.sh: loads a
 * cluster file, brings the node's overlay up (wireguard-go as its child,
 * in whatever network namespace this runs in), waits until every peer is
 * configured, then times PASSES passes. overlay_set_conf() runs one pass
 * synchronously; it also re-reads the private key (a reload does), which
 * is timed on its own and reported beside it.
 *
 *   reconcile CLUSTER_FILE NODE [PASSES]
 *
 * Prints "peers=N passes=P median_us=.. p90_us=.. max_us=.. key_us=.."
 * plus the process's own CPU per pass; exits 1 when the overlay does not
 * come up within 30 s.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "child/child.h"
#include "lib/common.h"
#include "lib/loop.h"
#include "lib/mem.h"
#include "lib/wgkey.h"
#include "overlay/overlay.h"

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t cpu_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	struct child_policy pol = { .backoff_max_ms = 1000, .stable_after_ms = 1000 };
	struct conf_diag diag = { 0 };
	struct conf *conf = NULL;
	struct loop *loop = NULL;
	struct child_set *children = NULL;
	struct overlay *ov = NULL;
	const struct overlay_status *st;
	struct child_status cs[8];
	size_t passes = argc > 3 ? (size_t)atoi(argv[3]) : 50, want, n;
	uint64_t *t, t0, c0, deadline, key_us;
	uint8_t key[WG_KEY_LEN], pub[WG_KEY_LEN];
	char why[200];

	if (argc < 3 || passes == 0) {
		fprintf(stderr, "usage: reconcile CLUSTER_FILE NODE [PASSES]\n");
		return 64;
	}
	if (conf_load_file(argv[1], argv[2], &conf, &diag) != 0) {
		fprintf(stderr, "reconcile: %s does not load\n", argv[1]);
		return 78;
	}
	want = conf_self(conf)->kind == CONF_NODE_HUB ? conf->n_nodes - 1 : 1;
	if (loop_new(&loop) < 0 || child_set_new(loop, &pol, &children) < 0 ||
	    overlay_new(loop, children, conf, &ov) < 0) {
		fprintf(stderr, "reconcile: cannot start the overlay\n");
		return 1;
	}
	child_set_start(children);
	st = overlay_status(ov);
	deadline = mono_us() + 30 * 1000000;
	while (st->state == TUNNEL_DOWN || st->n_peers < want) {
		if (mono_us() > deadline) {
			fprintf(stderr, "reconcile: the overlay did not come up: %s\n", st->last_error);
			return 1;
		}
		(void)loop_run_once(loop, 100);
	}
	/* The key as a reload reads it: file, decode, public key check. */
	t0 = mono_us();
	for (int i = 0; i < 20; i++) {
		if (conf_load_private_key(&conf_self(conf)->settings.keys, key, why, sizeof(why)) < 0)
			return 1;
		if (wgkey_public(key, pub) < 0)
			return 1;
	}
	key_us = (mono_us() - t0) / 20;
	explicit_zero(key, sizeof(key));
	t = xcalloc(passes, sizeof(*t));
	c0 = cpu_us();
	for (size_t i = 0; i < passes; i++) {
		t0 = mono_us();
		overlay_set_conf(ov, conf);
		t[i] = mono_us() - t0;
	}
	c0 = cpu_us() - c0;
	qsort(t, passes, sizeof(*t), cmp_u64);
	printf("peers=%zu passes=%zu median_us=%llu p90_us=%llu max_us=%llu key_us=%llu own_cpu_us_per_pass=%llu backend=%s state=%s\n",
	       st->n_peers, passes, (unsigned long long)t[passes / 2],
	       (unsigned long long)t[passes * 9 / 10], (unsigned long long)t[passes - 1],
	       (unsigned long long)key_us, (unsigned long long)(c0 / passes), st->backend,
	       tunnel_state_name(st->state));
	n = child_set_status(children, cs, ARRAY_SIZE(cs));
	for (size_t i = 0; i < n; i++)
		if (cs[i].pid > 0)
			kill(cs[i].pid, SIGTERM);
	free(t);
	overlay_free(ov);
	child_set_free(children);
	loop_free(loop);
	conf_free(conf);
	return 0;
}
