// SPDX-License-Identifier: MIT
/*
 * `supervisor ctl ha|switchover|failover`: the store's view as a table, and
 * the two requests followed to their end. The daemon answers a request
 * once it is written to the store; the nodes concerned carry it out, so
 * the client asks `ha` twice a second until the new primary runs and the
 * others follow it (exit 0), the request was dropped (exit 2: the old
 * primary stays), or 120 s pass (exit 3: still going, see `ctl ha`).
 */
#include "cli/ctl_internal.h"
#include "lib/health.h"
#include "lib/loop.h"
#include "lib/mem.h"
#include "lib/unixsock.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

#define FOLLOW_MS 120000

static const char *s_or(const json_t *o, const char *k, const char *dflt)
{
	const char *v = json_string_value(json_object_get(o, k));

	return v ? v : dflt;
}

static void print_candidates(const json_t *cands)
{
	size_t i;
	json_t *c;

	json_array_foreach(cands, i, c) {
		const json_t *lag = json_object_get(c, "lag_bytes");
		char l[32] = "?";

		if (json_is_integer(lag))
			snprintf(l, sizeof(l), "%lld", (long long)json_integer_value(lag));
		printf("  %-12s %-14s lag %-10s %s%s\n", s_or(c, "name", "?"), s_or(c, "lsn", "-"), l,
		       json_is_true(json_object_get(c, "eligible")) ? "eligible" : "not eligible: ",
		       s_or(c, "why_not", ""));
	}
}

void print_ha(json_t *reply)
{
	const json_t *ha = json_object_get(reply, "ha"), *members = json_object_get(ha, "members");
	const json_t *lease = json_object_get(ha, "lease_remaining_s"), *m, *h;
	const char *name;
	char when[32];
	size_t i;

	if (!strcmp(s_or(ha, "mode", "off"), "off")) {
		printf("high availability is off on this node (ha.mode in the cluster file)\n");
		return;
	}
	printf("mode %s, this node %s: %s\n", s_or(ha, "mode", "?"), s_or(ha, "state", "?"), s_or(ha, "reason", ""));
	printf("leader %s, epoch %lld%s", s_or(ha, "leader", "none"),
	       (long long)json_integer_value(json_object_get(ha, "epoch")),
	       json_is_true(json_object_get(ha, "is_leader")) ? " (this node)" : "");
	if (json_is_number(lease))
		printf(", this node's lease %.1f s left", json_number_value(lease));
	printf("; store %s\n", json_is_true(json_object_get(json_object_get(ha, "store"), "reachable")) ?
	       "reachable" : "NOT reachable");
	printf("%-12s %-8s %-20s %-4s %-14s %-14s\n", "NODE", "ROLE", "POSTGRES", "TL", "RECEIVE/FLUSH", "REPLAY");
	json_object_foreach((json_t *)members, name, m) {
		const json_t *tl = json_object_get(m, "timeline");
		char t[16] = "-";

		if (json_is_integer(tl))
			snprintf(t, sizeof(t), "%lld", (long long)json_integer_value(tl));
		printf("%-12s %-8s %-20s %-4s %-14s %-14s%s\n", name, s_or(m, "role", "?"), s_or(m, "state", "?"), t,
		       s_or(m, "flush_lsn", s_or(m, "receive_lsn", "-")), s_or(m, "replay_lsn", "-"),
		       json_is_false(json_object_get(m, "failover")) ? "  (failover = false)" : "");
	}
	if (json_array_size(json_object_get(ha, "candidates"))) {
		printf("candidates:\n");
		print_candidates(json_object_get(ha, "candidates"));
	}
	if (json_is_object(json_object_get(ha, "switchover")))
		printf("switchover in progress: %s -> %s\n", s_or(json_object_get(ha, "switchover"), "from", "?"),
		       s_or(json_object_get(ha, "switchover"), "to", "?"));
	if (json_array_size(json_object_get(ha, "history")))
		printf("history:\n");
	json_array_foreach(json_object_get(ha, "history"), i, h) {
		time_t at = (time_t)json_integer_value(json_object_get(h, "at"));
		struct tm tm;

		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&at, &tm));
		printf("  epoch %-6lld %-10s %-12s %s%s%s\n", (long long)json_integer_value(json_object_get(h, "epoch")),
		       s_or(h, "kind", "?"), s_or(h, "node", "?"), when, json_object_get(h, "from") ? " from " : "",
		       s_or(h, "from", ""));
	}
}

