// SPDX-License-Identifier: MIT
/*
 * Loading this node's WireGuard private key, from a 0600 file or from an
 * environment variable (Dstack hands secrets to containers as encrypted
 * environment variables). Messages say where the key was looked for and
 * what was wrong, never what was read.
 */
#include "conf/conf_internal.h"
#include "lib/mem.h"
#include "lib/wgkey.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int decode(const char *text, uint8_t key[WG_KEY_LEN], const char *where, char *why,
		  size_t why_size)
{
	char buf[WG_KEY_B64_LEN + 2];
	size_t n = strlen(text);

	/* Tolerate the trailing newline `wg genkey > file` leaves. */
	while (n && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
		n--;
	if (n != WG_KEY_B64_LEN) {
		snprintf(why, why_size, "%s does not hold a WireGuard private key (expected 44 characters of base64, as written by `supervisor genkey`)",
			 where);
		return -EINVAL;
	}
	memcpy(buf, text, n);
	buf[n] = '\0';
	bool ok = wgkey_from_base64(buf, key);

	explicit_zero(buf, sizeof(buf));
	if (!ok) {
		snprintf(why, why_size, "%s does not hold a valid base64 WireGuard key", where);
		return -EINVAL;
	}
	return 0;
}

static int load_file(const char *path, uint8_t key[WG_KEY_LEN], char *why, size_t why_size)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	char buf[256];
	struct stat st;
	ssize_t n;
	int r;

	if (fd < 0) {
		r = -errno;
		snprintf(why, why_size, "cannot open private key file %s: %s", path, strerror(errno));
		return r;
	}
	if (fstat(fd, &st) != 0) {
		r = -errno;
		snprintf(why, why_size, "cannot stat %s: %s", path, strerror(errno));
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, why_size, "private key file %s is not a regular file", path);
		return -EINVAL;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(why, why_size, "private key file %s is accessible by group or others (mode %04o); refusing to use it (hint: chmod 600 %s)",
			 path, (unsigned)(st.st_mode & 07777), path);
		return -EPERM;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0) {
		r = -errno;
		snprintf(why, why_size, "cannot read %s: %s", path, strerror(errno));
		return r;
	}
	buf[n] = '\0';
	r = decode(buf, key, path, why, why_size);
	explicit_zero(buf, sizeof(buf));
	return r;
}

int conf_load_private_key(const struct conf_keys *keys, uint8_t key[WG_KEY_LEN], char *why,
			  size_t why_size)
{
	if (keys->private_key_env) {
		const char *v = getenv(keys->private_key_env);
		char where[128];

		if (!v || !*v) {
			snprintf(why, why_size, "environment variable %s is not set", keys->private_key_env);
			return -ENOENT;
		}
		snprintf(where, sizeof(where), "environment variable %s", keys->private_key_env);
		return decode(v, key, where, why, why_size);
	}
	return load_file(keys->private_key_file, key, why, why_size);
}
