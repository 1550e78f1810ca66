// SPDX-License-Identifier: MIT
/*
 * fork + exec of one child. Everything that can fail slowly (user lookup,
 * group list) happens in the parent before fork; between fork and exec the
 * child only makes async-signal-safe calls. A failure there is written to
 * a close-on-exec pipe, so the parent can tell "exec failed" from "ran and
 * exited quickly": the pipe gives EOF on a successful exec and a
 * struct spawn_report otherwise.
 */
#include "child/child_internal.h"
#include "child/child.h"
#include "lib/common.h"
#include "lib/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

const char *spawn_stage_name(int stage)
{
	switch (stage) {
	case SPAWN_STAGE_SETUP: return "set up stdio/session";
	case SPAWN_STAGE_CHDIR: return "chdir";
	case SPAWN_STAGE_USER: return "switch user";
	case SPAWN_STAGE_EXEC: return "exec";
	}
	return "start";
}

static _Noreturn void child_fail(int fd, int stage)
{
	struct spawn_report rep = { stage, errno };

	(void)!write(fd, &rep, sizeof(rep));
	_exit(127);
}

struct user_ids {
	uid_t uid;
	gid_t gid;
	gid_t groups[64];
	int n_groups;
};

static int lookup_user(const char *user, struct user_ids *ids, char *why, size_t why_size)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int r = getpwnam_r(user, &pw, buf, sizeof(buf), &res);

	if (r || !res) {
		snprintf(why, why_size, "unknown user %s", user);
		return r ? -r : -ENOENT;
	}
	ids->uid = pw.pw_uid;
	ids->gid = pw.pw_gid;
	ids->n_groups = (int)ARRAY_SIZE(ids->groups);
	if (getgrouplist(user, pw.pw_gid, ids->groups, &ids->n_groups) < 0) {
		/* More groups than we carry: the primary group alone is safe. */
		ids->groups[0] = pw.pw_gid;
		ids->n_groups = 1;
	}
	return 0;
}

int spawn_child(const struct child_spec *spec, const char *const *env, struct spawned *out,
		char *why, size_t why_size)
{
	struct user_ids ids;
	int outp[2], rep[2], devnull;
	pid_t pid;
	int r;

	if (spec->user && (r = lookup_user(spec->user, &ids, why, why_size)) < 0)
		return r;
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull < 0)
		return -errno;
	if (pipe2(outp, O_CLOEXEC) < 0) {
		r = -errno;
		close(devnull);
		return r;
	}
	if (pipe2(rep, O_CLOEXEC) < 0) {
		r = -errno;
		close(devnull);
		close(outp[0]);
		close(outp[1]);
		return r;
	}
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(devnull);
		close(outp[0]);
		close(outp[1]);
		close(rep[0]);
		close(rep[1]);
		snprintf(why, why_size, "fork: %s", strerror(-r));
		return r;
	}
	if (pid == 0) {
		/* The child: async-signal-safe calls only from here on. */
		sig_restore_for_child();
		if (setsid() < 0 || dup2(devnull, STDIN_FILENO) < 0 ||
		    dup2(outp[1], STDOUT_FILENO) < 0 || dup2(outp[1], STDERR_FILENO) < 0)
			child_fail(rep[1], SPAWN_STAGE_SETUP);
		if (chdir(spec->cwd ? spec->cwd : "/") < 0)
			child_fail(rep[1], SPAWN_STAGE_CHDIR);
		if (spec->user && (setgroups((size_t)ids.n_groups, ids.groups) < 0 ||
				   setgid(ids.gid) < 0 || setuid(ids.uid) < 0))
			child_fail(rep[1], SPAWN_STAGE_USER);
		/* Nothing of ours leaks into the child: not the epoll fd, not sockets. */
		close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
		execve(spec->argv[0], (char *const *)spec->argv,
		       (char *const *)(spec->env ? spec->env : env ? env : (const char *const *)environ));
		child_fail(rep[1], SPAWN_STAGE_EXEC);
	}
	close(devnull);
	close(outp[1]);
	close(rep[1]);
	fcntl(outp[0], F_SETFL, O_NONBLOCK);
	fcntl(rep[0], F_SETFL, O_NONBLOCK);
	out->pid = pid;
	out->output_fd = outp[0];
	out->report_fd = rep[0];
	return 0;
}
