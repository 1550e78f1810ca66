/* SPDX-License-Identifier: MIT */
/*
 * Processes and signals for PID 1.
 *
 * The supervisor blocks every asynchronous signal and reads them from a
 * signalfd. Children must not inherit that: sig_restore_for_child() gives
 * a child the mask and dispositions the supervisor itself started with.
 */
#ifndef SUP_LIB_PROC_H
#define SUP_LIB_PROC_H

#include <stddef.h>

/* sig_save_and_block() - remember the original mask/dispositions, block all. */
void sig_save_and_block(void);
/* sig_restore_for_child() - async-signal-safe; call between fork and exec. */
void sig_restore_for_child(void);

/* signal_name() - "SIGTERM" for SIGTERM, "SIG?" for an unknown number. */
const char *signal_name(int signo);
/* signal_from_name() - SIGTERM for "SIGTERM" or "TERM"; 0 when unknown. */
int signal_from_name(const char *name);

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

#endif
