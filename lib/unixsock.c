// SPDX-License-Identifier: MIT
/* A blocking request/reply client for AF_UNIX stream sockets, with a deadline. */
#include "lib/unixsock.h"
#include "lib/mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

int unix_request(const char *path, const char *request, int timeout_s, size_t max,
		 bool (*complete)(const char *buf, size_t len), char **reply)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = timeout_s };
	_cleanup_close_ int fd = -1;
	size_t len = 0, cap = 4096;
	char *buf;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	for (size_t off = 0, n = strlen(request); off < n;) {
		ssize_t w = send(fd, request + off, n - off, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		off += (size_t)w;
	}
	buf = xmalloc(cap);
	for (;;) {
		ssize_t n;

		if (len + 1 == cap) {
			if (cap >= max) {
				explicit_zero(buf, cap);
				free(buf);
				return -EMSGSIZE;
			}
			/*
			 * Grown by hand, the old copy wiped: a reply may hold a key
			 * (wireguard-go's), and a hub's grows past 4 KiB.
			 */
			char *bigger = xmalloc(cap * 2);

			memcpy(bigger, buf, len + 1);
			explicit_zero(buf, cap);
			free(buf);
			buf = bigger;
			cap *= 2;
		}
		n = recv(fd, buf + len, cap - 1 - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int r = -errno;

			explicit_zero(buf, cap);
			free(buf);
			return r;
		}
		len += (size_t)n;
		buf[len] = '\0';
		if (n == 0 || (complete && complete(buf, len)))
			break;
	}
	*reply = buf;
	return 0;
}
