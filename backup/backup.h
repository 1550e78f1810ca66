/* SPDX-License-Identifier: MIT */
/*
 * Backups into backup.dir (/var/backups). This header holds the pure parts
 * every run depends on, unit-tested with a fake clock: when the next run
 * is due, and which good backups retention keeps. Time is UTC seconds
 * throughout (schedules are UTC; DST never moves a backup).
 */
#ifndef SUP_BACKUP_H
#define SUP_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "conf/conf.h"

/**
 * backup_jitter_s() - this node's fixed offset within the schedule's jitter.
 * @s: the schedule.
 * @node: the node's name.
 *
 * A hash of the name, so nodes spread out and a node's time is the same
 * across restarts (a random draw at every start could skip or double a
 * run). Return: seconds in [0, s->jitter_s).
 */
uint32_t backup_jitter_s(const struct conf_schedule *s, const char *node);

/**
 * backup_next_run() - the first scheduled time strictly after @now.
 * @s: the schedule: "daily HH:MM" (UTC), or an interval aligned to the
 *     epoch ("every 6h" runs at 00:00, 06:00, ... UTC), plus jitter.
 * @node: the node's name (for the jitter).
 * @now: UTC seconds.
 *
 * Return: UTC seconds.
 */
int64_t backup_next_run(const struct conf_schedule *s, const char *node, int64_t now);

/* What retention keeps, besides the newest good backup. */
struct backup_keep {
	uint32_t daily;    /* the newest backup of each of the last N days that have one */
	uint32_t weekly;   /* ... of the last N ISO weeks */
	uint32_t monthly;  /* ... of the last N calendar months */
	uint32_t min;      /* the N newest, whatever their age */
};

#define BACKUP_KEEP_MIN 2

/**
 * backup_retention() - which good backups to keep.
 * @started: start times (UTC seconds) of the good backups, any order. Only
 *           good ones (manifest present, checksum matching): a bad or
 *           partial backup never counts towards a period.
 * @n: how many.
 * @keep: the policy.
 * @out: receives, per backup, true to keep it.
 *
 * The newest good backup is always kept, and so are the @keep->min newest
 * (at least one), so a run of failures can never age the last good ones
 * away. Periods count back from the newest backup, not from the clock, so
 * a node that was down for a month keeps what it had.
 * Return: how many are kept.
 */
size_t backup_retention(const int64_t *started, size_t n, const struct backup_keep *keep, bool *out);

#endif
