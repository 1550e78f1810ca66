// SPDX-License-Identifier: MIT
/*
 * How old a backup's data is (see backup.h). Pure: the run's position
 * query (backup/run.c) supplies the raw figures, the catalog the
 * manifests; the clock is a parameter.
 *
 * Times on a replica come from its upstream's clock (commit timestamps, the
 * upstream's send time) and "now" from the replica's: they mix two clocks,
 * which is why a negative age reads 0 and not "in the future".
 */
#include "backup/backup.h"
#include "lib/str.h"

#include <stdio.h>
#include <string.h>

/* A number from @o[@k], or false when it is null or missing (unknown). */
static bool num(const json_t *o, const char *k, double *out)
{
	const json_t *v = json_object_get(o, k);

	if (!json_is_number(v))
		return false;
	*out = json_number_value(v);
	return true;
}

/* Whole seconds, rounded down (times here are after 1970: truncation floors). */
static double whole(double v)
{
	return (double)(int64_t)v;
}

static json_t *num_or_null(bool known, double v)
{
	return known ? json_real(v) : json_null();
}

static json_t *int_or_null(bool known, double v)
{
	return known ? json_integer((json_int_t)v) : json_null();
}

json_t *backup_position(const json_t *raw)
{
	const json_t *rx = json_object_get(raw, "receiver");
	const char *status = json_string_value(json_object_get(rx, "status"));
	double now = 0, backlog = 0, up = 0, sent = 0, replayed = 0, since = 0;
	bool have_now = num(raw, "now", &now);
	bool have_backlog = num(raw, "backlog_bytes", &backlog);
	bool have_up = num(rx, "upstream_lag_bytes", &up);
	bool have_sent = num(rx, "last_msg_sent_at", &sent);
	bool have_replayed = num(raw, "last_replay_at", &replayed);
	bool have_since = num(rx, "since_last_msg_s", &since);
	bool streaming = status && strcmp(status, "streaming") == 0;
	json_t *pos = json_object(), *lag;
	bool caught_up;

	/* Seconds, floored: as_of stays a lower bound. */
	json_object_set_new(pos, "measured_at", int_or_null(have_now, whole(now)));
	if (!json_is_true(json_object_get(raw, "in_recovery"))) {
		json_object_set_new(pos, "as_of", int_or_null(have_now, whole(now)));
		json_object_set_new(pos, "as_of_source", have_now ? json_string("primary") : json_null());
		json_object_set_new(pos, "replica_lag", json_null());
		return pos;
	}
	/*
	 * Receive = replay alone reads "caught up" with a dead receiver (it
	 * replayed all it got): also require streaming and the upstream's own
	 * WAL end, as of its last message, not ahead of our replay.
	 */
	caught_up = streaming && have_backlog && backlog <= 0 && have_up && up <= 0 && have_sent;
	lag = json_object();
	json_object_set_new(lag, "receiver", status ? json_string(status) : json_null());
	json_object_set_new(lag, "replay_paused", json_boolean(json_is_true(json_object_get(raw, "replay_paused"))));
	json_object_set_new(lag, "backlog_bytes", int_or_null(have_backlog, backlog > 0 ? backlog : 0));
	json_object_set_new(lag, "since_last_msg_s", num_or_null(have_since, since));
	if (caught_up) {
		json_object_set_new(pos, "as_of", json_integer((json_int_t)whole(sent)));
		json_object_set_new(pos, "as_of_source", json_string("caught_up"));
		json_object_set_new(lag, "bytes", json_integer(0));
		json_object_set_new(lag, "seconds", json_real(0));
	} else {
		json_object_set_new(pos, "as_of", int_or_null(have_replayed, whole(replayed)));
		json_object_set_new(pos, "as_of_source", have_replayed ? json_string("last_replayed_commit")
								   : json_null());
		/* Only a streaming receiver knows where its upstream is. */
		json_object_set_new(lag, "bytes", int_or_null(streaming && have_up, up > 0 ? up : 0));
		json_object_set_new(lag, "seconds", num_or_null(streaming && have_replayed && have_now,
								 now > replayed ? now - replayed : 0));
	}
	json_object_set_new(pos, "replica_lag", lag);
	return pos;
}

