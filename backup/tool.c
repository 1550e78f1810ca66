// SPDX-License-Identifier: MIT
/*
 * Running pg_dump, pg_restore, pgbackrest from a backup run: a plain
 * fork/exec/wait (a run is its own process, so waiting is fine), the
 * tool's stderr passed through to ours line by line with its last line
 * kept for the report, and PR_SET_PDEATHSIG so a tool never outlives a
 * run that was killed.
 */
#include "backup/backup_internal.h"
#include "lib/mem.h"
#include "lib/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define CAPTURE_MAX (4u << 20)

const char *tool_status_text(int st)
{
	static char buf[64];

	if (st < 0)
		snprintf(buf, sizeof(buf), "could not start (%s)", strerror(-st));
	else if (WIFEXITED(st))
		snprintf(buf, sizeof(buf), "exit %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, sizeof(buf), "killed by %s", signal_name(WTERMSIG(st)));
	else
		snprintf(buf, sizeof(buf), "status %d", st);
	return buf;
}

/* Append what came in on the stderr pipe; pass complete lines through. */
static void take_stderr(char *line, size_t *len, size_t cap, const char *buf, size_t n, char **last)
{
	for (size_t i = 0; i < n; i++) {
		if (buf[i] == '\n' || *len + 1 >= cap) {
			line[*len] = '\0';
			if (*len) {
				fprintf(stderr, "%s\n", line);
				/* the report keeps the last error line, else the last line */
				if (last && (!*last || strstr(line, "error") || strstr(line, "FATAL") ||
					     !(strstr(*last, "error") || strstr(*last, "FATAL")))) {
					free(*last);
					*last = xstrdup(line);
				}
			}
			*len = 0;
			if (buf[i] == '\n')
				continue;
		}
		line[(*len)++] = buf[i];
	}
}

static _Noreturn void exec_child(const char *const *argv, const char *out_path, int err_w, int out_w)
{
	int fd;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (out_path) {
		fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0)
			_exit(126);
	} else if (dup2(out_w >= 0 ? out_w : STDERR_FILENO, STDOUT_FILENO) < 0) {
		_exit(126);
	}
	if (dup2(err_w, STDERR_FILENO) < 0)
		_exit(126);
	execvp(argv[0], (char *const *)argv);
	fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

int run_tool(const char *const *argv, const char *out_path, char **capture, char **last_err)
{
	int errp[2], outp[2] = { -1, -1 }, st = 0;
	char line[1024], buf[4096];
	size_t llen = 0, clen = 0;
	char *cap = NULL;
	pid_t pid;

	if (pipe2(errp, O_CLOEXEC) < 0)
		return -errno;
	if (!out_path && capture && pipe2(outp, O_CLOEXEC) < 0) {
		int e = errno;

		close(errp[0]);
		close(errp[1]);
		return -e;
	}
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		int e = errno;

		close(errp[0]);
		close(errp[1]);
		if (outp[0] >= 0) {
			close(outp[0]);
			close(outp[1]);
		}
		return -e;
	}
	if (pid == 0)
		exec_child(argv, out_path, errp[1], outp[1]);
	close(errp[1]);
	if (outp[1] >= 0)
		close(outp[1]);
	for (;;) {
		struct pollfd p[2] = { { errp[0], POLLIN, 0 }, { outp[0], POLLIN, 0 } };
		int open_fds = (p[0].fd >= 0) + (p[1].fd >= 0);
		ssize_t n;

		if (!open_fds)
			break;
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents) {
			n = read(errp[0], buf, sizeof(buf));
			if (n > 0) {
				take_stderr(line, &llen, sizeof(line), buf, (size_t)n, last_err);
			} else if (n == 0 || errno != EINTR) {
				close(errp[0]);
				errp[0] = -1;
			}
		}
		if (p[1].revents) {
			n = read(outp[0], buf, sizeof(buf));
			if (n > 0 && clen + (size_t)n < CAPTURE_MAX) {
				cap = xrealloc(cap, clen + (size_t)n + 1);
				memcpy(cap + clen, buf, (size_t)n);
				clen += (size_t)n;
				cap[clen] = '\0';
			} else if (n == 0 || (n < 0 && errno != EINTR)) {
				close(outp[0]);
				outp[0] = -1;
			}
		}
	}
	if (llen)
		take_stderr(line, &llen, sizeof(line), "\n", 1, last_err);
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			st = -errno;
			break;
		}
	}
	if (capture)
		*capture = cap ? cap : xstrdup("");
	else
		free(cap);
	return st;
}
