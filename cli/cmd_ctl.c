// SPDX-License-Identifier: MIT
/*
 * `supervisor ctl`: send one request line to the daemon's control socket,
 * print its reply as a table (or raw with --json), and exit with the
 * Nagios-style health the reply carries: 0 ok, 1 degraded, 2 critical,
 * 3 unknown (also: the daemon could not be asked).
 */
#include "cli/ctl_internal.h"
#include "lib/common.h"
#include "lib/health.h"
#include "lib/loop.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "lib/unixsock.h"
#include "pgwatch/pgwatch.h" /* pg_clone_text() */
#include "supervisor/supervisor.h"

#include <errno.h>
#include <math.h>
#include <getopt.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REPLY_MAX CTL_REPLY_MAX

static const char *socket_path(const char *opt_socket, const char *conf_path, const char *node)
{
	static char path[108];
	struct conf_diag diag = { 0 };
	struct conf *c = NULL;

	if (opt_socket)
		return opt_socket;
	/* The cluster file says where the socket is; a broken file is not our business here. */
	if (conf_load_file(conf_path, node, &c, &diag) == 0) {
		snprintf(path, sizeof(path), "%s", conf_self(c)->settings.control_socket);
		conf_free(c);
		return path;
	}
	conf_diag_clear(&diag);
	return "/run/supervisor/ctl.sock";
}

/*
 * The daemon's reply, or NULL after saying why on stderr: not a JSON
 * object, or another version of the control protocol (a daemon from
 * another build), whose fields this client would misread.
 */
json_t *ctl_read_reply(const char *text)
{
	json_error_t jerr;
	json_t *reply = json_loads(text, 0, &jerr), *v;
	char theirs[32] = "none";

	if (!reply || !json_is_object(reply)) {
		fprintf(stderr, "supervisor ctl: the daemon sent no valid JSON: %s\n", jerr.text);
		json_decref(reply);
		return NULL;
	}
	v = json_object_get(reply, "v");
	if (json_is_integer(v) && json_integer_value(v) == CONTROL_PROTOCOL_VERSION)
		return reply;
	if (json_is_integer(v))
		snprintf(theirs, sizeof(theirs), "%lld", (long long)json_integer_value(v));
	fprintf(stderr, "supervisor ctl: the daemon speaks control protocol version %s, this client %d "
		"(use the ctl of the running supervisor's build)\n", theirs, CONTROL_PROTOCOL_VERSION);
	json_decref(reply);
	return NULL;
}

static void print_reasons(json_t *reply)
{
	json_t *r = json_object_get(reply, "reasons");
	size_t i;
	json_t *v;

	json_array_foreach(r, i, v)
		printf("  - %s\n", json_string_value(v));
}

static void print_status(json_t *reply)
{
	json_t *children = json_object_get(reply, "children"), *c;
	char up[32];
	size_t i;

	fmt_duration(json_integer_value(json_object_get(reply, "uptime_s")), up, sizeof(up));
	printf("node %s (%s), pid %lld%s, up %s, overall %s\n",
	       json_string_value(json_object_get(reply, "node")),
	       json_string_value(json_object_get(reply, "role")),
	       (long long)json_integer_value(json_object_get(reply, "pid")),
	       json_is_true(json_object_get(reply, "pid1")) ? " (PID 1)" : "", up,
	       json_string_value(json_object_get(reply, "overall")));
	print_reasons(reply);
	{
		json_t *t = json_object_get(reply, "tunnel");

		printf("tunnel %s (%lld/%lld peers fresh)\n",
		       json_string_value(json_object_get(t, "state")),
		       (long long)json_integer_value(json_object_get(t, "fresh_peer_count")),
		       (long long)json_integer_value(json_object_get(t, "peer_count")));
	}
	if (!json_array_size(children)) {
		printf("no supervised children\n");
		return;
	}
	printf("%-16s %-9s %7s %8s  %-13s %-8s %s\n", "CHILD", "STATE", "PID", "RESTARTS",
	       "LAST EXIT", "FOR", "NOTE");
	json_array_foreach(children, i, c) {
		json_t *ex = json_object_get(c, "last_exit");
		const char *err = json_string_value(json_object_get(c, "last_error"));
		char last[32] = "-", pid[16] = "-", dur[32], note[320] = "";

		if (json_object_get(ex, "code"))
			snprintf(last, sizeof(last), "exit %lld",
				 (long long)json_integer_value(json_object_get(ex, "code")));
		else if (json_object_get(ex, "signal"))
			snprintf(last, sizeof(last), "%s",
				 json_string_value(json_object_get(ex, "signal_name")) ?
				 json_string_value(json_object_get(ex, "signal_name")) : "signal");
		if (json_integer_value(json_object_get(c, "pid")))
			snprintf(pid, sizeof(pid), "%lld",
				 (long long)json_integer_value(json_object_get(c, "pid")));
		fmt_duration(json_integer_value(json_object_get(c, "state_for_s")), dur, sizeof(dur));
		if (json_object_get(c, "restart_in_s"))
			snprintf(note, sizeof(note), "restart in %llds%s",
				 (long long)json_integer_value(json_object_get(c, "restart_in_s")),
				 err ? "; " : "");
		if (err)
			snprintf(note + strlen(note), sizeof(note) - strlen(note), "%s", err);
		printf("%-16s %-9s %7s %8lld  %-13s %-8s %s\n",
		       json_string_value(json_object_get(c, "name")),
		       json_string_value(json_object_get(c, "state")), pid,
		       (long long)json_integer_value(json_object_get(c, "restarts")), last, dur, note);
	}
}

