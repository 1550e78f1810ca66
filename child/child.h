/* SPDX-License-Identifier: MIT */
/*
 * Supervised children: the PID-1 engine.
 *
 * A child_set owns every supervised process of the daemon. Each child has
 * a stop plan (signal, wait; ...; then SIGKILL, with SIGCONT after every
 * signal so a stopped process can act on it), a restart policy with
 * exponential backoff, and a start order: it starts only when the children
 * it comes "after" are running and its start gate (if any) allows it; the
 * gate is asked again after every reap. Shutdown stops children in reverse start order: a child
 * is signalled only once everything that depends on it has exited.
 * Every zombie is reaped, known or not; the set knows its own.
 */
#ifndef SUP_CHILD_CHILD_H
#define SUP_CHILD_CHILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/common.h"
#include "lib/loop.h"

enum child_restart {
	CHILD_RESTART_NEVER,
	CHILD_RESTART_ON_FAILURE,
	CHILD_RESTART_ALWAYS,
};

enum child_state {
	CHILD_STATE_WAITING,  /* for dependencies or its start gate, or not started yet */
	CHILD_STATE_STARTING, /* forked; exec not confirmed yet */
	CHILD_STATE_RUNNING,
	CHILD_STATE_STOPPING, /* stop plan in progress */
	CHILD_STATE_BACKOFF,  /* exited; restart timer armed */
	CHILD_STATE_EXITED,   /* exited and will not be restarted */
	CHILD_STATE_FAILED,   /* gave up restarting */
};

#define CHILD_STOP_STEPS_MAX 4

struct child_stop_step {
	int signo;
	uint32_t timeout_ms;
};

struct child;
struct child_set;

typedef void child_exit_fn(struct child *c, int wait_status, void *data);

struct child_spec {
	const char *name;
	const char *const *argv;       /* argv[0] is an absolute path */
	const char *const *env;        /* NULL: the set's base environment */
	const char *user;              /* NULL: keep the supervisor's uid */
	const char *cwd;               /* NULL: "/" */
	enum child_restart restart;
	struct child_stop_step stop[CHILD_STOP_STEPS_MAX];
	size_t n_stop;                 /* 0: SIGTERM/5s */
	const char *const *after;      /* names of children; NULL-terminated or NULL */
	bool required;                 /* its giving up ends the supervisor */
	bool signal_group;             /* stop signals go to its whole process group, and
					* what is left of the group when it exits is killed */
	const char *owner;             /* who manages it ("config", "overlay", ...) */
	/* start_gate: may it start now? Checked again after every reap. */
	bool (*start_gate)(const struct child *c, void *data);
	child_exit_fn *on_exit;        /* called after each exit (may be NULL) */
	/*
	 * on_output: each line the child prints (NUL-terminated, without the
	 * newline); return true when it was consumed, false to log it as usual.
	 * May be called after the child exited (its last lines), with @data.
	 */
	bool (*on_output)(const char *line, void *data);
	/*
	 * before_stop (may be NULL): runs when a stop begins (shutdown, removal),
	 * before the first stop signal, e.g. a CHECKPOINT so that Postgres'
	 * shutdown checkpoint is short. It returns 0 to signal at once,
	 * CHILD_STOP_LATER when it started something that ends with
	 * child_stop_continue(), or -errno (signal at once). The first signal
	 * waits at most before_stop_ms; when the wait ends without
	 * child_stop_continue() (deadline, or the child exited meanwhile),
	 * before_stop_cancel (may be NULL) drops whatever was started.
	 */
	int (*before_stop)(struct child *c, void *data);
	void (*before_stop_cancel)(struct child *c, void *data);
	uint32_t before_stop_ms;
	void *data;
};

/* before_stop started something: the first stop signal waits for child_stop_continue(). */
#define CHILD_STOP_LATER 1

struct child_policy {
	uint32_t backoff_max_ms;  /* delay doubles from 1 s up to this */
	uint32_t stable_after_ms; /* up this long: backoff and failure count reset */
	uint32_t give_up_after;   /* consecutive quick failures; 0: never give up */
};

struct child_status {
	const char *name;
	enum child_state state;
	int pid;                  /* 0 when not running */
	unsigned restarts;
	int last_status;          /* wait status of the last exit, -1 if none */
	uint64_t state_since_ms;  /* now_ms() when the state was entered */
	uint64_t next_start_ms;   /* BACKOFF: when it restarts */
	const char *last_error;   /* e.g. exec failure, or NULL */
	bool required;
};

/* child_set_new() - an empty set on @loop. Return: 0 or -errno. */
int child_set_new(struct loop *loop, const struct child_policy *policy,
		  struct child_set **out) _must_check_;
/* child_set_free() - forget every child (does not signal them). Return: NULL. */
struct child_set *child_set_free(struct child_set *set);
void child_set_policy(struct child_set *set, const struct child_policy *policy);
/* child_set_base_env() - environment for children without their own (copied). */
void child_set_base_env(struct child_set *set, const char *const *env);

/**
 * child_add() - add a child (the spec is copied).
 * @set: the set.
 * @spec: what to run.
 * @out: receives the child (may be NULL).
 *
 * It starts once child_set_start() was called and its dependencies allow.
 * Return: 0, or -EEXIST when the name is taken.
 */
int child_add(struct child_set *set, const struct child_spec *spec, struct child **out);
/* child_remove() - stop it (if running) and forget it once it has exited. */
void child_remove(struct child *c);

/**
 * child_stop_continue() - the spec's before_stop has finished: send the first stop signal.
 * @c: the child.
 *
 * Does nothing unless @c's stop is waiting for its before_stop (a late
 * call, after the deadline or the child's exit, is harmless).
 */
void child_stop_continue(struct child *c);

/**
 * child_set_stop() - replace @c's stop plan, for stops that begin later.
 * @c: the child.
 * @stop: the steps (copied); then SIGKILL.
 * @n_stop: how many, 1..CHILD_STOP_STEPS_MAX (0: SIGTERM/5s).
 * @before_stop_ms: the longest wait for the spec's before_stop.
 *
 * For settings that change on reload (e.g. the shutdown budget the plan
 * must fit into). A stop already under way keeps the plan it started with.
 */
void child_set_stop(struct child *c, const struct child_stop_step *stop, size_t n_stop,
		    uint32_t before_stop_ms);
struct child *child_find(struct child_set *set, const char *name);
const char *child_name(const struct child *c);
/* child_pid() - the running process, or 0. */
int child_pid(const struct child *c);
const struct child_spec *child_spec(const struct child *c);

/* child_set_start() - allow children to start (in dependency order). */
void child_set_start(struct child_set *set);

/**
 * child_set_shutdown() - stop everything in reverse order within @budget_ms.
 * @set: the set.
 * @budget_ms: after this, whatever is left (children and orphans) is SIGKILLed.
 * @done: called once no child of this process is left, or a grace period
 *        after the SIGKILLs; @status 0 when everything stopped in time.
 * @data: for @done.
 */
void child_set_shutdown(struct child_set *set, uint32_t budget_ms,
			void (*done)(void *data, int status), void *data);
bool child_set_shutting_down(const struct child_set *set);

/* child_set_on_give_up() - called when a required child gives up. */
void child_set_on_give_up(struct child_set *set, void (*fn)(void *data, struct child *c),
			  void *data);

/* child_set_reap() - reap every exited child (call on SIGCHLD). */
void child_set_reap(struct child_set *set);

/* child_set_status() - fill @out with up to @max entries. Return: the count. */
size_t child_set_status(const struct child_set *set, struct child_status *out, size_t max);
const char *child_state_name(enum child_state state);

#endif
