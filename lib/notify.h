/* SPDX-License-Identifier: MIT */
/*
 * Telling the service manager how the daemon is doing (sd_notify(3), the
 * protocol of systemd's Type=notify): READY=1 once the node is up,
 * RELOADING=1 and READY=1 around a reload, STOPPING=1 at shutdown, STATUS=
 * with a one-line summary whenever it changes, and WATCHDOG=1 from a loop
 * timer at half of WatchdogSec=, so a loop that hangs is restarted.
 *
 * Everything is a no-op when NOTIFY_SOCKET is unset: containers, the lab,
 * PID 1 on a spoke. The messages go through libsystemd; the socket and the
 * watchdog settings stay in our environment (sd_notify reads them from
 * there), so whoever starts children must leave NOTIFY_SOCKET,
 * WATCHDOG_USEC and WATCHDOG_PID out of theirs (notify_env_var()).
 */
#ifndef SUP_LIB_NOTIFY_H
#define SUP_LIB_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/common.h"
#include "lib/loop.h"

struct notify;

/**
 * notify_new() - connect to the service manager, if there is one.
 * @loop: the event loop (a watchdog timer is added when WatchdogSec= is set).
 * @out: receives the notifier; with no NOTIFY_SOCKET it exists and does nothing.
 *
 * Return: 0 or -errno (only for the loop's own failures).
 */
int notify_new(struct loop *loop, struct notify **out) _must_check_;
struct notify *notify_free(struct notify *n);

/* notify_enabled() - whether messages go anywhere (NOTIFY_SOCKET is set). */
bool notify_enabled(const struct notify *n);
/* notify_watchdog_ms() - the interval WATCHDOG=1 is sent at; 0: no watchdog. */
uint64_t notify_watchdog_ms(const struct notify *n);

/* notify_ready() - READY=1: started, or a reload is done. */
void notify_ready(struct notify *n);
/* notify_reloading() - RELOADING=1 with MONOTONIC_USEC (systemd >= 253 wants it). */
void notify_reloading(struct notify *n);
/* notify_stopping() - STOPPING=1: the orderly shutdown began. */
void notify_stopping(struct notify *n);
/**
 * notify_status() - STATUS=@line, sent only when it differs from the last one.
 * @n: the notifier.
 * @line: one line of text (a newline in it is cut off there); public:
 *        `systemctl status` shows it to anyone.
 */
void notify_status(struct notify *n, const char *line);

/* notify_env_var() - whether "NAME=value" is one of the variables children must not inherit. */
bool notify_env_var(const char *entry);

#endif