static void print_reload(json_t *reply)
{
	json_t *errors = json_object_get(reply, "errors"), *e;
	size_t i;

	if (json_is_true(json_object_get(reply, "ok"))) {
		printf("configuration reloaded\n");
		return;
	}
	fprintf(stderr, "%s\n", json_string_value(json_object_get(reply, "error")));
	json_array_foreach(errors, i, e)
		fprintf(stderr, "%s\n", json_string_value(e));
}

static void print_age(json_t *age, char *buf, size_t size)
{
	if (json_is_integer(age))
		fmt_duration(json_integer_value(age), buf, size);
	else
		snprintf(buf, size, "never");
}

static void print_tunnel(json_t *reply)
{
	json_t *t = json_object_get(reply, "tunnel"), *peers = json_object_get(t, "peers"), *p;
	const char *err = json_string_value(json_object_get(t, "last_error"));
	size_t i;

	printf("%s on %s (%s): %s, %lld/%lld peers fresh, repairs %lld, re-arms %lld\n",
	       json_string_value(json_object_get(reply, "node")),
	       json_string_value(json_object_get(t, "interface")),
	       json_string_value(json_object_get(t, "backend")),
	       json_string_value(json_object_get(t, "state")),
	       (long long)json_integer_value(json_object_get(t, "fresh_peer_count")),
	       (long long)json_integer_value(json_object_get(t, "peer_count")),
	       (long long)json_integer_value(json_object_get(t, "repairs")),
	       (long long)json_integer_value(json_object_get(t, "rearms")));
	/* On the hub, another firewall dropping wg0 to wg0 is a reason too. */
	print_reasons(reply);
	if (err && json_array_size(json_object_get(reply, "reasons")) == 0)
		printf("  - %s\n", err);
	if (json_is_integer(json_object_get(json_object_get(t, "mtu"), "value"))) {
		json_t *m = json_object_get(t, "mtu"), *path = json_object_get(m, "path");
		char pm[24] = "unknown";

		if (json_is_integer(path))
			snprintf(pm, sizeof(pm), "%lld", (long long)json_integer_value(path));
		printf("  mtu %lld (%s; path %s)\n", (long long)json_integer_value(json_object_get(m, "value")),
		       json_is_true(json_object_get(m, "auto")) ? "auto" : "cluster.mtu", pm);
	}
	{
		json_t *ep = json_object_get(t, "hub_endpoint");
		const char *host = json_string_value(json_object_get(ep, "host"));
		const char *addr = json_string_value(json_object_get(ep, "address"));
		const char *eperr = json_string_value(json_object_get(ep, "error"));
		char when[40] = "";

		if (json_is_integer(json_object_get(ep, "resolved_at"))) {
			char d[32];

			snprintf(when, sizeof(when), ", resolved %s ago",
				 fmt_duration((long long)(time(NULL) -
					      json_integer_value(json_object_get(ep, "resolved_at"))), d, sizeof(d)));
		}
		if (host)
			printf("  hub endpoint %s -> %s%s%s%s\n", host, addr ? addr : "(not resolved yet)",
			       when, eperr ? "; last lookup: " : "", eperr ? eperr : "");
	}
	printf("%-12s %-12s %-22s %-11s %-10s %12s %12s\n", "PEER", "OVERLAY IP", "ENDPOINT",
	       "STATE", "HANDSHAKE", "RX", "TX");
	json_array_foreach(peers, i, p) {
		char age[32];
		const char *ep = json_string_value(json_object_get(p, "endpoint"));

		print_age(json_object_get(p, "handshake_age_s"), age, sizeof(age));
		printf("%-12s %-12s %-22s %-11s %-10s %12lld %12lld\n",
		       json_string_value(json_object_get(p, "name")),
		       json_string_value(json_object_get(p, "overlay_ip")), ep ? ep : "-",
		       json_string_value(json_object_get(p, "state")), age,
		       (long long)json_integer_value(json_object_get(p, "rx_bytes")),
		       (long long)json_integer_value(json_object_get(p, "tx_bytes")));
	}
}

