// SPDX-License-Identifier: MIT
/*
 * Supervised children: start order, restart with backoff, stop plans,
 * reaping and the orderly shutdown (see child.h for the contract).
 *
 * Every state change is a set_state() call in one of these functions:
 *
 *   child_start()        WAITING -> STARTING        forked
 *   read_report()        STARTING -> RUNNING        the exec-report pipe
 *                                                   closed: exec worked
 *   stop_begin()         STARTING, RUNNING          a stop was asked for
 *                          -> STOPPING
 *   child_stop()         WAITING, BACKOFF -> EXITED stopped before it ran
 *   child_exited()       -> EXITED                  reaped, not restarted
 *   schedule_restart()   -> BACKOFF                 reaped (or fork failed),
 *                                                   restart timer armed
 *   on_timer()           BACKOFF -> WAITING         the backoff elapsed
 *   give_up()            -> FAILED                  too many quick failures,
 *                                                   or a required child failed
 *
 * Output pipes live in their own small objects, because a grandchild may
 * keep a pipe open after its parent exited and was restarted with a new one.
 *
 * A stop may begin with the spec's before_stop hook (Postgres: a
 * CHECKPOINT): the child is STOPPING, its timer holds the hook's deadline,
 * and the first signal goes out when the hook reports back or the
 * deadline passes, whichever is first.
 */
#include "child/child_internal.h"
#include "child/child.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/mem.h"
#include "lib/proc.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#define STOP_DEFAULT_STEP ((struct child_stop_step){ SIGTERM, 5000 })
#define KILL_WAIT_MS 2000  /* after SIGKILL: how long until we complain */
#define SHUTDOWN_GRACE_MS 1000 /* after the deadline's SIGKILLs */

struct output_stream {
	struct child_set *set;
	char *name;
	bool (*on_output)(const char *line, void *data); /* from the spec */
	void *data;
	int fd;
	struct loop_source *src;
	size_t len;
	char buf[2048];
	struct output_stream *next;
};

struct child {
	struct child_set *set;
	struct child_spec spec; /* deep copy; every string in owned[] */
	char **owned;
	size_t n_owned;
	enum child_state state;
	pid_t pid;
	unsigned restarts;
	unsigned quick_failures;
	int last_status;
	bool exec_failed;
	uint64_t state_since;
	uint64_t started_at;
	uint64_t next_start;
	uint32_t backoff_ms;
	size_t stop_next; /* next step of the stop plan; n_stop means SIGKILL */
	bool before_stop_pending; /* STOPPING, waiting for before_stop; no signal sent yet */
	uint64_t before_stop_at;
	bool stop_requested;
	bool removed;
	bool in_exit_callback;  /* child_remove() from on_exit must not free it yet */
	int report_fd;
	struct loop_source *report_src;
	struct loop_source *timer;
	char last_error[256];
};

struct child_set {
	struct loop *loop;
	struct child_policy policy;
	struct child **v;
	size_t n;
	char **base_env;
	struct output_stream *streams;
	bool started;
	bool shutting_down;
	bool orphans_signalled;
	bool killed;
	void (*done)(void *data, int status);
	void *done_data;
	struct loop_source *deadline;
	void (*give_up)(void *data, struct child *c);
	void *give_up_data;
};

static void start_waiting(struct child_set *set);
static void shutdown_progress(struct child_set *set);

/* ---- small helpers ------------------------------------------------------ */

const char *child_state_name(enum child_state s)
{
	switch (s) {
	case CHILD_STATE_WAITING: return "waiting";
	case CHILD_STATE_STARTING: return "starting";
	case CHILD_STATE_RUNNING: return "running";
	case CHILD_STATE_STOPPING: return "stopping";
	case CHILD_STATE_BACKOFF: return "backoff";
	case CHILD_STATE_EXITED: return "exited";
	case CHILD_STATE_FAILED: return "failed";
	}
	return "?";
}

static bool alive(const struct child *c)
{
	return c->pid > 0;
}

static void set_state(struct child *c, enum child_state st)
{
	if (c->state != st)
		log_debug("child", "state name=%s from=%s to=%s", c->spec.name,
			  child_state_name(c->state), child_state_name(st));
	c->state = st;
	c->state_since = now_ms();
}

