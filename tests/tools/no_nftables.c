// SPDX-License-Identifier: MIT
/*
 * LD_PRELOAD shim for the pid1 suite: a kernel without nf_tables, as seen
 * from userspace. Opening a NETLINK_NETFILTER socket fails the way it does
 * when nfnetlink is not built (EPROTONOSUPPORT); everything else is real.
 */
#include <dlfcn.h>
#include <errno.h>
#include <linux/netlink.h>
#include <string.h>
#include <sys/socket.h>

int socket(int domain, int type, int protocol)
{
	static int (*real)(int, int, int);

	if (domain == AF_NETLINK && protocol == NETLINK_NETFILTER) {
		errno = EPROTONOSUPPORT;
		return -1;
	}
	if (!real) {
		void *sym = dlsym(RTLD_NEXT, "socket");

		memcpy(&real, &sym, sizeof(real)); /* POSIX allows it; ISO C's cast does not */
	}
	return real(domain, type, protocol);
}