static void print_firewall(json_t *reply)
{
	json_t *f = json_object_get(reply, "firewall"), *drops = json_object_get(f, "drops"), *x;
	const char *err = json_string_value(json_object_get(f, "last_error"));
	const char *repair = json_string_value(json_object_get(f, "last_repair"));
	const char *hash = json_string_value(json_object_get(f, "rules_hash"));
	json_t *at = json_object_get(f, "applied_at");
	char when[64] = "never";
	size_t i;

	if (json_is_integer(at)) {
		time_t t = (time_t)json_integer_value(at);
		struct tm tm;

		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	}
	printf("%s: table %s %s, %lld rules, %lld set elements\n",
	       json_string_value(json_object_get(reply, "node")),
	       json_string_value(json_object_get(f, "table")),
	       json_string_value(json_object_get(f, "state")),
	       (long long)json_integer_value(json_object_get(f, "rules")),
	       (long long)json_integer_value(json_object_get(f, "elements")));
	if (json_is_number(json_object_get(f, "apply_ms")))
		snprintf(when + strlen(when), sizeof(when) - strlen(when), " in %.1f ms",
			 json_number_value(json_object_get(f, "apply_ms")));
	printf("  last apply %s, rules hash %s%s%s\n", when, hash ? hash : "-",
	       hash && strcmp(hash, json_string_value(json_object_get(f, "wanted_hash"))) != 0 ?
	       ", configuration wants " : "",
	       hash && strcmp(hash, json_string_value(json_object_get(f, "wanted_hash"))) != 0 ?
	       json_string_value(json_object_get(f, "wanted_hash")) : "");
	printf("  applies %lld, repairs %lld, ruleset generation %lld\n",
	       (long long)json_integer_value(json_object_get(f, "applies")),
	       (long long)json_integer_value(json_object_get(f, "repairs")),
	       (long long)json_integer_value(json_object_get(f, "generation")));
	if (repair)
		printf("  last repair: %s\n", repair);
	print_reasons(reply); /* ours not in force; other firewalls that drop wg0 to wg0 (the hub) */
	if (err && json_array_size(json_object_get(reply, "reasons")) == 0)
		printf("  - %s\n", err);
	printf("%-8s %-5s %10s %12s  %s\n", "CHAIN", "RULE", "DROPPED", "BYTES", "WHAT");
	json_array_foreach(drops, i, x) {
		printf("%-8s %-5lld %10lld %12lld  %s\n", json_string_value(json_object_get(x, "chain")),
		       (long long)json_integer_value(json_object_get(x, "rule")),
		       (long long)json_integer_value(json_object_get(x, "packets")),
		       (long long)json_integer_value(json_object_get(x, "bytes")),
		       json_string_value(json_object_get(x, "why")));
	}
}

/* Bytes with a unit, or "-" when unknown. */
static const char *fmt_bytes_json(json_t *v, char *buf, size_t size)
{
	return json_is_number(v) ? fmt_bytes(json_number_value(v), buf, size) : "-";
}

