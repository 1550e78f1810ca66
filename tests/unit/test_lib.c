// SPDX-License-Identifier: MIT
/*
 * lib/: key encoding and derivation, log quoting and line format, helpers,
 * and the service manager's notifications (to a real datagram socket).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/common.h"
#include "lib/health.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/notify.h"
#include "lib/str.h"
#include "lib/wgkey.h"

/* RFC 7748 section 6.1, Alice's key pair, in base64. */
#define RFC_PRIV "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo="
#define RFC_PUB "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="

static void test_wgkey_rfc7748(void **state)
{
	uint8_t priv[WG_KEY_LEN], pub[WG_KEY_LEN];
	char b64[WG_KEY_B64_LEN + 1];

	(void)state;
	assert_true(wgkey_from_base64(RFC_PRIV, priv));
	assert_int_equal(wgkey_public(priv, pub), 0);
	wgkey_to_base64(pub, b64);
	assert_string_equal(b64, RFC_PUB);
}

static void test_wgkey_generate(void **state)
{
	uint8_t a[WG_KEY_LEN], b[WG_KEY_LEN];

	(void)state;
	assert_int_equal(wgkey_generate(a), 0);
	assert_int_equal(wgkey_generate(b), 0);
	assert_memory_not_equal(a, b, WG_KEY_LEN);
	/* clamped like wg genkey */
	assert_int_equal(a[0] & 7, 0);
	assert_int_equal(a[31] & 128, 0);
	assert_int_equal(a[31] & 64, 64);
}

static void test_wgkey_rejects(void **state)
{
	static const char *const bad[] = {
		"",
		"hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo",   /* no padding */
		"hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo==", /* 45 chars */
		"hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTm==",  /* 31 bytes */
		"hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmp=",  /* non-canonical */
		" SDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=",
		"hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo=",  /* url-safe alphabet */
	};
	uint8_t k[WG_KEY_LEN];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (wgkey_from_base64(bad[i], k))
			fail_msg("accepted \"%s\"", bad[i]);
	assert_false(wgkey_from_base64(NULL, k));
}

static void test_log_quote(void **state)
{
	char buf[64];

	(void)state;
	assert_string_equal(log_quote(buf, sizeof(buf), "plain"), "\"plain\"");
	assert_string_equal(log_quote(buf, sizeof(buf), "a \"q\" \\"), "\"a \\\"q\\\" \\\\\"");
	assert_string_equal(log_quote(buf, sizeof(buf), "x\ny=1\x1b"), "\"x\\x0ay=1\\x1b\"");
	assert_string_equal(log_quote(buf, sizeof(buf), NULL), "\"\"");
	assert_string_equal(log_quote(buf, 12, "0123456789abcdef"), "\"012345...\"");
	assert_true(strlen(log_quote(buf, 12, "0123456789abcdef")) < 12);
}

static void test_log_line_format(void **state)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	(void)state;
	log_set_stream(f);
	log_info("conf", "loaded cluster file path=/etc/x nodes=%d", 4);
	log_debug("conf", "hidden at info");
	errno = ENOENT;
	log_warn("child", "cannot exec name=pg");
	log_set_stream(NULL);
	fclose(f);
	assert_non_null(strstr(out, " level=info component=conf msg=\"loaded cluster file\" path=/etc/x nodes=4\n"));
	assert_null(strstr(out, "hidden"));
	assert_non_null(strstr(out, "level=warn component=child msg=\"cannot exec\" name=pg err=\"No such file or directory\"\n"));
	assert_memory_equal(out, "ts=", 3);
	free(out);
}

static void test_edit_distance(void **state)
{
	(void)state;
	assert_int_equal(edit_distance("overlay_ip", "overlay_ip"), 0);
	assert_int_equal(edit_distance("overlay_pi", "overlay_ip"), 2);
	assert_int_equal(edit_distance("port", "ports"), 1);
	assert_int_equal(edit_distance("", "abc"), 3);
}

/* Worse-of is a comparison with unknown worst; a finding raises the level, a note does not. */
static void test_health_report(void **state)
{
	struct health_report r = { 0 };

	(void)state;
	assert_int_equal(health_worse(HEALTH_OK, HEALTH_DEGRADED), HEALTH_DEGRADED);
	assert_int_equal(health_worse(HEALTH_CRITICAL, HEALTH_DEGRADED), HEALTH_CRITICAL);
	assert_int_equal(health_worse(HEALTH_CRITICAL, HEALTH_UNKNOWN), HEALTH_UNKNOWN);
	assert_string_equal(health_name(HEALTH_DEGRADED), "degraded");
	health_add(&r, HEALTH_OK, "backup", "backup: a note %d", 1);
	assert_int_equal(r.level, HEALTH_OK);
	health_add(&r, HEALTH_CRITICAL, "tunnel", "tunnel down: %s", "no key");
	health_add(&r, HEALTH_DEGRADED, "backup", "backup: stale");
	assert_int_equal(r.level, HEALTH_CRITICAL);
	assert_int_equal(r.n_reasons, 3);
	assert_string_equal(r.reasons[1].text, "tunnel down: no key");
	assert_string_equal(r.reasons[1].component, "tunnel");
	assert_int_equal(r.reasons[2].level, HEALTH_DEGRADED);
	health_report_clear(&r);
	assert_int_equal(r.level, HEALTH_OK);
	assert_int_equal(r.n_reasons, 0);
}