static const char *own(struct child *c, const char *s)
{
	char *d;

	if (!s)
		return NULL;
	d = xstrdup(s);
	c->owned = xreallocarray(c->owned, c->n_owned + 1, sizeof(*c->owned));
	c->owned[c->n_owned++] = d;
	return d;
}

static const char *const *own_vec(struct child *c, const char *const *v)
{
	size_t n = 0;
	const char **d;

	if (!v)
		return NULL;
	while (v[n])
		n++;
	d = xcalloc(n + 1, sizeof(*d));
	for (size_t i = 0; i < n; i++)
		d[i] = own(c, v[i]);
	c->owned = xreallocarray(c->owned, c->n_owned + 1, sizeof(*c->owned));
	c->owned[c->n_owned++] = (char *)d;
	return d;
}

static bool in_vec(const char *const *v, const char *name)
{
	for (size_t i = 0; v && v[i]; i++)
		if (strcmp(v[i], name) == 0)
			return true;
	return false;
}

/* "exit 0", "exit 3", "signal SIGKILL" into @buf. */
static const char *describe_status(int st, char *buf, size_t size)
{
	if (WIFEXITED(st))
		snprintf(buf, size, "exit=%d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, size, "signal=%s%s", signal_name(WTERMSIG(st)),
			 WCOREDUMP(st) ? " core=yes" : "");
	else
		snprintf(buf, size, "status=%d", st);
	return buf;
}

static void send_signal(struct child *c, int sig)
{
	if (!alive(c))
		return;
	/* A group signal also reaches what the child started itself. */
	if (c->spec.signal_group)
		kill(-c->pid, sig);
	kill(c->pid, sig);
}

/* ---- output capture ------------------------------------------------------ */

static void stream_line(struct output_stream *o, size_t n)
{
	char saved = o->buf[n];

	o->buf[n] = '\0';
	if (!o->on_output || !o->on_output(o->buf, o->data))
		log_child_output(o->name, o->buf);
	o->buf[n] = saved;
}

static void stream_free(struct output_stream *o)
{
	struct output_stream **pp;

	if (o->len)
		stream_line(o, o->len);
	loop_remove(o->src);
	close(o->fd);
	for (pp = &o->set->streams; *pp; pp = &(*pp)->next) {
		if (*pp == o) {
			*pp = o->next;
			break;
		}
	}
	free(o->name);
	free(o);
}

static void on_output(struct loop_source *src, int fd, uint32_t events, void *data)
{
	struct output_stream *o = data;

	(void)src;
	(void)events;
	for (;;) {
		ssize_t n = read(fd, o->buf + o->len, sizeof(o->buf) - 1 - o->len);
		char *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			stream_free(o); /* EOF: every writer is gone */
			return;
		}
		o->len += (size_t)n;
		while ((nl = memchr(o->buf, '\n', o->len))) {
			size_t line = (size_t)(nl - o->buf);

			stream_line(o, line);
			memmove(o->buf, nl + 1, o->len - line - 1);
			o->len -= line + 1;
		}
		if (o->len == sizeof(o->buf) - 1) { /* an overlong line: log it in pieces */
			stream_line(o, o->len);
			o->len = 0;
		}
	}
}

static void stream_new(struct child_set *set, const struct child_spec *spec, int fd)
{
	struct output_stream *o = xcalloc(1, sizeof(*o));
	const char *name = spec->name;

	o->set = set;
	o->name = xstrdup(name);
	o->on_output = spec->on_output;
	o->data = spec->data;
	o->fd = fd;
	if (loop_add_fd(set->loop, fd, EPOLLIN, on_output, o, &o->src) < 0) {
		log_warn("child", "cannot watch output name=%s", name);
		close(fd);
		free(o->name);
		free(o);
		return;
	}
	o->next = set->streams;
	set->streams = o;
}

/* ---- starting ------------------------------------------------------------ */