static const char *fmt_secs(json_t *v, char *buf, size_t size)
{
	if (!json_is_number(v))
		return "unknown";
	snprintf(buf, size, "%.1f s", json_number_value(v));
	return buf;
}

static const char *str_or(json_t *v, const char *dflt)
{
	return json_is_string(v) ? json_string_value(v) : dflt;
}

static double num_or_nan(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);

	return json_is_number(v) ? json_number_value(v) : NAN;
}

/* A reply's "clone" object as pgwatch's progress, told as pgwatch tells it. */
static const char *clone_text(const json_t *clone, char *buf, size_t size)
{
	struct pg_clone c = { .active = true, .phase = json_string_value(json_object_get(clone, "phase")),
			      .done_bytes = num_or_nan(clone, "done_bytes"),
			      .total_bytes = num_or_nan(clone, "total_bytes"),
			      .elapsed_s = num_or_nan(clone, "elapsed_s"), .eta_s = num_or_nan(clone, "eta_s") };

	return pg_clone_text(&c, buf, size);
}

static void print_replication(json_t *reply)
{
	json_t *pg = json_object_get(reply, "postgres"), *repl = json_object_get(reply, "replication");
	json_t *rows = json_object_get(repl, "members"), *r;
	const char *primary = str_or(json_object_get(repl, "primary"), "?");
	size_t i;
	{
		char tl[16] = "?", age[32] = "never";
		json_t *t = json_object_get(pg, "timeline");

		if (json_is_integer(t))
			snprintf(tl, sizeof(tl), "%lld", (long long)json_integer_value(t));
		if (json_is_number(json_object_get(pg, "observed_age_s")))
			snprintf(age, sizeof(age), "%.1f s ago",
				 json_number_value(json_object_get(pg, "observed_age_s")));
		printf("cluster %s, primary %s, timeline %s, observed %s, overall %s (seen from %s)\n",
		       str_or(json_object_get(pg, "sysid"), "?"), primary, tl, age,
		       str_or(json_object_get(reply, "overall"), "?"),
		       str_or(json_object_get(reply, "node"), "?"));
	}
	printf("%-10s %-12s %-7s %-8s %-13s %-3s %-13s %-22s %-22s %-21s %s\n", "NODE", "OVERLAY IP",
	       "WG-HS", "ROLE", "PG", "TL", "LINK", "SLOT (WAL)", "REPLAY LAG", "SEND / FLUSH LAG",
	       "LAST MSG");
	json_array_foreach(rows, i, r) {
		char hs[32] = "-", tl[16] = "-", slot[64] = "-", lag[64], b1[32], b2[32], b3[32], s1[32];
		char sf[64] = "-", last[32] = "-";
		json_t *v;

		if (json_is_integer(v = json_object_get(r, "handshake_age_s")))
			snprintf(hs, sizeof(hs), "%llds", (long long)json_integer_value(v));
		if (json_is_integer(v = json_object_get(r, "timeline")))
			snprintf(tl, sizeof(tl), "%lld", (long long)json_integer_value(v));
		if (json_is_string(v = json_object_get(r, "slot")))
			snprintf(slot, sizeof(slot), "%s (%s)", json_string_value(v),
				 str_or(json_object_get(r, "slot_wal_status"), "-"));
		if (json_is_object(v = json_object_get(r, "clone")))
			clone_text(v, lag, sizeof(lag)); /* the DBA's question while cloning */
		else if (json_object_get(r, "replay_lag_bytes"))
			snprintf(lag, sizeof(lag), "%s, %s%s",
				 fmt_bytes_json(json_object_get(r, "replay_lag_bytes"), b1, sizeof(b1)),
				 fmt_secs(json_object_get(r, "replay_lag_s"), s1, sizeof(s1)),
				 json_is_true(json_object_get(r, "idle")) ? " idle" : "");
		else
			snprintf(lag, sizeof(lag), "-");
		if (json_object_get(r, "send_lag_bytes"))
			snprintf(sf, sizeof(sf), "%s / %s",
				 fmt_bytes_json(json_object_get(r, "send_lag_bytes"), b2, sizeof(b2)),
				 fmt_bytes_json(json_object_get(r, "flush_lag_bytes"), b3, sizeof(b3)));
		if (json_is_number(v = json_object_get(r, "last_msg_age_s")))
			snprintf(last, sizeof(last), "%.1f s", json_number_value(v));
		printf("%-10s %-12s %-7s %-8s %-13s %-3s %-13s %-22s %-22s %-21s %s\n",
		       str_or(json_object_get(r, "name"), "?"), str_or(json_object_get(r, "overlay_ip"), "?"),
		       hs, str_or(json_object_get(r, "role"), "?"), str_or(json_object_get(r, "pg_state"), "-"),
		       tl, str_or(json_object_get(r, "link"), "-"), slot, lag, sf, last);
	}
	print_reasons(reply);
}