int backup_lag_verdict(const json_t *pos, uint32_t max_lag_s, char *why, size_t size)
{
	const json_t *lag = json_object_get(pos, "replica_lag");
	const char *rx = json_string_value(json_object_get(lag, "receiver"));
	double secs = 0, at = 0, as_of = 0;
	char d1[32], d2[32];
	bool known;

	why[0] = '\0';
	if (!json_is_object(lag))
		return 0; /* a primary's data is as of now */
	known = num(lag, "seconds", &secs);
	if (!known && num(pos, "measured_at", &at) && num(pos, "as_of", &as_of)) {
		secs = at > as_of ? at - as_of : 0;
		known = true;
	}
	fmt_duration(max_lag_s, d2, sizeof(d2));
	if (!known) {
		snprintf(why, size, "this replica cannot tell how old its data is (WAL receiver %s, no "
			 "transaction replayed since it started), so no backup was taken (max_replica_lag %s)",
			 rx ? rx : "not running", d2);
		return BACKUP_E_UNDATED;
	}
	fmt_duration((long long)secs + (secs > (double)(long long)secs), d1, sizeof(d1));
	if (secs <= max_lag_s) {
		snprintf(why, size, "replica %s behind its upstream", d1);
		return 0;
	}
	if (json_is_true(json_object_get(lag, "replay_paused")))
		snprintf(why, size, "this replica is %s behind its upstream: its WAL replay is paused "
			 "(pg_wal_replay_resume()), so no backup was taken (max_replica_lag %s)", d1, d2);
	else if (!rx || strcmp(rx, "streaming") != 0)
		snprintf(why, size, "this replica's data is at least %s old and its WAL receiver is %s, "
			 "so no backup was taken (max_replica_lag %s)", d1, rx ? rx : "not running", d2);
	else
		snprintf(why, size, "this replica is %s behind its upstream (%lld bytes of WAL not replayed), "
			 "so no backup was taken (max_replica_lag %s)", d1,
			 (long long)json_integer_value(json_object_get(lag, "bytes")), d2);
	return BACKUP_E_BEHIND;
}

void backup_manifest_as_of(const json_t *manifest, json_t *entry)
{
	const json_t *as_of = json_object_get(manifest, "as_of");
	const json_t *started = json_object_get(manifest, "started_at");

	if (json_object_get(manifest, "as_of_source")) { /* written with as_of, known or not */
		json_object_set_new(entry, "as_of", json_is_integer(as_of) ? json_copy((json_t *)as_of) : json_null());
		json_object_set(entry, "as_of_source", json_object_get(manifest, "as_of_source"));
		json_object_set_new(entry, "replica_lag", json_is_object(json_object_get(manifest, "replica_lag")) ?
				    json_deep_copy(json_object_get(manifest, "replica_lag")) : json_null());
		return;
	}
	/* Older manifests: a primary's dumps took their snapshots after started_at. */
	if (json_is_false(json_object_get(manifest, "in_recovery")) && json_is_integer(started)) {
		json_object_set_new(entry, "as_of", json_copy((json_t *)started));
		json_object_set_new(entry, "as_of_source", json_string("started_at"));
	} else {
		json_object_set_new(entry, "as_of", json_null());
		json_object_set_new(entry, "as_of_source", json_null());
	}
	json_object_set_new(entry, "replica_lag", json_null());
}

bool backup_data_age(const json_t *entry, int64_t now, int64_t *age)
{
	const json_t *as_of = json_object_get(entry, "as_of");

	if (!json_is_integer(as_of))
		return false;
	*age = now > json_integer_value(as_of) ? now - json_integer_value(as_of) : 0;
	return true;
}
