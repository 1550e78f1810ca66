/* SPDX-License-Identifier: MIT */
/*
 * Shared pieces every module uses: the error contract, memory helpers,
 * cleanup attributes, structured logging and WireGuard key encoding.
 *
 * Error contract (the whole project follows it):
 *   - functions return int: 0 is success;
 *   - a negative value is -errno: an unexpected failure, passed up unchanged;
 *   - a positive value is a documented, expected condition of that module
 *     (e.g. CONF_E_INVALID), which the caller must handle.
 *   bool is only used for pure predicates. Out-parameters come last.
 *
 * Memory policy: running out of memory is fatal. x*alloc() abort with a
 * message, so no caller carries an untested "malloc failed" path.
 */
#ifndef SUP_LIB_COMMON_H
#define SUP_LIB_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _must_check_ __attribute__((warn_unused_result))
#define _cleanup_(fn) __attribute__((cleanup(fn)))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* sysexits(3) codes the CLI uses. */
enum {
	EXIT_USAGE = 64,  /* EX_USAGE: bad command line */
	EXIT_CONFIG = 78, /* EX_CONFIG: the configuration is wrong */
};

/* ---- memory ---------------------------------------------------------- */

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
/* xreallocarray() - grow an array of @n elements of @size, checking overflow. */
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) _printf_(1, 2);

/* Cleanup helpers for _cleanup_(). */
void freep(void *p);
void closep(int *fd);
void fclosep(FILE **f);
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)

/**
 * steal_ptr() - take a pointer out of a cleanup-managed variable.
 * @pp: address of the pointer; it is set to NULL.
 *
 * Return: the old value, now owned by the caller.
 */
static inline void *steal_ptr(void *pp)
{
	void **p = pp;
	void *v = *p;

	*p = NULL;
	return v;
}

/**
 * explicit_zero() - wipe memory that held a secret (not optimised away).
 * @p: start of the memory.
 * @n: number of bytes.
 */
void explicit_zero(void *p, size_t n);

/* ---- logging ---------------------------------------------------------
 *
 * One line per event on stderr:
 *   ts=2026-11-22T01:02:03.456Z level=info component=conf msg="loaded" k=v
 * The format string starts with the message; the first word that contains
 * '=' starts the fields, which are copied as given. Values that may hold
 * spaces or quotes are passed through log_quote(). log_warn() appends the
 * current errno as err="...", log_warnx() does not (OpenBSD convention).
 * Secrets are never passed to these functions.
 */
enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
};

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
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

/* ---- WireGuard keys --------------------------------------------------- */

#define WG_KEY_LEN 32
#define WG_KEY_B64_LEN 44 /* without the terminating NUL */

/**
 * wgkey_from_base64() - decode a WireGuard key (44 chars of standard base64).
 * @b64: the text; surrounding whitespace is not accepted.
 * @key: receives 32 bytes.
 *
 * Return: true when @b64 is exactly one padded base64 encoding of 32 bytes.
 */
bool wgkey_from_base64(const char *b64, uint8_t key[WG_KEY_LEN]);
/* wgkey_to_base64() - encode 32 bytes as 44 chars plus NUL into @out. */
void wgkey_to_base64(const uint8_t key[WG_KEY_LEN], char out[WG_KEY_B64_LEN + 1]);
/* wgkey_generate() - a new clamped Curve25519 private key. Return: 0 or -errno. */
int wgkey_generate(uint8_t key[WG_KEY_LEN]) _must_check_;
/* wgkey_public() - the public key of @priv (as `wg pubkey`). Return: 0 or -EINVAL. */
int wgkey_public(const uint8_t priv[WG_KEY_LEN], uint8_t pub[WG_KEY_LEN]) _must_check_;

/* ---- small string helpers -------------------------------------------- */

/* str_trim_right() - strip trailing whitespace in place. Return: @s. */
char *str_trim_right(char *s);
/* edit_distance() - Levenshtein distance, capped at 255 (for "did you mean"). */
unsigned edit_distance(const char *a, const char *b);

#endif
