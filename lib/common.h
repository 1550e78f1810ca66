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
#include <sys/signalfd.h>

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
/* log_child_output() - one line a child printed: component=output child="NAME". */
void log_child_output(const char *child, const char *line);

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

/* ---- the event loop --------------------------------------------------
 *
 * One thread, one epoll instance. Sources are fds (with a callback),
 * timers (one timerfd each) and signals (one signalfd for all). Callbacks
 * run one at a time and must not block. A source may be removed at any
 * time, also from inside any callback: it is freed after the current
 * dispatch round, and no further event is delivered to it.
 */
struct loop;
struct loop_source;

typedef void loop_fd_fn(struct loop_source *src, int fd, uint32_t events, void *data);
typedef void loop_timer_fn(struct loop_source *src, void *data);
typedef void loop_signal_fn(struct loop *loop, const struct signalfd_siginfo *si, void *data);

/* loop_new() - a new loop. Return: 0 or -errno. */
int loop_new(struct loop **out) _must_check_;
/* loop_free() - free the loop and every source still in it. Return: NULL. */
struct loop *loop_free(struct loop *loop);

/**
 * loop_add_fd() - watch @fd for @events (EPOLLIN, EPOLLOUT, ...).
 * @loop: the loop.
 * @fd: the descriptor; the caller still owns it (close it after removing).
 * @events: epoll events.
 * @fn: called with the events that fired.
 * @data: passed to @fn.
 * @out: receives the source (may be NULL).
 *
 * Return: 0 or -errno.
 */
int loop_add_fd(struct loop *loop, int fd, uint32_t events, loop_fd_fn *fn, void *data,
		struct loop_source **out) _must_check_;
/* loop_fd_events() - change the events a fd source waits for. Return: 0 or -errno. */
int loop_fd_events(struct loop_source *src, uint32_t events);

/**
 * loop_add_timer() - a timer, initially disarmed.
 * @loop: the loop.
 * @fn: called each time it fires.
 * @data: passed to @fn.
 * @out: receives the timer source.
 *
 * Return: 0 or -errno.
 */
int loop_add_timer(struct loop *loop, loop_timer_fn *fn, void *data,
		   struct loop_source **out) _must_check_;
/* loop_timer_arm() - fire after @after_ms, then every @interval_ms (0: once). */
void loop_timer_arm(struct loop_source *timer, uint64_t after_ms, uint64_t interval_ms);
void loop_timer_disarm(struct loop_source *timer);
bool loop_timer_armed(const struct loop_source *timer);

/**
 * loop_add_signal() - deliver @signo through the loop's signalfd.
 * @loop: the loop.
 * @signo: the signal; it is blocked for the process (see loop_block_signals()).
 * @fn: called once per delivered signal.
 * @data: passed to @fn.
 *
 * Return: 0 or -errno.
 */
int loop_add_signal(struct loop *loop, int signo, loop_signal_fn *fn, void *data) _must_check_;

/* loop_remove() - remove and (later) free a source. NULL is fine. Return: NULL. */
struct loop_source *loop_remove(struct loop_source *src);
struct loop *loop_source_loop(const struct loop_source *src);

/* loop_run() - dispatch until loop_quit(). Return: the code given to loop_quit(). */
int loop_run(struct loop *loop);
void loop_quit(struct loop *loop, int code);
/* loop_run_once() - wait up to @timeout_ms and dispatch one round (tests). */
int loop_run_once(struct loop *loop, int timeout_ms);

/* now_ms() - CLOCK_MONOTONIC in milliseconds. */
uint64_t now_ms(void);

/* ---- signals for PID 1 -------------------------------------------------
 *
 * The supervisor blocks every asynchronous signal and reads them from a
 * signalfd. Children must not inherit that: sig_restore_for_child() gives
 * a child the mask and dispositions the supervisor itself started with.
 */
/* sig_save_and_block() - remember the original mask/dispositions, block all. */
void sig_save_and_block(void);
/* sig_restore_for_child() - async-signal-safe; call between fork and exec. */
void sig_restore_for_child(void);

/* ---- supervised children ---------------------------------------------
 *
 * A child_set owns every supervised process of the daemon. Each child has
 * a stop plan (signal, wait; ...; then SIGKILL, with SIGCONT after every
 * signal so a stopped process can act on it), a restart policy with
 * exponential backoff, and a start order: it starts only when the children
 * it comes "after" are running and the named conditions it waits for
 * (e.g. "tunnel-fresh") are true. Conditions turning false later do not
 * stop anything. Shutdown stops children in reverse start order: a child
 * is signalled only once everything that depends on it has exited.
 * Every zombie is reaped, known or not; the set knows its own.
 */
enum child_restart {
	CHILD_RESTART_NEVER,
	CHILD_RESTART_ON_FAILURE,
	CHILD_RESTART_ALWAYS,
};

enum child_state {
	CHILD_STATE_WAITING,  /* for dependencies/conditions, or not started yet */
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
	const char *const *conditions; /* names of conditions; NULL-terminated or NULL */
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
/* child_set_condition() - set a named condition; may start waiting children. */
void child_set_condition(struct child_set *set, const char *name, bool value);
bool child_set_condition_get(const struct child_set *set, const char *name);

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

/* signal_name() - "SIGTERM" for SIGTERM, "SIG?" for an unknown number. */
const char *signal_name(int signo);

/**
 * proc_children() - call @fn for every process whose parent is @parent.
 * @parent: the parent pid (usually getpid()).
 * @fn: called with each child's pid and uid.
 * @data: for @fn.
 *
 * Reads /proc; processes that vanish meanwhile are skipped.
 * Return: the number of children seen.
 */
size_t proc_children(int parent, void (*fn)(int pid, unsigned uid, void *data), void *data);

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

/* ---- small string helpers -------------------------------------------- */

/* fmt_duration() - "45s", "12m05s", "5h07m", "3d04h": ages at a glance. Return: @buf. */
const char *fmt_duration(long long s, char *buf, size_t size);

/* fmt_bytes() - "0 B", "512 B", "1.5 KiB", "48.0 MiB" (binary units). Return: @buf. */
const char *fmt_bytes(double bytes, char *buf, size_t size);

/* write_all() - write every byte (retrying short writes and EINTR). Return: 0 or -errno. */
int write_all(int fd, const void *buf, size_t len);

/* str_trim_right() - strip trailing whitespace in place. Return: @s. */
char *str_trim_right(char *s);
/* edit_distance() - Levenshtein distance, capped at 255 (for "did you mean"). */
unsigned edit_distance(const char *a, const char *b);

#endif
