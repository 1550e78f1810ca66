/* SPDX-License-Identifier: MIT */
/*
 * What every file may use: the compiler attributes, the error contract
 * and the CLI's exit codes. The rest of lib/ is one header per topic
 * (mem, log, loop, proc, str, unixsock, wgkey, health).
 *
 * Error contract (the whole project follows it):
 *   - functions return int: 0 is success;
 *   - a negative value is -errno: an unexpected failure, passed up unchanged;
 *   - a positive value is a documented, expected condition of that module
 *     (e.g. CONF_E_INVALID), which the caller must handle.
 *   bool is only used for pure predicates. Out-parameters come last.
 */
#ifndef SUP_LIB_COMMON_H
#define SUP_LIB_COMMON_H

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

#endif
