// SPDX-License-Identifier: MIT
/*
 * Processes and signals: names for signals, the signal state PID 1 keeps
 * from its children, and walking our children in /proc.
 */
#include "lib/proc.h"
#include "lib/common.h"

#include <ctype.h>
#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The one table of signal names, both ways (the cluster file's stop plans, logs). */
static const char *const signal_names[] = {
	[SIGHUP] = "SIGHUP", [SIGINT] = "SIGINT", [SIGQUIT] = "SIGQUIT",
	[SIGILL] = "SIGILL", [SIGTRAP] = "SIGTRAP", [SIGABRT] = "SIGABRT",
	[SIGBUS] = "SIGBUS", [SIGFPE] = "SIGFPE", [SIGKILL] = "SIGKILL",
	[SIGUSR1] = "SIGUSR1", [SIGSEGV] = "SIGSEGV", [SIGUSR2] = "SIGUSR2",
	[SIGPIPE] = "SIGPIPE", [SIGALRM] = "SIGALRM", [SIGTERM] = "SIGTERM",
	[SIGCHLD] = "SIGCHLD", [SIGCONT] = "SIGCONT", [SIGSTOP] = "SIGSTOP",
	[SIGTSTP] = "SIGTSTP", [SIGTTIN] = "SIGTTIN", [SIGTTOU] = "SIGTTOU",
	[SIGURG] = "SIGURG", [SIGXCPU] = "SIGXCPU", [SIGXFSZ] = "SIGXFSZ",
	[SIGVTALRM] = "SIGVTALRM", [SIGPROF] = "SIGPROF", [SIGWINCH] = "SIGWINCH",
	[SIGIO] = "SIGIO", [SIGPWR] = "SIGPWR", [SIGSYS] = "SIGSYS",
};

const char *signal_name(int signo)
{
	if (signo > 0 && (size_t)signo < ARRAY_SIZE(signal_names) && signal_names[signo])
		return signal_names[signo];
	return "SIG?";
}

int signal_from_name(const char *name)
{
	const char *bare = strncmp(name, "SIG", 3) == 0 ? name + 3 : name;

	for (size_t i = 1; i < ARRAY_SIZE(signal_names); i++)
		if (signal_names[i] && strcmp(bare, signal_names[i] + 3) == 0)
			return (int)i;
	return 0;
}

/* ---- signal state for PID 1 and its children ------------------------- */

static sigset_t orig_mask;
static struct sigaction orig_actions[NSIG];
static bool saved;

void sig_save_and_block(void)
{
	sigset_t all;

	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, NULL, &orig_actions[sig]);
	sigfillset(&all);
	/* Synchronous faults stay deliverable: blocking them is undefined. */
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	sigdelset(&all, SIGABRT);
	sigdelset(&all, SIGTRAP);
	sigdelset(&all, SIGSYS);
	sigprocmask(SIG_SETMASK, &all, &orig_mask);
	/* A write to a closed control-socket client must not kill PID 1. */
	signal(SIGPIPE, SIG_IGN);
	saved = true;
}

void sig_restore_for_child(void)
{
	if (!saved)
		return;
	/* Only dispositions we may have changed; handlers do not survive exec anyway. */
	for (int sig = 1; sig < NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		if (orig_actions[sig].sa_handler == SIG_IGN)
			signal(sig, SIG_IGN);
		else
			signal(sig, SIG_DFL);
	}
	sigprocmask(SIG_SETMASK, &orig_mask, NULL);
}

size_t proc_children(int parent, void (*fn)(int pid, unsigned uid, void *data), void *data)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	size_t n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		char path[300], buf[512], *rp;
		struct stat st;
		FILE *f;
		int ppid = 0;

		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		if (stat(path, &st) < 0 || !(f = fopen(path, "re")))
			continue;
		buf[0] = '\0';
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = '\0';
		fclose(f);
		/* "pid (comm) state ppid ...": comm may hold spaces and ')'. */
		rp = strrchr(buf, ')');
		if (!rp || sscanf(rp + 1, " %*c %d", &ppid) != 1 || ppid != parent)
			continue;
		n++;
		if (fn)
			fn(atoi(e->d_name), (unsigned)st.st_uid, data);
	}
	closedir(d);
	return n;
}