static bool can_start(const struct child *c)
{
	const struct child_set *set = c->set;

	if (!set->started || set->shutting_down || c->removed || c->stop_requested)
		return false;
	for (size_t i = 0; c->spec.after && c->spec.after[i]; i++) {
		const struct child *dep = child_find((struct child_set *)set, c->spec.after[i]);

		if (!dep || dep->state != CHILD_STATE_RUNNING)
			return false;
	}
	if (c->spec.start_gate && !c->spec.start_gate(c, c->spec.data))
		return false;
	return true;
}

static void close_report(struct child *c)
{
	c->report_src = loop_remove(c->report_src);
	if (c->report_fd >= 0)
		close(c->report_fd);
	c->report_fd = -1;
}

/* Read the exec report: EOF means exec succeeded, a record means it failed. */
static void read_report(struct child *c)
{
	struct spawn_report rep;
	ssize_t n = read(c->report_fd, &rep, sizeof(rep));

	if (n < 0 && errno == EAGAIN)
		return;
	if (n == (ssize_t)sizeof(rep)) {
		c->exec_failed = true;
		snprintf(c->last_error, sizeof(c->last_error), "%s %s: %s",
			 spawn_stage_name(rep.stage), c->spec.argv[0], strerror(rep.err));
		log_errorx("child", "cannot start name=%s stage=%s path=%s error=\"%s\"", c->spec.name,
			   spawn_stage_name(rep.stage), c->spec.argv[0], strerror(rep.err));
	} else if (c->state == CHILD_STATE_STARTING) {
		set_state(c, CHILD_STATE_RUNNING);
		c->last_error[0] = '\0';
	}
	close_report(c);
}

static void on_report(struct loop_source *src, int fd, uint32_t events, void *data)
{
	struct child *c = data;

	(void)src;
	(void)fd;
	(void)events;
	read_report(c);
	if (c->state == CHILD_STATE_RUNNING)
		start_waiting(c->set); /* dependents may go now */
}

static void schedule_restart(struct child *c);

static void child_start(struct child *c)
{
	struct spawned sp;
	char why[256] = "";
	int r;

	c->exec_failed = false;
	r = spawn_child(&c->spec, (const char *const *)c->set->base_env, &sp, why, sizeof(why));
	if (r < 0) {
		snprintf(c->last_error, sizeof(c->last_error), "%s", why[0] ? why : strerror(-r));
		log_errorx("child", "cannot start name=%s error=\"%s\"", c->spec.name, c->last_error);
		c->started_at = now_ms();
		c->last_status = -1;
		c->quick_failures++;
		schedule_restart(c);
		return;
	}
	c->pid = sp.pid;
	c->started_at = now_ms();
	c->stop_next = 0;
	c->report_fd = sp.report_fd;
	set_state(c, CHILD_STATE_STARTING);
	stream_new(c->set, &c->spec, sp.output_fd);
	if (loop_add_fd(c->set->loop, sp.report_fd, EPOLLIN, on_report, c, &c->report_src) < 0)
		read_report(c);
	log_info("child", "started name=%s pid=%d", c->spec.name, (int)c->pid);
}

static void start_waiting(struct child_set *set)
{
	for (size_t i = 0; i < set->n; i++) {
		struct child *c = set->v[i];

		if (c->state == CHILD_STATE_WAITING && can_start(c))
			child_start(c);
	}
}

/* ---- timers: backoff and stop plan --------------------------------------- */

static void stop_step(struct child *c)
{
	int sig;
	uint32_t wait;

	if (c->stop_next < c->spec.n_stop) {
		sig = c->spec.stop[c->stop_next].signo;
		wait = c->spec.stop[c->stop_next].timeout_ms;
	} else {
		sig = SIGKILL;
		wait = KILL_WAIT_MS;
	}
	if (c->stop_next > c->spec.n_stop) {
		log_warnx("child", "still not reaped after SIGKILL name=%s pid=%d", c->spec.name,
			  (int)c->pid);
		return;
	}
	c->stop_next++;
	log_info("child", "stopping name=%s pid=%d signal=%s timeout_ms=%u", c->spec.name,
		 (int)c->pid, signal_name(sig), wait);
	send_signal(c, sig);
	/* A stopped process acts on the signal only once continued. */
	if (sig != SIGKILL)
		send_signal(c, SIGCONT);
	loop_timer_arm(c->timer, wait, 0);
}

