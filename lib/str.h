/* SPDX-License-Identifier: MIT */
/* Small string helpers: durations and sizes for people, whole writes, trimming. */
#ifndef SUP_LIB_STR_H
#define SUP_LIB_STR_H

#include <stddef.h>

/* fmt_duration() - "45s", "12m05s", "5h07m", "3d04h": ages at a glance. Return: @buf. */
const char *fmt_duration(long long s, char *buf, size_t size);

/* fmt_bytes() - "0 B", "512 B", "1.5 KiB", "48.0 MiB" (binary units). Return: @buf. */
const char *fmt_bytes(double bytes, char *buf, size_t size);

/* write_all() - write every byte (retrying short writes and EINTR). Return: 0 or -errno. */
int write_all(int fd, const void *buf, size_t len);

/* str_trim_right() - strip trailing whitespace in place. Return: @s. */
char *str_trim_right(char *s);
/* edit_distance() - Levenshtein distance, capped at 255 (for "did you mean"). */
unsigned edit_distance(const char *a, const char *b);

#endif
