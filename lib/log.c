// SPDX-License-Identifier: MIT
/*
 * Structured logging to stderr: one line per event, key=value, each line
 * naming its component. Writes are single fputs() calls on an unbuffered
 * stream so lines from the supervisor never interleave mid-line.
 */
#include "lib/log.h"
#include "lib/common.h"

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

/* Write one finished line: the quoted message and the raw fields. */
static void emit(enum log_level level, const char *component, const char *qmsg,
		 const char *fields, int err)
{
	char line[6144], ts[40], qerr[256] = "";
	struct timeval tv;
	struct tm tm;
	FILE *out = log_stream ? log_stream : stderr;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	if (err)
		log_quote(qerr, sizeof(qerr), strerror(err));
	snprintf(line, sizeof(line), "ts=%s.%03dZ level=%s component=%s msg=%s%s%s%s%s\n", ts,
		 (int)(tv.tv_usec / 1000), log_level_name(level), component, qmsg,
		 *fields ? " " : "", fields, err ? " err=" : "", qerr);
	/* One write per line keeps lines whole even when stderr is a pipe. */
	fputs(line, out);
	fflush(out);
}

void log_emit(enum log_level level, const char *component, int err, const char *fmt,
	      va_list ap)
{
	char text[4096], msg[1024], qmsg[1100];
	size_t mlen;
	const char *fields;

	if (level < log_min)
		return;
	vsnprintf(text, sizeof(text), fmt, ap);
	mlen = message_length(text);
	snprintf(msg, sizeof(msg), "%.*s", (int)mlen, text);
	log_quote(qmsg, sizeof(qmsg), msg);
	fields = text + mlen;
	while (*fields == ' ')
		fields++;
	emit(level, component, qmsg, fields, err);
}

void log_child_output(const char *child, const char *line)
{
	char qmsg[2200], qname[128], fields[160];

	if (LOG_LEVEL_INFO < log_min)
		return;
	log_quote(qmsg, sizeof(qmsg), line);
	snprintf(fields, sizeof(fields), "child=%s", log_quote(qname, sizeof(qname), child));
	emit(LOG_LEVEL_INFO, "output", qmsg, fields, 0);
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