static void print_when(json_t *t, char *buf, size_t size)
{
	time_t tt = (time_t)json_integer_value(t);
	struct tm tm;

	if (!json_is_integer(t) || !tt)
		snprintf(buf, size, "never");
	else
		strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&tt, &tm));
}

/* A replica's lag as the last run measured it; unknown figures say so. */
static void print_lag(const json_t *lag)
{
	char b[32], s[32];

	printf("  it found this replica %s, %s behind its upstream (receiver %s%s)\n",
	       json_is_number(json_object_get(lag, "bytes")) ?
	       fmt_bytes_json(json_object_get(lag, "bytes"), b, sizeof(b)) : "unknown bytes",
	       fmt_secs(json_object_get(lag, "seconds"), s, sizeof(s)),
	       str_or(json_object_get(lag, "receiver"), "not running"),
	       json_is_true(json_object_get(lag, "replay_paused")) ? ", replay paused" : "");
}

static void print_backups(json_t *reply)
{
	json_t *b = json_object_get(reply, "backup"), *lr = json_object_get(b, "last_run");
	char last[64], next[64], age[32], size[32], ran[64], as_of[64];

	if (!json_is_object(b)) {
		printf("%s: no backups (the hub runs no database)\n",
		       json_string_value(json_object_get(reply, "node")));
		return;
	}
	print_when(json_object_get(b, "last_ok_at"), last, sizeof(last));
	print_when(json_object_get(b, "next_at"), next, sizeof(next));
	fmt_duration(json_integer_value(json_object_get(b, "age_s")), age, sizeof(age));
	printf("%s: backups %s (%s into %s, schedule \"%s\")\n",
	       json_string_value(json_object_get(reply, "node")), str_or(json_object_get(b, "state"), "?"),
	       str_or(json_object_get(b, "method"), "?"), str_or(json_object_get(b, "dir"), "?"),
	       str_or(json_object_get(b, "schedule"), "?"));
	print_when(json_object_get(b, "as_of"), as_of, sizeof(as_of));
	/* The age is the data's: a backup just taken on a lagging replica is old. */
	printf("  newest good %s (%s), data as of %s (%s old%s), next run %s\n", last,
	       fmt_bytes_json(json_object_get(b, "size_bytes"), size, sizeof(size)),
	       json_is_integer(json_object_get(b, "as_of")) ? as_of : "unknown",
	       json_is_integer(json_object_get(b, "age_s")) ? age : "unknown age",
	       json_is_object(json_object_get(b, "replica_lag")) ? ", from a replica" : "", next);
	if (json_is_object(lr)) {
		print_when(json_object_get(lr, "finished_at"), ran, sizeof(ran));
		printf("  last run %s: %s%s%s\n", ran, json_is_true(json_object_get(lr, "ok")) ? "ok" : "FAILED",
		       json_is_string(json_object_get(lr, "error")) ? ": " : "",
		       str_or(json_object_get(lr, "error"), ""));
		if (json_is_object(json_object_get(lr, "replica_lag")))
			print_lag(json_object_get(lr, "replica_lag"));
		if (json_is_string(json_object_get(lr, "note")))
			printf("  note: %s\n", json_string_value(json_object_get(lr, "note")));
	}
	if (json_is_string(json_object_get(b, "last_refused")))
		printf("  last refused: %s\n", json_string_value(json_object_get(b, "last_refused")));
	print_backup_table(json_object_get(b, "backups"));
	print_reasons(reply);
}