/*
 * The wait for before_stop is over: it reported back, its deadline passed
 * (@expired), or the child exited (then the caller takes it from here).
 */
static void before_stop_end(struct child *c, bool expired)
{
	c->before_stop_pending = false;
	loop_timer_disarm(c->timer);
	if (expired) {
		log_warnx("child", "before-stop step not done in time name=%s waited_ms=%llu; stopping anyway",
			  c->spec.name, (unsigned long long)(now_ms() - c->before_stop_at));
		if (c->spec.before_stop_cancel)
			c->spec.before_stop_cancel(c, c->spec.data);
	}
	if (alive(c))
		stop_step(c);
}

void child_stop_continue(struct child *c)
{
	if (!c->before_stop_pending)
		return;
	log_info("child", "before-stop step done name=%s after_ms=%llu", c->spec.name,
		 (unsigned long long)(now_ms() - c->before_stop_at));
	before_stop_end(c, false);
}

/* STARTING or RUNNING -> STOPPING: the hook first, if there is one, then the signals. */
static void stop_begin(struct child *c)
{
	int r;

	set_state(c, CHILD_STATE_STOPPING);
	c->stop_next = 0;
	if (!c->spec.before_stop) {
		stop_step(c);
		return;
	}
	c->before_stop_pending = true;
	c->before_stop_at = now_ms();
	loop_timer_arm(c->timer, c->spec.before_stop_ms, 0);
	r = c->spec.before_stop(c, c->spec.data);
	if (!c->before_stop_pending)
		return; /* it called child_stop_continue() itself */
	if (r == CHILD_STOP_LATER) {
		log_info("child", "before-stop step running name=%s pid=%d timeout_ms=%u", c->spec.name,
			 (int)c->pid, c->spec.before_stop_ms);
		return;
	}
	if (r < 0) {
		errno = -r;
		log_warn("child", "before-stop step failed name=%s", c->spec.name);
	}
	c->before_stop_pending = false;
	loop_timer_disarm(c->timer);
	stop_step(c);
}

static void on_timer(struct loop_source *src, void *data)
{
	struct child *c = data;

	(void)src;
	switch (c->state) {
	case CHILD_STATE_STOPPING:
		if (c->before_stop_pending)
			before_stop_end(c, true);
		else
			stop_step(c);
		break;
	case CHILD_STATE_BACKOFF:
		/* a restart counts when it is due, even if a start gate holds it back a while */
		c->restarts++;
		set_state(c, CHILD_STATE_WAITING);
		if (can_start(c))
			child_start(c);
		break;
	case CHILD_STATE_WAITING:
	case CHILD_STATE_STARTING:
	case CHILD_STATE_RUNNING:
	case CHILD_STATE_EXITED:
	case CHILD_STATE_FAILED:
		break;
	}
}

static void give_up(struct child *c)
{
	set_state(c, CHILD_STATE_FAILED);
	log_errorx("child", "gave up name=%s failures=%u required=%s", c->spec.name,
		   c->quick_failures, c->spec.required ? "yes" : "no");
	if (c->spec.required && c->set->give_up)
		c->set->give_up(c->set->give_up_data, c);
}

static void schedule_restart(struct child *c)
{
	const struct child_policy *p = &c->set->policy;

	if (p->give_up_after && c->quick_failures >= p->give_up_after) {
		give_up(c);
		return;
	}
	c->next_start = now_ms() + c->backoff_ms;
	set_state(c, CHILD_STATE_BACKOFF);
	log_info("child", "restart scheduled name=%s delay_ms=%u", c->spec.name, c->backoff_ms);
	loop_timer_arm(c->timer, c->backoff_ms, 0);
	c->backoff_ms = c->backoff_ms * 2 > p->backoff_max_ms ? p->backoff_max_ms : c->backoff_ms * 2;
}

/* ---- exits ---------------------------------------------------------------- */

static void child_free(struct child *c);

