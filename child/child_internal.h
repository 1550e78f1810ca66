/* SPDX-License-Identifier: MIT */
/* Private to child/: process creation for child.c. */
#ifndef SUP_CHILD_INTERNAL_H
#define SUP_CHILD_INTERNAL_H

#include <sys/types.h>

#include "child/child.h"

/* What a child reports through its close-on-exec pipe when it cannot exec. */
enum spawn_stage {
	SPAWN_STAGE_SETUP,  /* setsid, stdio */
	SPAWN_STAGE_CHDIR,
	SPAWN_STAGE_USER,   /* setgroups/setgid/setuid */
	SPAWN_STAGE_EXEC,
};

struct spawn_report {
	int stage;
	int err;
};

struct spawned {
	pid_t pid;
	int output_fd; /* read end of the child's stdout+stderr */
	int report_fd; /* read end of the exec report pipe */
};

/**
 * spawn_child() - fork and exec @spec, never blocking on the child.
 * @spec: what to run.
 * @env: environment when @spec->env is NULL.
 * @out: pid and the parent's pipe ends (both non-blocking, close-on-exec).
 * @why: a reason on failure before fork (e.g. unknown user).
 * @why_size: size of @why.
 *
 * Return: 0 or -errno.
 */
int spawn_child(const struct child_spec *spec, const char *const *env, struct spawned *out,
		char *why, size_t why_size);
const char *spawn_stage_name(int stage);

#endif
