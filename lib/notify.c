// SPDX-License-Identifier: MIT
/*
 * sd_notify(3) for the daemon: a thin layer over libsystemd that keeps the
 * watchdog on the event loop, sends STATUS= only when the text changed,
 * and logs a failing socket once, not at every ping.
 */
#include "lib/notify.h"
#include "lib/log.h"
#include "lib/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

struct notify {
	bool enabled;
	bool failing;             /* the last message could not be sent */
	uint64_t watchdog_ms;     /* 0: no watchdog */
	struct loop_source *watchdog;
	char *status;             /* the last STATUS= sent */
};

static void send_msg(struct notify *n, const char *msg)
{
	int r;

	if (!n || !n->enabled)
		return;
	r = sd_notify(0, msg);
	if (r < 0 && !n->failing)
		log_warnx("notify", "cannot notify the service manager error=\"%s\"", strerror(-r));
	else if (r > 0 && n->failing)
		log_info("notify", "notifying the service manager again");
	n->failing = r < 0;
}

static void on_watchdog(struct loop_source *src, void *data)
{
	(void)src;
	send_msg(data, "WATCHDOG=1");
}

int notify_new(struct loop *loop, struct notify **out)
{
	struct notify *n = xcalloc(1, sizeof(*n));
	const char *sock = getenv("NOTIFY_SOCKET");
	uint64_t usec = 0;
	int r;

	n->enabled = sock && sock[0];
	/* WATCHDOG_PID, when set, must be ours: sd_watchdog_enabled() checks it. */
	if (n->enabled && sd_watchdog_enabled(0, &usec) > 0 && usec) {
		/* Half the interval, as sd_watchdog_enabled(3) advises; at least 1 ms. */
		n->watchdog_ms = usec / 2000 ? usec / 2000 : 1;
		if ((r = loop_add_timer(loop, on_watchdog, n, &n->watchdog)) < 0) {
			notify_free(n);
			return r;
		}
		loop_timer_arm(n->watchdog, n->watchdog_ms, n->watchdog_ms);
	}
	if (n->enabled)
		log_info("notify", "service manager notification on watchdog_ms=%llu",
			 (unsigned long long)n->watchdog_ms);
	*out = n;
	return 0;
}

struct notify *notify_free(struct notify *n)
{
	if (!n)
		return NULL;
	loop_remove(n->watchdog);
	free(n->status);
	free(n);
	return NULL;
}

bool notify_enabled(const struct notify *n)
{
	return n && n->enabled;
}

uint64_t notify_watchdog_ms(const struct notify *n)
{
	return n ? n->watchdog_ms : 0;
}

void notify_ready(struct notify *n)
{
	send_msg(n, "READY=1");
}

void notify_reloading(struct notify *n)
{
	struct timespec ts;
	char msg[64];

	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
	send_msg(n, msg);
}

void notify_stopping(struct notify *n)
{
	send_msg(n, "STOPPING=1");
}

void notify_status(struct notify *n, const char *line)
{
	size_t len = strcspn(line, "\n");
	char *msg;

	if (!notify_enabled(n) || (n->status && strlen(n->status) == len && !strncmp(n->status, line, len)))
		return;
	free(n->status);
	n->status = xasprintf("%.*s", (int)len, line);
	msg = xasprintf("STATUS=%s", n->status);
	send_msg(n, msg);
	free(msg);
}

bool notify_env_var(const char *entry)
{
	static const char *const names[] = { "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID" };

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		size_t len = strlen(names[i]);

		if (!strncmp(entry, names[i], len) && entry[len] == '=')
			return true;
	}
	return false;
}