static void child_exited(struct child *c, int status)
{
	struct child_set *set = c->set;
	uint64_t up = now_ms() - c->started_at;
	char desc[64];
	bool failed;

	if (c->report_fd >= 0)
		read_report(c); /* the report is complete: the child is gone */
	/* What its group left behind (a forked helper) must not outlive it. */
	if (c->spec.signal_group && kill(-c->pid, SIGKILL) == 0)
		log_info("child", "killed what its process group left behind name=%s", c->spec.name);
	c->pid = 0;
	c->last_status = status;
	loop_timer_disarm(c->timer);
	if (c->before_stop_pending) {
		c->before_stop_pending = false;
		if (c->spec.before_stop_cancel)
			c->spec.before_stop_cancel(c, c->spec.data);
	}
	failed = c->exec_failed || !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	log_info("child", "exited name=%s %s uptime_ms=%llu", c->spec.name,
		 describe_status(status, desc, sizeof(desc)), (unsigned long long)up);
	if (up >= set->policy.stable_after_ms) {
		c->quick_failures = 0;
		c->backoff_ms = 1000;
	}
	if (c->spec.on_exit) {
		c->in_exit_callback = true;
		c->spec.on_exit(c, status, c->spec.data);
		c->in_exit_callback = false;
	}

	if (c->stop_requested || set->shutting_down || c->removed) {
		set_state(c, CHILD_STATE_EXITED);
		if (c->removed)
			child_free(c);
		return;
	}
	if (failed && up < set->policy.stable_after_ms)
		c->quick_failures++;
	if (c->spec.restart == CHILD_RESTART_ALWAYS ||
	    (c->spec.restart == CHILD_RESTART_ON_FAILURE && failed)) {
		schedule_restart(c);
		return;
	}
	set_state(c, CHILD_STATE_EXITED);
	if (failed && c->spec.required)
		give_up(c);
}

void child_set_reap(struct child_set *set)
{
	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG);
		struct child *found = NULL;

		if (pid <= 0)
			break; /* 0: nothing more now; -1: ECHILD or EINTR */
		for (size_t i = 0; i < set->n; i++)
			if (set->v[i]->pid == pid)
				found = set->v[i];
		if (found)
			child_exited(found, st);
		else
			log_debug("child", "reaped orphan pid=%d", (int)pid);
	}
	if (set->shutting_down)
		shutdown_progress(set);
	else
		start_waiting(set);
}

/* ---- stopping and shutdown ------------------------------------------------- */

static void child_stop(struct child *c)
{
	c->stop_requested = true;
	switch (c->state) {
	case CHILD_STATE_STARTING:
	case CHILD_STATE_RUNNING:
		stop_begin(c);
		break;
	case CHILD_STATE_WAITING:
	case CHILD_STATE_BACKOFF:
		loop_timer_disarm(c->timer);
		set_state(c, CHILD_STATE_EXITED);
		break;
	case CHILD_STATE_STOPPING:
	case CHILD_STATE_EXITED:
	case CHILD_STATE_FAILED:
		break;
	}
}

/* Is some other live child still depending on @c? Then @c must wait. */
static bool has_live_dependent(const struct child_set *set, const struct child *c)
{
	for (size_t i = 0; i < set->n; i++) {
		const struct child *d = set->v[i];

		if (d != c && alive(d) && in_vec(d->spec.after, c->spec.name))
			return true;
	}
	return false;
}

struct orphan_scan {
	const struct child_set *set;
	int sig;
	size_t n;
};

static void orphan_seen(int pid, unsigned uid, void *data)
{
	struct orphan_scan *o = data;

	(void)uid;
	for (size_t i = 0; i < o->set->n; i++)
		if (o->set->v[i]->pid == pid)
			return; /* one of ours */
	o->n++;
	if (o->sig) {
		kill(pid, o->sig);
		if (o->sig != SIGKILL)
			kill(pid, SIGCONT);
	}
}

/* Direct children of this process that the set does not know (orphans). */
static size_t foreign_children(const struct child_set *set, int sig)
{
	struct orphan_scan o = { set, sig, 0 };

	proc_children(getpid(), orphan_seen, &o);
	return o.n;
}

