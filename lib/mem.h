/* SPDX-License-Identifier: MIT */
/*
 * Memory: allocation, cleanup attributes for locals, wiping secrets.
 *
 * Memory policy: running out of memory is fatal. x*alloc() abort with a
 * message, so no caller carries an untested "malloc failed" path.
 */
#ifndef SUP_LIB_MEM_H
#define SUP_LIB_MEM_H

#include <stddef.h>
#include <stdio.h>

#include "lib/common.h"

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
/* xreallocarray() - grow an array of @n elements of @size, checking overflow. */
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) _printf_(1, 2);

/**
 * xmemstream() - open_memstream(3); running out of memory is fatal.
 * @buf: receives the text (NUL-terminated) at each fflush() and at fclose().
 * @len: receives its length.
 *
 * Return: the stream; the caller closes it, then owns *@buf.
 */
FILE *xmemstream(char **buf, size_t *len);

/* Cleanup helpers for _cleanup_(). */
void freep(void *p);
void closep(int *fd);
void fclosep(FILE **f);
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)

/**
 * explicit_zero() - wipe memory that held a secret (not optimised away).
 * @p: start of the memory.
 * @n: number of bytes.
 */
void explicit_zero(void *p, size_t n);

#endif
