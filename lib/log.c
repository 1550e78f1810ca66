// SPDX-License-Identifier: MIT
/*
 * Structured logging to stderr: one line per event, key=value, each line
 * naming its component. Writes are single fputs() calls on an unbuffered
 * stream so lines from the supervisor never interleave mid-line.
 */
#include "common.h"

#include <errno.h>
#include <string.h>
#include <sys/time.h>
#include <stdlib.h>
#include <time.h>

static enum log_level log_min = LOG_LEVEL_INFO;
static FILE *log_stream;

static const char *const level_names[] = {
	[LOG_LEVEL_DEBUG] = "debug",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_WARN] = "warn",
	[LOG_LEVEL_ERROR] = "error",
};

void log_set_level(enum log_level level)
{
	log_min = level;
}

enum log_level log_get_level(void)
{
	return log_min;
}

bool log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(level_names); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return true;
		}
	}
	return false;
}

const char *log_level_name(enum log_level level)
{
	return (size_t)level < ARRAY_SIZE(level_names) ? level_names[level] : "?";
}

void log_set_stream(FILE *f)
{
	log_stream = f;
}

char *log_quote(char *buf, size_t size, const char *s)
{
	size_t o = 0;

	if (size < 8) {
		if (size)
			buf[0] = '\0';
		return buf;
	}
	buf[o++] = '"';
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		char tmp[5];
		size_t n;

		if (c == '"' || c == '\\') {
			tmp[0] = '\\';
			tmp[1] = (char)c;
			n = 2;
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(tmp, sizeof(tmp), "\\x%02x", c);
			n = 4;
		} else {
			tmp[0] = (char)c;
			n = 1;
		}
		if (o + n + 5 > size) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(buf + o, tmp, n);
		o += n;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

/* Split "message words key=v ..." at the first word holding '='. */
static size_t message_length(const char *text)
{
	const char *word = text;

	for (const char *p = text;; p++) {
		if (*p == ' ' || *p == '\0') {
			if (memchr(word, '=', (size_t)(p - word)))
				return word == text ? 0 : (size_t)(word - text - 1);
			if (*p == '\0')
				return (size_t)(p - text);
			word = p + 1;
		}
	}
}

void log_emit(enum log_level level, const char *component, int err,
	      const char *fmt, va_list ap)
{
	char text[4096], msg[1024], line[6144], ts[40];
	struct timeval tv;
	struct tm tm;
	size_t mlen;
	FILE *out = log_stream ? log_stream : stderr;

	if (level < log_min)
		return;
	vsnprintf(text, sizeof(text), fmt, ap);
	mlen = message_length(text);
	snprintf(msg, sizeof(msg), "%.*s", (int)mlen, text);

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);

	char qmsg[1100];
	log_quote(qmsg, sizeof(qmsg), msg);
	const char *fields = text + mlen;

	while (*fields == ' ')
		fields++;
	int n = snprintf(line, sizeof(line), "ts=%s.%03dZ level=%s component=%s msg=%s%s%s",
			 ts, (int)(tv.tv_usec / 1000), log_level_name(level), component,
			 qmsg, *fields ? " " : "", fields);
	if (err && n > 0 && (size_t)n < sizeof(line)) {
		char qerr[256];

		snprintf(line + n, sizeof(line) - (size_t)n, " err=%s",
			 log_quote(qerr, sizeof(qerr), strerror(err)));
	}
	/* One write per line keeps lines whole even when stderr is a pipe. */
	size_t len = strlen(line);

	if (len + 1 < sizeof(line)) {
		line[len] = '\n';
		line[len + 1] = '\0';
	}
	fputs(line, out);
	fflush(out);
}

#define LOG_FN(name, level, err)                                        \
	void name(const char *component, const char *fmt, ...)          \
	{                                                               \
		int saved = errno;                                      \
		va_list ap;                                             \
		va_start(ap, fmt);                                      \
		log_emit(level, component, err, fmt, ap);               \
		va_end(ap);                                             \
		errno = saved;                                          \
	}

LOG_FN(log_debug, LOG_LEVEL_DEBUG, 0)
LOG_FN(log_info, LOG_LEVEL_INFO, 0)
LOG_FN(log_warnx, LOG_LEVEL_WARN, 0)
LOG_FN(log_warn, LOG_LEVEL_WARN, saved)
LOG_FN(log_errorx, LOG_LEVEL_ERROR, 0)

void fatalx(const char *component, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LEVEL_ERROR, component, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