void print_ha_request(json_t *reply)
{
	bool failover = !strcmp(s_or(reply, "command", ""), "failover");

	if (json_array_size(json_object_get(reply, "candidates"))) {
		printf("candidates:\n");
		print_candidates(json_object_get(reply, "candidates"));
	}
	if (json_is_true(json_object_get(reply, "dry_run"))) {
		printf("dry run: a switchover now would hand the primary role from %s to %s\n",
		       s_or(reply, "from", "?"), s_or(reply, "to", "?"));
		return;
	}
	if (failover) {
		const json_t *lost = json_object_get(reply, "lost_bytes_bound");

		printf("failover to %s requested (last primary %s); ", s_or(reply, "to", "?"), s_or(reply, "from", "?"));
		if (json_is_integer(lost))
			printf("at most %lld bytes of WAL lost, as of the last primary's report\n",
			       (long long)json_integer_value(lost));
		else
			printf("what may be lost is unknown: the last primary's position was never reported\n");
	} else {
		printf("switchover requested: %s -> %s\n", s_or(reply, "from", "?"), s_or(reply, "to", "?"));
	}
	fflush(stdout);
}

/* Every other member a replica that streams: the cluster follows the new primary. */
static bool all_follow(const json_t *members, const char *leader, char *waiting, size_t size)
{
	const char *name;
	json_t *m;

	waiting[0] = '\0';
	json_object_foreach((json_t *)members, name, m) {
		if (!strcmp(name, leader))
			continue;
		if (strcmp(s_or(m, "role", ""), "replica") != 0 || !json_is_true(json_object_get(m, "streaming"))) {
			snprintf(waiting, size, "%s (%s, %s)", name, s_or(m, "role", "?"), s_or(m, "state", "?"));
			return false;
		}
	}
	return true;
}

int follow_ha_request(const char *path, json_t *request_reply)
{
	const char *to = s_or(request_reply, "to", ""), *from = s_or(request_reply, "from", "");
	uint64_t t0 = now_ms(), promoted_ms = 0;
	char last[200] = "", waiting[160];

	for (;;) {
		_cleanup_free_ char *text = NULL;
		json_t *reply, *ha, *members, *target;
		const char *leader;
		char line[200];

		usleep(500 * 1000);
		if (now_ms() - t0 > FOLLOW_MS) {
			printf("  still not done after %d s: see `supervisor ctl ha`\n", FOLLOW_MS / 1000);
			return HEALTH_UNKNOWN;
		}
		if (unix_request(path, "ha\n", 30, CTL_REPLY_MAX, NULL, &text) < 0 || !(reply = ctl_read_reply(text)))
			continue; /* the daemon may be busy for a moment */
		ha = json_object_get(reply, "ha");
		members = json_object_get(ha, "members");
		target = json_object_get(members, to);
		leader = s_or(ha, "leader", "");
		if (!strcmp(leader, to) && !strcmp(s_or(target, "role", ""), "primary")) {
			if (!promoted_ms) {
				promoted_ms = now_ms();
				printf("  %s is the primary, %.1f s after the request\n", to, (double)(promoted_ms - t0) / 1000);
				fflush(stdout);
			}
			if (all_follow(members, to, waiting, sizeof(waiting))) {
				printf("  every other member streams from %s, %.1f s after the request\n", to,
				       (double)(now_ms() - t0) / 1000);
				json_decref(reply);
				return HEALTH_OK;
			}
			snprintf(line, sizeof(line), "waiting for %s to follow", waiting);
		} else if (from[0] && !strcmp(leader, from) && !json_is_object(json_object_get(ha, "switchover")) &&
			   now_ms() - t0 > 3000) {
			printf("  the switchover was dropped: %s stays the primary (see its log)\n", from);
			json_decref(reply);
			return HEALTH_CRITICAL;
		} else {
			snprintf(line, sizeof(line), "%s", s_or(ha, "reason", ""));
		}
		if (strcmp(line, last) != 0) {
			printf("  %s\n", line);
			fflush(stdout);
			snprintf(last, sizeof(last), "%s", line);
		}
		json_decref(reply);
	}
}