static void shutdown_finish(struct child_set *set, int status)
{
	void (*done)(void *, int) = set->done;

	set->deadline = loop_remove(set->deadline);
	set->done = NULL;
	if (done)
		done(set->done_data, status);
}

static void shutdown_progress(struct child_set *set)
{
	bool any_alive = false;

	if (!set->done)
		return; /* finished already */
	/* Reverse order of addition: later children tend to depend on earlier ones. */
	for (size_t i = set->n; i-- > 0;) {
		struct child *c = set->v[i];

		if (c->state == CHILD_STATE_WAITING || c->state == CHILD_STATE_BACKOFF)
			child_stop(c);
		if (alive(c)) {
			any_alive = true;
			if (c->state != CHILD_STATE_STOPPING && !has_live_dependent(set, c))
				child_stop(c);
		}
	}
	if (any_alive)
		return;
	/* Our own children are gone; now anything re-parented to us. */
	if (foreign_children(set, 0) == 0) {
		if (waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD) {
			log_info("child", "all children stopped");
			shutdown_finish(set, set->killed ? 1 : 0);
		}
		return; /* zombies left: the next SIGCHLD reaps them */
	}
	if (!set->orphans_signalled) {
		set->orphans_signalled = true;
		log_info("child", "stopping orphans count=%zu signal=SIGTERM",
			 foreign_children(set, SIGTERM));
	}
}

static void on_deadline(struct loop_source *src, void *data)
{
	struct child_set *set = data;

	(void)src;
	if (set->killed) {
		log_errorx("child", "children left after SIGKILL; exiting anyway");
		shutdown_finish(set, 1);
		return;
	}
	set->killed = true;
	for (size_t i = 0; i < set->n; i++) {
		struct child *c = set->v[i];

		if (alive(c)) {
			log_warnx("child", "shutdown budget exceeded name=%s pid=%d signal=SIGKILL",
				  c->spec.name, (int)c->pid);
			if (c->before_stop_pending) {
				c->before_stop_pending = false;
				loop_timer_disarm(c->timer);
				if (c->spec.before_stop_cancel)
					c->spec.before_stop_cancel(c, c->spec.data);
			}
			send_signal(c, SIGKILL);
		}
	}
	if (foreign_children(set, SIGKILL))
		log_warnx("child", "shutdown budget exceeded: killed orphans");
	loop_timer_arm(set->deadline, SHUTDOWN_GRACE_MS, 0);
}

void child_set_shutdown(struct child_set *set, uint32_t budget_ms,
			void (*done)(void *data, int status), void *data)
{
	if (set->shutting_down)
		return;
	set->shutting_down = true;
	set->done = done;
	set->done_data = data;
	log_info("child", "shutdown budget_ms=%u", budget_ms);
	if (loop_add_timer(set->loop, on_deadline, set, &set->deadline) == 0)
		loop_timer_arm(set->deadline, budget_ms, 0);
	shutdown_progress(set);
}

bool child_set_shutting_down(const struct child_set *set)
{
	return set->shutting_down;
}

/* ---- the set ---------------------------------------------------------------- */

int child_set_new(struct loop *loop, const struct child_policy *policy, struct child_set **out)
{
	struct child_set *set = xcalloc(1, sizeof(*set));

	set->loop = loop;
	set->policy = *policy;
	*out = set;
	return 0;
}

void child_set_policy(struct child_set *set, const struct child_policy *policy)
{
	set->policy = *policy;
}

static void free_env(char **env)
{
	for (size_t i = 0; env && env[i]; i++)
		free(env[i]);
	free(env);
}

void child_set_base_env(struct child_set *set, const char *const *env)
{
	size_t n = 0;

	free_env(set->base_env);
	set->base_env = NULL;
	if (!env)
		return;
	while (env[n])
		n++;
	set->base_env = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		set->base_env[i] = xstrdup(env[i]);
}

static void child_free(struct child *c)
{
	struct child_set *set = c->set;

	for (size_t i = 0; i < set->n; i++) {
		if (set->v[i] == c) {
			memmove(&set->v[i], &set->v[i + 1], (set->n - i - 1) * sizeof(*set->v));
			set->n--;
			break;
		}
	}
	close_report(c);
	loop_remove(c->timer);
	for (size_t i = 0; i < c->n_owned; i++)
		free(c->owned[i]);
	free(c->owned);
	free(c);
}