static void print_backup_now(json_t *reply)
{
	printf("backup started on %s; `supervisor ctl backups` shows its progress and result\n",
	       str_or(json_object_get(reply, "node"), "this node"));
}

static void print_reinit(json_t *reply)
{
	printf("reinit of %s: Postgres is stopping; its data directory goes to %s (kept, never deleted); then a new clone from %s\n",
	       str_or(json_object_get(reply, "node"), "?"), str_or(json_object_get(reply, "aside"), "?"),
	       str_or(json_object_get(reply, "upstream"), "the upstream"));
}

/*
 * ctl reinit: follow the clone on `replication` once a second until this
 * node streams again (exit 0) or its Postgres failed (exit 2). Progress is
 * printed when the state changes, and every 5 s while cloning.
 */
static int follow_reinit(const char *path)
{
	uint64_t t0 = now_ms(), printed = 0;
	char last[256] = "";

	for (;;) {
		_cleanup_free_ char *text = NULL;
		json_t *reply, *pg, *row, *self = NULL;
		const char *state, *link;
		char line[256], progress[160];
		size_t i;

		sleep(1);
		if (unix_request(path, "replication\n", 30, REPLY_MAX, NULL, &text) < 0 ||
		    !(reply = ctl_read_reply(text))) {
			fprintf(stderr, "supervisor ctl reinit: lost the daemon at %s; the reinit goes on there\n", path);
			return HEALTH_UNKNOWN;
		}
		pg = json_object_get(reply, "postgres");
		json_array_foreach(json_object_get(json_object_get(reply, "replication"), "members"), i, row)
			if (json_is_true(json_object_get(row, "self")))
				self = row;
		state = str_or(json_object_get(pg, "state"), "?");
		link = str_or(json_object_get(self, "link"), "-");
		if (json_is_object(json_object_get(self, "clone")))
			snprintf(line, sizeof(line), "cloning %s",
				 clone_text(json_object_get(self, "clone"), progress, sizeof(progress)));
		else
			snprintf(line, sizeof(line), "postgres %s%s%s, link %s", state,
				 json_is_string(json_object_get(pg, "reason")) ? ": " : "",
				 str_or(json_object_get(pg, "reason"), ""), link);
		if (!strcmp(state, "running") && !strcmp(link, "streaming")) {
			printf("  streaming again, %.1f s after the reinit\n", (double)(now_ms() - t0) / 1000);
			json_decref(reply);
			return HEALTH_OK;
		}
		if (!strcmp(state, "failed")) {
			printf("  %s\n", line);
			json_decref(reply);
			return HEALTH_CRITICAL;
		}
		if (strncmp(line, last, 8) != 0 || now_ms() - printed >= 5000) {
			printf("  %s\n", line);
			fflush(stdout);
			printed = now_ms();
		}
		snprintf(last, sizeof(last), "%s", line);
		json_decref(reply);
	}
}

static const struct {
	const char *command;
	void (*print)(json_t *reply);
} printers[] = {
	{ "reinit", print_reinit },
	{ "backups", print_backups },
	{ "backup-now", print_backup_now },
	{ "replication", print_replication },
	{ "status", print_status },
	{ "tunnel", print_tunnel },
	{ "firewall", print_firewall },
	{ "reload", print_reload },
	{ "ha", print_ha },
	{ "switchover", print_ha_request },
	{ "failover", print_ha_request },
};

static enum health reply_health(json_t *reply)
{
	const char *h = json_string_value(json_object_get(reply, "health"));

	for (int i = HEALTH_OK; h && i <= HEALTH_UNKNOWN; i++)
		if (strcmp(h, health_name((enum health)i)) == 0)
			return (enum health)i;
	return HEALTH_UNKNOWN;
}

