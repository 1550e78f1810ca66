// SPDX-License-Identifier: MIT
/*
 * The control socket: AF_UNIX stream, mode 0600, one request line per
 * connection and one JSON reply. Only root and the socket's owner may
 * talk to it (SO_PEERCRED). Everything is non-blocking on the event loop:
 * a client that sends too much, too slowly, or never finishes is cut off
 * by size or by its deadline, and never delays anyone else.
 */
#include "supervisor/daemon.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct client {
	struct control *ctl;
	int fd;
	struct loop_source *src;
	struct loop_source *deadline;
	uid_t uid;
	pid_t pid;
	size_t in_len;
	char in[CONTROL_REQUEST_MAX + 1];
	char *out;
	size_t out_len, out_off;
	struct client *next;
};

struct control {
	struct daemon *d;
	char *path;
	int fd;
	struct loop_source *src;
	struct client *clients;
	size_t n_clients;
	uint64_t refused;
};

static void client_close(struct client *c)
{
	struct control *ctl = c->ctl;

	for (struct client **pp = &ctl->clients; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	ctl->n_clients--;
	loop_remove(c->src);
	loop_remove(c->deadline);
	close(c->fd);
	free(c->out);
	free(c);
}

static void client_write(struct client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return; /* EPOLLOUT will bring us back */
		if (n < 0) {
			client_close(c);
			return;
		}
		c->out_off += (size_t)n;
	}
	client_close(c);
}

static void client_reply(struct client *c, json_t *reply)
{
	char *text = json_dumps(reply, JSON_COMPACT);

	json_decref(reply);
	c->out = text ? xasprintf("%s\n", text) :
		xasprintf("{\"v\":%d,\"ok\":false,\"error\":\"internal\"}\n", CONTROL_PROTOCOL_VERSION);
	free(text);
	c->out_len = strlen(c->out);
	if (loop_fd_events(c->src, EPOLLOUT) < 0) {
		client_close(c);
		return;
	}
	client_write(c);
}

static json_t *error_reply(const char *msg)
{
	return json_pack("{s:i, s:b, s:s}", "v", CONTROL_PROTOCOL_VERSION, "ok", 0, "error", msg);
}

static void client_request(struct client *c)
{
	char q[600];

	c->in[c->in_len] = '\0';
	if (c->in_len && c->in[c->in_len - 1] == '\r')
		c->in[--c->in_len] = '\0';
	for (size_t i = 0; i < c->in_len; i++) {
		if ((unsigned char)c->in[i] < 0x20 || c->in[i] == 0x7f) {
			log_warnx("control", "rejected request uid=%u pid=%d reason=\"control characters\"",
				  (unsigned)c->uid, (int)c->pid);
			client_reply(c, error_reply("malformed request: control characters"));
			return;
		}
	}
	log_info("control", "request uid=%u pid=%d line=%s", (unsigned)c->uid, (int)c->pid,
		 log_quote(q, sizeof(q), c->in));
	client_reply(c, control_dispatch(c->ctl->d, c->in));
}

static void on_client(struct loop_source *src, int fd, uint32_t events, void *data)
{
	struct client *c = data;

	(void)src;
	if (c->out) {
		if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			client_write(c);
		return;
	}
	for (;;) {
		ssize_t n = recv(fd, c->in + c->in_len, CONTROL_REQUEST_MAX - c->in_len, 0);
		char *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) {
			client_close(c);
			return;
		}
		if (n == 0) {
			/* Half-closed without a newline: take what came, if anything. */
			if (c->in_len)
				client_request(c);
			else
				client_close(c);
			return;
		}
		c->in_len += (size_t)n;
		nl = memchr(c->in, '\n', c->in_len);
		if (nl) {
			c->in_len = (size_t)(nl - c->in);
			client_request(c);
			return;
		}
		if (c->in_len >= CONTROL_REQUEST_MAX) {
			log_warnx("control", "rejected request uid=%u pid=%d reason=\"too long\"",
				  (unsigned)c->uid, (int)c->pid);
			client_reply(c, error_reply("request too long"));
			return;
		}
	}
}

static void on_client_deadline(struct loop_source *src, void *data)
{
	struct client *c = data;

	(void)src;
	log_warnx("control", "client timed out uid=%u pid=%d", (unsigned)c->uid, (int)c->pid);
	client_close(c);
}