struct child_set *child_set_free(struct child_set *set)
{
	if (!set)
		return NULL;
	while (set->n)
		child_free(set->v[0]);
	while (set->streams)
		stream_free(set->streams);
	free(set->v);
	free_env(set->base_env);
	loop_remove(set->deadline);
	free(set);
	return NULL;
}

int child_add(struct child_set *set, const struct child_spec *spec, struct child **out)
{
	struct child *c;

	if (child_find(set, spec->name))
		return -EEXIST;
	c = xcalloc(1, sizeof(*c));
	c->set = set;
	c->spec = *spec;
	c->spec.name = own(c, spec->name);
	c->spec.argv = own_vec(c, spec->argv);
	c->spec.env = own_vec(c, spec->env);
	c->spec.user = own(c, spec->user);
	c->spec.cwd = own(c, spec->cwd);
	c->spec.owner = own(c, spec->owner);
	c->spec.after = own_vec(c, spec->after);
	child_set_stop(c, spec->stop, spec->n_stop, spec->before_stop_ms);
	c->report_fd = -1;
	c->last_status = -1;
	c->backoff_ms = 1000;
	c->state = CHILD_STATE_WAITING;
	c->state_since = now_ms();
	if (loop_add_timer(set->loop, on_timer, c, &c->timer) < 0) {
		int r = -errno;

		for (size_t i = 0; i < c->n_owned; i++)
			free(c->owned[i]);
		free(c->owned);
		free(c);
		return r ? r : -EIO;
	}
	set->v = xreallocarray(set->v, set->n + 1, sizeof(*set->v));
	set->v[set->n++] = c;
	if (out)
		*out = c;
	if (set->started && can_start(c))
		child_start(c);
	return 0;
}

void child_remove(struct child *c)
{
	c->removed = true;
	if (alive(c))
		child_stop(c);
	else if (!c->in_exit_callback)
		child_free(c);
	/* else: child_exited() frees it once the callback has returned */
}

void child_set_stop(struct child *c, const struct child_stop_step *stop, size_t n_stop,
		    uint32_t before_stop_ms)
{
	if (n_stop > CHILD_STOP_STEPS_MAX)
		n_stop = CHILD_STOP_STEPS_MAX;
	if (stop != c->spec.stop)
		memmove(c->spec.stop, stop, n_stop * sizeof(*stop));
	c->spec.n_stop = n_stop;
	if (!n_stop) {
		c->spec.stop[0] = STOP_DEFAULT_STEP;
		c->spec.n_stop = 1;
	}
	c->spec.before_stop_ms = before_stop_ms;
}

struct child *child_find(struct child_set *set, const char *name)
{
	for (size_t i = 0; i < set->n; i++)
		if (strcmp(set->v[i]->spec.name, name) == 0)
			return set->v[i];
	return NULL;
}

const char *child_name(const struct child *c)
{
	return c->spec.name;
}

int child_pid(const struct child *c)
{
	return (int)c->pid;
}

const struct child_spec *child_spec(const struct child *c)
{
	return &c->spec;
}

void child_set_start(struct child_set *set)
{
	set->started = true;
	start_waiting(set);
}

void child_set_on_give_up(struct child_set *set, void (*fn)(void *data, struct child *c),
			  void *data)
{
	set->give_up = fn;
	set->give_up_data = data;
}

size_t child_set_status(const struct child_set *set, struct child_status *out, size_t max)
{
	size_t n = set->n < max ? set->n : max;

	for (size_t i = 0; i < n; i++) {
		const struct child *c = set->v[i];

		out[i] = (struct child_status){
			.name = c->spec.name,
			.state = c->state,
			.pid = (int)c->pid,
			.restarts = c->restarts,
			.last_status = c->last_status,
			.state_since_ms = c->state_since,
			.next_start_ms = c->state == CHILD_STATE_BACKOFF ? c->next_start : 0,
			.last_error = c->last_error[0] ? c->last_error : NULL,
			.required = c->spec.required,
		};
	}
	return n;
}