/* A socket in the place of systemd's: NOTIFY_SOCKET points at it. */
static int notify_listener(char *path, size_t size)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(path, size, "/tmp/sup-notify-test.%d", (int)getpid());
	unlink(path);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setenv("NOTIFY_SOCKET", path, 1);
	return fd;
}

/* The next message, or "" when none is waiting. */
static const char *next_msg(int fd)
{
	static char buf[1024];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void test_notify_messages(void **state)
{
	struct loop *loop = NULL;
	struct notify *n = NULL;
	unsigned long long usec = 0;
	struct timespec ts;
	char path[108];
	int fd;

	(void)state;
	fd = notify_listener(path, sizeof(path));
	unsetenv("WATCHDOG_USEC");
	assert_int_equal(loop_new(&loop), 0);
	assert_int_equal(notify_new(loop, &n), 0);
	assert_true(notify_enabled(n));
	assert_int_equal(notify_watchdog_ms(n), 0);
	notify_ready(n);
	assert_string_equal(next_msg(fd), "READY=1");
	/* STATUS= only when it changed, one line of it */
	notify_status(n, "ok: tunnel fresh\nsecond line");
	assert_string_equal(next_msg(fd), "STATUS=ok: tunnel fresh");
	notify_status(n, "ok: tunnel fresh");
	assert_string_equal(next_msg(fd), "");
	notify_status(n, "degraded: tunnel stale");
	assert_string_equal(next_msg(fd), "STATUS=degraded: tunnel stale");
	/* RELOADING=1 carries the monotonic clock (systemd >= 253 checks it) */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	notify_reloading(n);
	assert_int_equal(sscanf(next_msg(fd), "RELOADING=1\nMONOTONIC_USEC=%llu", &usec), 1);
	assert_true(usec >= (unsigned long long)ts.tv_sec * 1000000 + (unsigned long long)ts.tv_nsec / 1000);
	assert_true(usec < (unsigned long long)ts.tv_sec * 1000000 + 5000000);
	notify_stopping(n);
	assert_string_equal(next_msg(fd), "STOPPING=1");
	/* children must not inherit the socket or the watchdog */
	assert_true(notify_env_var("NOTIFY_SOCKET=/run/systemd/notify"));
	assert_true(notify_env_var("WATCHDOG_USEC=30000000"));
	assert_true(notify_env_var("WATCHDOG_PID=1"));
	assert_false(notify_env_var("NOTIFY_SOCKETS=x"));
	assert_false(notify_env_var("PATH=/bin"));
	notify_free(n);
	loop_free(loop);
	close(fd);
	unlink(path);
}

/* WatchdogSec=: WATCHDOG=1 from a loop timer at half the interval; only for our own pid. */
static void test_notify_watchdog(void **state)
{
	struct loop *loop = NULL;
	struct notify *n = NULL;
	char path[108], pid[16];
	int fd, pings = 0;
	uint64_t start;

	(void)state;
	fd = notify_listener(path, sizeof(path));
	setenv("WATCHDOG_USEC", "40000", 1);
	snprintf(pid, sizeof(pid), "%d", (int)getpid() + 1);
	setenv("WATCHDOG_PID", pid, 1); /* someone else's watchdog */
	assert_int_equal(loop_new(&loop), 0);
	assert_int_equal(notify_new(loop, &n), 0);
	assert_int_equal(notify_watchdog_ms(n), 0);
	notify_free(n);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	assert_int_equal(notify_new(loop, &n), 0);
	assert_int_equal(notify_watchdog_ms(n), 20);
	/* three pings, not sooner than three intervals (a loaded machine may be later) */
	start = now_ms();
	while (pings < 3 && now_ms() - start < 5000) {
		(void)loop_run_once(loop, 100);
		while (!strcmp(next_msg(fd), "WATCHDOG=1"))
			pings++;
	}
	assert_true(pings >= 3);
	assert_true(now_ms() - start >= 3 * 20 - 2);
	notify_free(n);
	/* no NOTIFY_SOCKET (a container, the lab): nothing at all */
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(notify_new(loop, &n), 0);
	assert_false(notify_enabled(n));
	assert_int_equal(notify_watchdog_ms(n), 0);
	notify_ready(n);
	notify_status(n, "ok");
	assert_string_equal(next_msg(fd), "");
	notify_free(n);
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	loop_free(loop);
	close(fd);
	unlink(path);
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wgkey_rfc7748),
		cmocka_unit_test(test_wgkey_generate),
		cmocka_unit_test(test_wgkey_rejects),
		cmocka_unit_test(test_log_quote),
		cmocka_unit_test(test_log_line_format),
		cmocka_unit_test(test_edit_distance),
		cmocka_unit_test(test_health_report),
		cmocka_unit_test(test_notify_messages),
		cmocka_unit_test(test_notify_watchdog),
	};

	return cmocka_run_group_tests_name("lib", tests, NULL, NULL);
}
