/* SPDX-License-Identifier: MIT */
/* A blocking request/reply client for AF_UNIX stream sockets. */
#ifndef SUP_LIB_UNIXSOCK_H
#define SUP_LIB_UNIXSOCK_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/common.h"

/**
 * unix_request() - one request/reply exchange over an AF_UNIX stream socket.
 * @path: the socket.
 * @request: sent in full.
 * @timeout_s: deadline for each send and receive.
 * @max: largest reply accepted.
 * @complete: says when the reply is whole (NULL: at end of stream).
 * @reply: receives the NUL-terminated reply (caller frees).
 *
 * Blocking, with a deadline: for command-line clients, and for the short
 * exchange with wireguard-go. Return: 0 or -errno (-EMSGSIZE over @max).
 */
int unix_request(const char *path, const char *request, int timeout_s, size_t max,
		 bool (*complete)(const char *buf, size_t len), char **reply) _must_check_;

#endif
