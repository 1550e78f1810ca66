// SPDX-License-Identifier: MIT
/*
 * Split-horizon names (spec §7 option B): with names.hosts_file set, the
 * supervisor keeps one marked block in that file, e.g.
 *
 *   # BEGIN overlay supervisor (managed: edits inside are replaced)
 *   10.88.0.1   hub.vpn
 *   10.88.0.11  spoke-a.vpn pg-primary.vpn
 *   10.88.0.12  spoke-b.vpn
 *   # END overlay supervisor
 *
 * and leaves every other line alone. Rewritten in place, not renamed:
 * Docker bind-mounts /etc/hosts, so a rename would fail or be lost.
 */
#include "overlay/overlay.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BEGIN "# BEGIN overlay supervisor (managed: edits inside are replaced)\n"
#define END "# END overlay supervisor\n"

char *hosts_block(const struct conf *c)
{
	const char *domain = conf_self(c)->settings.names.domain;
	char *out = NULL, ip[16];
	size_t len = 0;
	FILE *f = xmemstream(&out, &len);

	fputs(BEGIN, f);
	for (size_t i = 0; i < c->n_nodes; i++) {
		const struct conf_node *n = &c->nodes[i];

		fprintf(f, "%-15s %s.%s", conf_ip_str(n->overlay_ip, ip), n->name, domain);
		if (n->pg_role == CONF_PG_PRIMARY)
			fprintf(f, " pg-primary.%s", domain);
		fputc('\n', f);
	}
	fputs(END, f);
	if (fclose(f) != 0)
		fatalx("names", "out of memory");
	return out;
}

char *hosts_merge(const char *old, const char *block)
{
	const char *b = strstr(old, BEGIN), *e = b ? strstr(b, END) : NULL;
	size_t olen = strlen(old);

	if (b && e) /* replace the block where it is */
		return xasprintf("%.*s%s%s", (int)(b - old), old, block, e + strlen(END));
	/* append, on a line of its own */
	return xasprintf("%s%s%s", old, olen && old[olen - 1] != '\n' ? "\n" : "", block);
}

int hosts_apply(const struct conf *c)
{
	const char *path = conf_self(c)->settings.names.hosts_file;
	_cleanup_free_ char *block = NULL, *next = NULL, *old = NULL;
	size_t len = 0, cap = 0;
	char buf[4096];
	ssize_t n;
	int fd, r = 0;

	if (!path)
		return 0;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (len + (size_t)n + 1 > cap) {
			cap = (len + (size_t)n + 1) * 2;
			old = xrealloc(old, cap);
		}
		memcpy(old + len, buf, (size_t)n);
		len += (size_t)n;
		if (len > (1u << 20)) {
			close(fd);
			return -EFBIG;
		}
	}
	if (n < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if (!old)
		old = xstrdup("");
	old[len] = '\0';
	block = hosts_block(c);
	next = hosts_merge(old, block);
	if (strcmp(next, old) != 0) {
		if (lseek(fd, 0, SEEK_SET) < 0 || ftruncate(fd, 0) < 0 ||
		    (r = write_all(fd, next, strlen(next))) < 0 || fsync(fd) < 0)
			r = r ? r : -errno;
		else
			log_info("names", "hosts block written path=%s nodes=%zu", path, c->n_nodes);
	}
	close(fd);
	return r;
}
