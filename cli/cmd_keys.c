// SPDX-License-Identifier: MIT
/* `supervisor genkey` and `supervisor pubkey`, compatible with wg(8). */
#include "cli/cli.h"
#include "lib/common.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "lib/wgkey.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cmd_genkey(const struct cli_command *cmd, int argc, char **argv)
{
	uint8_t key[WG_KEY_LEN];
	char b64[WG_KEY_B64_LEN + 1];
	struct stat st;

	(void)argv;
	if (argc != 1) {
		cli_command_usage(cmd, stderr);
		return EXIT_USAGE;
	}
	/* Like wg genkey: say so when the key lands in a file others can read. */
	if (fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & S_IRWXO))
		fprintf(stderr, "warning: writing a private key to a world-accessible file\n");
	if (wgkey_generate(key) < 0) {
		fprintf(stderr, "supervisor genkey: no random source\n");
		return 1;
	}
	wgkey_to_base64(key, b64);
	explicit_zero(key, sizeof(key));
	printf("%s\n", b64);
	explicit_zero(b64, sizeof(b64));
	return fflush(stdout) == 0 ? 0 : 1;
}

int cmd_pubkey(const struct cli_command *cmd, int argc, char **argv)
{
	uint8_t priv[WG_KEY_LEN], pub[WG_KEY_LEN];
	char buf[256], b64[WG_KEY_B64_LEN + 1];
	size_t n;
	bool ok;

	(void)argv;
	if (argc != 1) {
		cli_command_usage(cmd, stderr);
		return EXIT_USAGE;
	}
	n = fread(buf, 1, sizeof(buf) - 1, stdin);
	buf[n] = '\0';
	str_trim_right(buf);
	ok = wgkey_from_base64(buf, priv) && wgkey_public(priv, pub) == 0;
	explicit_zero(buf, sizeof(buf));
	explicit_zero(priv, sizeof(priv));
	if (!ok) {
		fprintf(stderr, "supervisor pubkey: standard input is not a WireGuard private key\n");
		return 1;
	}
	wgkey_to_base64(pub, b64);
	printf("%s\n", b64);
	return fflush(stdout) == 0 ? 0 : 1;
}

int cmd_version(const struct cli_command *cmd, int argc, char **argv)
{
	(void)cmd;
	(void)argc;
	(void)argv;
	printf("supervisor %s\n", SUPERVISOR_VERSION);
	return 0;
}
