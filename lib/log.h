/* SPDX-License-Identifier: MIT */
/*
 * Structured logging.
 *
 * One line per event on stderr:
 *   ts=2026-11-22T01:02:03.456Z level=info component=conf msg="loaded" k=v
 * The format string starts with the message; the first word that contains
 * '=' starts the fields, which are copied as given. Values that may hold
 * spaces or quotes are passed through log_quote(). log_warn() appends the
 * current errno as err="...", log_warnx() does not (OpenBSD convention).
 * Secrets are never passed to these functions.
 */
#ifndef SUP_LIB_LOG_H
#define SUP_LIB_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "lib/common.h"

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
};

void log_set_level(enum log_level level);
/* log_level_parse() - "debug"/"info"/"warn"/"error" -> level; false if unknown. */
bool log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level level);
/* log_set_stream() - redirect log output (tests); NULL restores stderr. */
void log_set_stream(FILE *f);

void log_emit(enum log_level level, const char *component, int err,
	      const char *fmt, va_list ap) _printf_(4, 0);
void log_debug(const char *component, const char *fmt, ...) _printf_(2, 3);
void log_info(const char *component, const char *fmt, ...) _printf_(2, 3);
void log_warnx(const char *component, const char *fmt, ...) _printf_(2, 3);
void log_warn(const char *component, const char *fmt, ...) _printf_(2, 3);
void log_errorx(const char *component, const char *fmt, ...) _printf_(2, 3);
_Noreturn void fatalx(const char *component, const char *fmt, ...) _printf_(2, 3);
/* log_child_output() - one line a child printed: component=output child="NAME". */
void log_child_output(const char *child, const char *line);

/**
 * log_quote() - render @s as a double-quoted, escaped log value.
 * @buf: output buffer.
 * @size: its size; the result is truncated (with "...") to fit.
 * @s: the value; NULL renders as "".
 *
 * Control characters become \xNN, quotes and backslashes are escaped, so a
 * hostile string (a child's output) cannot forge log fields or lines.
 * Return: @buf.
 */
char *log_quote(char *buf, size_t size, const char *s);

#endif