int cmd_ctl(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'c' },
		{ "node", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "no-wait", no_argument, NULL, 'W' },
		/* switchover and failover's own options, passed on in the request */
		{ "to", required_argument, NULL, 'T' },
		{ "dry-run", no_argument, NULL, 'D' },
		{ "allow-data-loss", no_argument, NULL, 'A' },
		{ 0 },
	};
	const char *opt_socket = NULL, *conf_path = conf_default_path(), *node = NULL, *path;
	char request[CONTROL_REQUEST_MAX], *text = NULL;
	bool raw = false, wait = true;
	char ha_opts[CONF_NAME_MAX + 48] = "";
	json_t *reply;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "s:c:n:j", opts, NULL)) != -1) {
		switch (opt) {
		case 's': opt_socket = optarg; break;
		case 'c': conf_path = optarg; break;
		case 'n': node = optarg; break;
		case 'j': raw = true; break;
		case 'W': wait = false; break;
		case 'T':
			if (strlen(optarg) > CONF_NAME_MAX || strchr(optarg, ' ')) {
				fprintf(stderr, "supervisor ctl: --to: not a node name\n");
				return EXIT_USAGE;
			}
			snprintf(ha_opts + strlen(ha_opts), sizeof(ha_opts) - strlen(ha_opts), " --to %s", optarg);
			break;
		case 'D': strcat(ha_opts, " --dry-run"); break;
		case 'A': strcat(ha_opts, " --allow-data-loss"); break;
		default:
			cli_command_usage(cmd, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		cli_command_usage(cmd, stderr);
		return EXIT_USAGE;
	}
	request[0] = '\0';
	for (int i = optind; i < argc; i++) {
		if (strlen(request) + strlen(argv[i]) + 2 >= sizeof(request)) {
			fprintf(stderr, "supervisor ctl: request too long\n");
			return EXIT_USAGE;
		}
		strcat(request, argv[i]);
		strcat(request, i + 1 < argc ? " " : "");
	}
	if (strlen(request) + strlen(ha_opts) + 2 >= sizeof(request)) {
		fprintf(stderr, "supervisor ctl: request too long\n");
		return EXIT_USAGE;
	}
	strcat(request, ha_opts);
	strcat(request, "\n");
	path = socket_path(opt_socket, conf_path, node);
	r = unix_request(path, request, 30, REPLY_MAX, NULL, &text);
	if (r < 0) {
		fprintf(stderr, "supervisor ctl: cannot ask the daemon at %s: %s%s\n", path,
			strerror(-r), r == -ENOENT || r == -ECONNREFUSED ?
			" (is `supervisor run` running on this node?)" : "");
		return HEALTH_UNKNOWN;
	}
	reply = ctl_read_reply(text);
	if (!reply) {
		free(text);
		return HEALTH_UNKNOWN;
	}
	if (raw) {
		fputs(text, stdout);
	} else {
		const char *command = json_string_value(json_object_get(reply, "command"));
		void (*print)(json_t *) = NULL;

		for (size_t i = 0; command && i < ARRAY_SIZE(printers); i++)
			if (strcmp(command, printers[i].command) == 0)
				print = printers[i].print;
		/* A refusal is its error, except reload's, which lists the file's errors. */
		if (!json_is_true(json_object_get(reply, "ok")) && json_is_string(json_object_get(reply, "error")) &&
		    print != print_reload) {
			fprintf(stderr, "supervisor ctl %s: %s\n", argv[optind],
				json_string_value(json_object_get(reply, "error")));
		} else if (print) {
			print(reply);
		} else if (!json_is_true(json_object_get(reply, "ok"))) {
			fprintf(stderr, "supervisor ctl %s: %s\n", argv[optind],
				json_string_value(json_object_get(reply, "error")));
		} else {
			json_dumpf(reply, stdout, JSON_INDENT(2));
			putchar('\n');
		}
	}
	/* An unknown command is a usage error; a refusal says nothing of health. */
	const char *error = json_string_value(json_object_get(reply, "error"));

	if (error && strcmp(error, "unknown command") == 0)
		r = EXIT_USAGE;
	else if (!raw && wait && json_is_true(json_object_get(reply, "started")) &&
		 !strcmp(str_or(json_object_get(reply, "command"), ""), "reinit"))
		r = follow_reinit(path);
	else if (!raw && wait && json_is_true(json_object_get(reply, "requested")))
		r = follow_ha_request(path, reply);
	else
		r = (int)reply_health(reply);
	json_decref(reply);
	free(text);
	return r;
}