static void on_accept(struct loop_source *src, int fd, uint32_t events, void *data)
{
	struct control *ctl = data;

	(void)src;
	(void)events;
	for (;;) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct ucred cred;
		socklen_t len = sizeof(cred);
		struct client *c;

		if (cfd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_warn("control", "accept failed");
			return;
		}
		if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
			close(cfd);
			continue;
		}
		/* Root, or whoever owns the socket (the daemon's own uid). */
		if (cred.uid != 0 && cred.uid != geteuid()) {
			static const char deny[] = "{\"v\":1,\"ok\":false,\"error\":\"permission denied\"}\n";

			log_warnx("control", "refused client uid=%u pid=%d reason=\"not permitted\"",
				  (unsigned)cred.uid, (int)cred.pid);
			(void)!send(cfd, deny, sizeof(deny) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(cfd);
			continue;
		}
		if (ctl->n_clients >= CONTROL_CLIENTS_MAX) {
			if (ctl->refused++ % 100 == 0)
				log_warnx("control", "too many clients max=%d refused=%llu",
					  CONTROL_CLIENTS_MAX, (unsigned long long)ctl->refused);
			close(cfd);
			continue;
		}
		c = xcalloc(1, sizeof(*c));
		c->ctl = ctl;
		c->fd = cfd;
		c->uid = cred.uid;
		c->pid = cred.pid;
		if (loop_add_fd(loop_source_loop(ctl->src), cfd, EPOLLIN, on_client, c, &c->src) < 0 ||
		    loop_add_timer(loop_source_loop(ctl->src), on_client_deadline, c, &c->deadline) < 0) {
			loop_remove(c->src);
			close(cfd);
			free(c);
			continue;
		}
		loop_timer_arm(c->deadline, CONTROL_CLIENT_TIMEOUT_MS, 0);
		c->next = ctl->clients;
		ctl->clients = c;
		ctl->n_clients++;
	}
}

/*
 * A socket file already there is either a live daemon (refuse to start: two
 * supervisors would fight over everything) or a stale leftover (replace).
 */
static int clear_stale(const char *path, const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, r;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		log_errorx("control", "path exists and is not a socket path=%s", path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	close(fd);
	if (r == 0) {
		log_errorx("control", "another supervisor is running path=%s", path);
		return -EADDRINUSE;
	}
	log_info("control", "replacing stale socket path=%s", path);
	return unlink(path) < 0 ? -errno : 0;
}

/* The run directory: 0711, so others may pass (to Postgres' socket directory), not list. */
static int make_run_dir(const char *dir)
{
	if (mkdir(dir, 0711) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int control_open(struct daemon *d, struct control **out)
{
	const char *path = conf_self(d->conf)->settings.control_socket;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct control *ctl;
	char dir[256];
	mode_t old;
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if ((r = make_run_dir(conf_run_dir(d->conf, dir, sizeof(dir)))) < 0) {
		log_warn("control", "cannot create the socket directory path=%s", dir);
		return r;
	}
	if ((r = clear_stale(path, &sa)) < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* The umask closes the window between bind() and chmod(). */
	old = umask(0177);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || chmod(path, 0600) < 0 || listen(fd, 64) < 0) {
		r = -errno;
		log_warn("control", "cannot listen path=%s", path);
		close(fd);
		return r;
	}
	ctl = xcalloc(1, sizeof(*ctl));
	ctl->d = d;
	ctl->fd = fd;
	ctl->path = xstrdup(path);
	if ((r = loop_add_fd(d->loop, fd, EPOLLIN, on_accept, ctl, &ctl->src)) < 0) {
		close(fd);
		unlink(path);
		free(ctl->path);
		free(ctl);
		return r;
	}
	log_info("control", "listening path=%s", path);
	*out = ctl;
	return 0;
}

struct control *control_close(struct control *ctl)
{
	if (!ctl)
		return NULL;
	while (ctl->clients)
		client_close(ctl->clients);
	loop_remove(ctl->src);
	close(ctl->fd);
	unlink(ctl->path);
	free(ctl->path);
	free(ctl);
	return NULL;
}
