// SPDX-License-Identifier: MIT
/*
 * `supervisor cluster init|add-spoke|remove-spoke|rotate-key`: the spec's
 * runbooks (§9) as commands that edit the cluster file. Each one loads the
 * file, changes it, checks the result with the loader every node uses,
 * and writes it (the previous file kept as FILE.bak); a change that would
 * not load is never written. Applying it is always the same: copy the file
 * to every node and `supervisor ctl reload` there (live: other peers keep
 * their sessions, Postgres keeps running).
 *
 * Secrets: a spoke's private key is either made where the spoke runs
 * (--pubkey) or made here and written once into that spoke's own bundle
 * file (0600), with the replication password, for Dstack's encrypted
 * environment; never into the cluster file, never printed to a log.
 *
 * The edits of the tree are conf/conf_edit.c's; here are the arguments,
 * the secrets and the bundles. Helpers return 0, -errno, or one of the
 * outcomes below, having said what went wrong; cmd_cluster() turns that
 * into the exit status, once.
 */
#include "cli/cli.h"
#include "conf/conf_edit.h"
#include "lib/common.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "lib/wgkey.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER "# The cluster file: the same on every node (no secrets in it).\n" \
	       "# Managed by `supervisor cluster ...`; the previous version is kept as FILE.bak.\n" \
	       "# After a change: copy it to every node, then `supervisor ctl reload` on each.\n\n"

/* Expected outcomes (CONF_E_INVALID: the file does not load, or the change would not). */
enum {
	CLUSTER_E_USAGE = CONF_E_INVALID + 1, /* the command line is wrong */
	CLUSTER_E_REFUSED,                    /* nothing changed, and why was said */
};

struct cluster_args {
	const char *path, *endpoint, *network, *hub_key, *bundle, *pubkey, *upstream, *spokes;
	const char *ssh_from[16];
	size_t n_ssh_from;
	bool primary;
};

enum { OPT_ENDPOINT = 256, OPT_NETWORK, OPT_HUB_KEY, OPT_BUNDLE, OPT_PUBKEY, OPT_UPSTREAM, OPT_PRIMARY,
       OPT_SSH_FROM, OPT_SPOKES };

static const struct option cluster_opts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "endpoint", required_argument, NULL, OPT_ENDPOINT },
	{ "network", required_argument, NULL, OPT_NETWORK },
	{ "hub-key", required_argument, NULL, OPT_HUB_KEY },
	{ "bundle", required_argument, NULL, OPT_BUNDLE },
	{ "pubkey", required_argument, NULL, OPT_PUBKEY },
	{ "upstream", required_argument, NULL, OPT_UPSTREAM },
	{ "primary", no_argument, NULL, OPT_PRIMARY },
	{ "ssh-from", required_argument, NULL, OPT_SSH_FROM },
	{ "spokes", required_argument, NULL, OPT_SPOKES },
	{ 0 },
};

static void config_destroyp(config_t *c)
{
	config_destroy(c);
}

/* ---- secrets ------------------------------------------------------------------ */

/* Write @text to a new 0600 file (never over an existing one unless @replace). */
static int write_secret(const char *path, const char *text, bool replace)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (replace ? O_TRUNC : O_EXCL), 0600);
	size_t len = strlen(text);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, text, len);
	if (n != (ssize_t)len || fsync(fd) < 0) {
		int e = n < 0 ? errno : EIO;

		close(fd);
		return -e;
	}
	return close(fd) < 0 ? -errno : 0;
}

/* A new key pair: @priv_b64 (secret) and @pub_b64. */
static int new_pair(char priv_b64[WG_KEY_B64_LEN + 1], char pub_b64[WG_KEY_B64_LEN + 1])
{
	uint8_t priv[WG_KEY_LEN], pub[WG_KEY_LEN];
	int r = wgkey_generate(priv);

	if (r == 0)
		r = wgkey_public(priv, pub);
	if (r == 0) {
		wgkey_to_base64(priv, priv_b64);
		wgkey_to_base64(pub, pub_b64);
	}
	explicit_zero(priv, sizeof(priv));
	return r;
}

/* The hub's key: reused when the file exists (re-running never makes a new one). */
static int hub_key(const char *path, char pub_b64[WG_KEY_B64_LEN + 1])
{
	struct conf_keys k = { .private_key_file = path };
	uint8_t priv[WG_KEY_LEN], pub[WG_KEY_LEN];
	char why[256], priv_b64[WG_KEY_B64_LEN + 2];
	int r = conf_load_private_key(&k, priv, why, sizeof(why));

	if (r == -ENOENT) {
		if ((r = new_pair(priv_b64, pub_b64)) < 0)
			return r;
		strcat(priv_b64, "\n");
		r = write_secret(path, priv_b64, false);
		explicit_zero(priv_b64, sizeof(priv_b64));
		if (r == 0)
			printf("hub key: new, in %s (0600)\n", path);
		return r;
	}
	if (r < 0) {
		fprintf(stderr, "supervisor cluster: %s\n", why);
		return r;
	}
	r = wgkey_public(priv, pub);
	explicit_zero(priv, sizeof(priv));
	wgkey_to_base64(pub, pub_b64);
	printf("hub key: kept, %s\n", path);
	return r;
}

/*
 * The replication password, next to the cluster file: made once (@create).
 * Return: 0 with *@out set (NULL: there is none and @create is false), or
 * -errno.
 */
static int replication_password(const char *conf_path, bool create, char **out)
{
	_cleanup_free_ char *dir = xstrdup(conf_path);
	_cleanup_free_ char *path = xasprintf("%s/replication.pass", dirname(dir));
	char buf[128], a[WG_KEY_B64_LEN + 1], b[WG_KEY_B64_LEN + 1], *p, *q;
	FILE *f = fopen(path, "re");
	int r;

	*out = NULL;
	if (f) {
		char *line = fgets(buf, sizeof(buf), f);

		fclose(f);
		if (!line)
			return -ENODATA;
		*out = xstrdup(str_trim_right(line));
		return 0;
	}
	if (!create)
		return 0;
	if ((r = new_pair(a, b)) < 0)
		return r;
	/* 32 random bytes, as letters and digits only (no quoting anywhere) */
	for (p = q = a; *p; p++)
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'))
			*q++ = *p;
	*q = '\0';
	snprintf(buf, sizeof(buf), "%s\n", a);
	explicit_zero(a, sizeof(a));
	r = write_secret(path, buf, false);
	if (r == 0) {
		printf("replication password: new, in %s (0600)\n", path);
		*out = xstrdup(str_trim_right(buf));
	}
	explicit_zero(buf, sizeof(buf));
	return r;
}

/* ---- bundles ------------------------------------------------------------------- */

/* The spoke's service alone, for the CVM's compose. Return: 0 or -errno. */
static int write_compose(const char *path, const char *name)
{
	FILE *out = fopen(path, "we");

	if (!out)
		return -errno;
	fprintf(out, "# %s on Dstack: paste into the CVM's compose; secrets from its encrypted env.\n"
		     "services:\n"
		     "  %s:\n"
		     "    image: ${SPOKE_IMAGE:-ghcr.io/example/overlay-supervisor-spoke:0.1.0}\n"
		     "    hostname: %s\n"
		     "    cap_add: [NET_ADMIN]\n"
		     "    devices: [\"/dev/net/tun:/dev/net/tun\"]\n"
		     "    ports: [\"8000:8000\"]\n"
		     "    environment:\n"
		     "      SUPERVISOR_NODE: %s\n"
		     "      WG_PRIVATE_KEY: ${WG_PRIVATE_KEY}\n"
		     "      REPLICATION_PASSWORD: ${REPLICATION_PASSWORD}\n"
		     "    configs: [{ source: cluster, target: /etc/supervisor/cluster.conf }]\n"
		     "    volumes: [\"pgdata:/var/lib/postgresql\", \"backups:/var/backups\"]\n"
		     /* above supervisor.shutdown_budget (25 s): README, tests/deploy */
		     "    stop_grace_period: 30s\n"
		     "    restart: unless-stopped\n"
		     "configs:\n  cluster:\n    file: ./cluster.conf\n"
		     "volumes:\n  pgdata:\n  backups:\n", name, name, name, name);
	return fclose(out) != 0 ? -errno : 0;
}

/* @from's bytes into @to (made or emptied). Return: 0 or -errno. */
static int copy_file(const char *from, const char *to)
{
	_cleanup_fclose_ FILE *in = fopen(from, "re");
	char buf[4096];
	size_t n;
	FILE *out;
	int r = 0;

	if (!in)
		return -errno;
	out = fopen(to, "we");
	if (!out)
		return -errno;
	while (r == 0 && (n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			r = -EIO;
	if (r == 0 && ferror(in))
		r = -EIO;
	if (fclose(out) != 0 && r == 0)
		r = -errno;
	return r;
}

/*
 * DIR/NAME/: spoke.env (0600: the spoke's secrets, for Dstack's encrypted
 * environment), cluster.conf, docker-compose.yml (its service alone).
 * Return: 0 or -errno.
 */
static int write_bundle(const char *dir, const char *name, const char *priv_b64, const char *conf_path)
{
	_cleanup_free_ char *d = xasprintf("%s/%s", dir, name);
	_cleanup_free_ char *env = xasprintf("%s/spoke.env", d);
	_cleanup_free_ char *compose = xasprintf("%s/docker-compose.yml", d);
	_cleanup_free_ char *copy = xasprintf("%s/cluster.conf", d);
	_cleanup_free_ char *pass = NULL;
	_cleanup_free_ char *text = NULL;
	int r;

	if ((mkdir(dir, 0700) < 0 && errno != EEXIST) || (mkdir(d, 0700) < 0 && errno != EEXIST))
		return -errno;
	/* No password file (or an empty one): the operator enters it in the environment by hand. */
	(void)replication_password(conf_path, false, &pass);
	text = xasprintf("# %s: Dstack encrypted environment variables. Enter them, then delete this file.\n"
			 "%s%s%s"
			 "REPLICATION_PASSWORD=%s\n", name,
			 priv_b64 ? "WG_PRIVATE_KEY=" : "# WG_PRIVATE_KEY: the key made on the spoke (--pubkey)\n",
			 priv_b64 ? priv_b64 : "", priv_b64 ? "\n" : "", pass ? pass : "");
	r = write_secret(env, text, true);
	explicit_zero(text, strlen(text));
	if (r < 0 || (r = write_compose(compose, name)) < 0 || (r = copy_file(conf_path, copy)) < 0)
		return r;
	printf("bundle for %s: %s/ (spoke.env is 0600: its secrets, for the Dstack encrypted environment)\n",
	       name, d);
	return 0;
}

/* ---- the file ------------------------------------------------------------------- */

/* Return: 0, CONF_E_INVALID (nothing written) or -errno, each said on stderr. */
static int save(const char *path, config_t *cfg)
{
	struct conf_diag diag = { 0 };
	bool existed = access(path, F_OK) == 0;
	int r = conf_edit_save(path, cfg, HEADER, &diag);

	if (r == CONF_E_INVALID) {
		conf_diag_print(&diag, stderr);
		fprintf(stderr, "supervisor cluster: the change would not load; %s is unchanged\n", path);
		conf_diag_clear(&diag);
		return r;
	}
	if (r < 0) {
		fprintf(stderr, "supervisor cluster: cannot write %s: %s\n", path, strerror(-r));
		return r;
	}
	if (existed)
		printf("wrote %s (previous version: %s.bak)\n", path, path);
	else
		printf("wrote %s\n", path);
	return 0;
}

/* The file as a tree to edit; only a file that loads. Return: 0 or CONF_E_INVALID. */
static int load_tree(const char *path, config_t *cfg)
{
	struct conf *c = NULL;

	config_init(cfg); /* before anything: the caller destroys it either way */
	if (config_read_file(cfg, path) != CONFIG_TRUE) {
		fprintf(stderr, "%s:%d: %s\n", path, config_error_line(cfg), config_error_text(cfg));
		return CONF_E_INVALID;
	}
	/* Its own errors come first. */
	if (cli_load_conf(path, conf_hub_name(cfg), &c) != 0)
		return CONF_E_INVALID;
	conf_free(c);
	return 0;
}

/*
 * A new node key: given (@pubkey, made on the spoke), or made here into
 * @priv and @pub (*@made). Return: 0, CLUSTER_E_USAGE or -errno.
 */
static int node_key(const char *pubkey, char priv[WG_KEY_B64_LEN + 1], char pub[WG_KEY_B64_LEN + 1],
		    bool *made)
{
	uint8_t k[WG_KEY_LEN];
	int r;

	*made = false;
	if (pubkey) {
		if (!wgkey_from_base64(pubkey, k)) {
			fprintf(stderr, "supervisor cluster: --pubkey is not a WireGuard public key\n");
			return CLUSTER_E_USAGE;
		}
		snprintf(pub, WG_KEY_B64_LEN + 1, "%s", pubkey);
		return 0;
	}
	if ((r = new_pair(priv, pub)) < 0) {
		fprintf(stderr, "supervisor cluster: no random source\n");
		return r;
	}
	*made = true;
	return 0;
}

static void next_steps(const char *path)
{
	printf("next: copy %s to every node (hub and spokes), then run `supervisor ctl reload` on each\n", path);
}

/* ---- subcommands ------------------------------------------------------------------ */

static int cluster_init(const struct cluster_args *a, const char *unused)
{
	_cleanup_(config_destroyp) config_t cfg;
	_cleanup_free_ char *names = xstrdup(a->spokes ? a->spokes : "");
	_cleanup_free_ char *pass = NULL;
	char hub_pub[WG_KEY_B64_LEN + 1], ip[16];
	const char *primary = NULL;
	char *save_ptr = NULL, privs[64][WG_KEY_B64_LEN + 1];
	const char *made_for[64];
	size_t n_made = 0;
	int r;

	(void)unused;
	config_init(&cfg);
	if (!a->endpoint || !a->spokes) {
		fprintf(stderr, "supervisor cluster init: give --endpoint HOST:PORT and --spokes NAME[,NAME...]\n");
		return CLUSTER_E_USAGE;
	}
	if (access(a->path, F_OK) == 0) {
		fprintf(stderr, "supervisor cluster init: %s exists; nothing changed (add-spoke, remove-spoke and "
			"rotate-key edit it)\n", a->path);
		return CLUSTER_E_REFUSED;
	}
	if ((r = hub_key(a->hub_key, hub_pub)) < 0) {
		fprintf(stderr, "supervisor cluster init: hub key %s: %s\n", a->hub_key, strerror(-r));
		return r;
	}
	if ((r = replication_password(a->path, true, &pass)) < 0) {
		fprintf(stderr, "supervisor cluster init: cannot make the replication password next to %s\n", a->path);
		return r;
	}
	r = conf_edit_init(&cfg, &(struct conf_edit_hub){
		.network = a->network, .endpoint = a->endpoint, .public_key = hub_pub,
		.private_key_file = a->hub_key, .ssh_from = a->ssh_from, .n_ssh_from = a->n_ssh_from });
	if (r < 0) {
		fprintf(stderr, "supervisor cluster init: --network %s is not a.b.c.d/N\n", a->network);
		return CLUSTER_E_USAGE;
	}
	for (char *n = strtok_r(names, ",", &save_ptr); n; n = strtok_r(NULL, ",", &save_ptr)) {
		char pub[WG_KEY_B64_LEN + 1];
		bool made;

		if (n_made == ARRAY_SIZE(privs) || conf_edit_next_ip(&cfg, ip) < 0 ||
		    node_key(NULL, privs[n_made], pub, &made) != 0) {
			fprintf(stderr, "supervisor cluster init: too many spokes, or no free address\n");
			r = CLUSTER_E_REFUSED;
			goto out;
		}
		made_for[n_made++] = n;
		/* the first is the primary, every other one its replica */
		conf_edit_add_spoke(&cfg, n, ip, pub, primary, true);
		if (!primary)
			primary = n;
		printf("spoke %s: %s, %s\n", n, ip, primary == n ? "primary" : "replica");
	}
	r = save(a->path, &cfg);
	/* bundles once the file is final: each carries a copy of it */
	for (size_t i = 0; r == 0 && i < n_made; i++) {
		if ((r = write_bundle(a->bundle, made_for[i], privs[i], a->path)) < 0)
			fprintf(stderr, "supervisor cluster init: cannot write the bundle in %s: %s\n", a->bundle,
				strerror(-r));
	}
	if (r == 0)
		printf("next: run the hub (setup-hub.sh or `supervisor run`), then deploy each spoke with its bundle\n");
out:
	explicit_zero(privs, sizeof(privs));
	return r;
}

static int cluster_add_spoke(const struct cluster_args *a, const char *name)
{
	_cleanup_(config_destroyp) config_t cfg;
	char priv[WG_KEY_B64_LEN + 1] = "", pub[WG_KEY_B64_LEN + 1], ip[16];
	const char *upstream;
	bool made;
	int r;

	if ((r = load_tree(a->path, &cfg)))
		return r;
	if (conf_edit_find_node(&cfg, name)) {
		fprintf(stderr, "supervisor cluster add-spoke: %s is already in %s\n", name, a->path);
		return CLUSTER_E_REFUSED;
	}
	if (conf_edit_next_ip(&cfg, ip) < 0) {
		fprintf(stderr, "supervisor cluster add-spoke: no free address in cluster.network\n");
		return CLUSTER_E_REFUSED;
	}
	upstream = a->primary ? NULL : a->upstream ? a->upstream : conf_edit_primary_name(&cfg);
	if ((r = node_key(a->pubkey, priv, pub, &made)))
		return r;
	conf_edit_add_spoke(&cfg, name, ip, pub, upstream, false);
	if ((r = save(a->path, &cfg))) {
		explicit_zero(priv, sizeof(priv));
		return r;
	}
	printf("spoke %s: %s, %s%s%s\n", name, ip, upstream ? "replica of " : "primary",
	       upstream ? upstream : "", made ? ", key pair made here" : ", its own key");
	r = write_bundle(a->bundle, name, made ? priv : NULL, a->path);
	explicit_zero(priv, sizeof(priv));
	if (r < 0) {
		fprintf(stderr, "supervisor cluster: cannot write the bundle in %s: %s\n", a->bundle, strerror(-r));
		return r;
	}
	next_steps(a->path);
	return 0;
}

static int cluster_remove_spoke(const struct cluster_args *a, const char *name)
{
	_cleanup_(config_destroyp) config_t cfg;
	const char *blocker = NULL;
	int r;

	if ((r = load_tree(a->path, &cfg)))
		return r;
	switch (conf_edit_remove_spoke(&cfg, name, &blocker)) {
	case 0:
		break;
	case CONF_EDIT_E_UNKNOWN:
		fprintf(stderr, "supervisor cluster remove-spoke: no spoke named %s in %s\n", name, a->path);
		return CLUSTER_E_REFUSED;
	case CONF_EDIT_E_PRIMARY:
		fprintf(stderr, "supervisor cluster remove-spoke: %s is the primary; make another spoke the primary "
			"first\n", name);
		return CLUSTER_E_REFUSED;
	case CONF_EDIT_E_UPSTREAM:
		fprintf(stderr, "supervisor cluster remove-spoke: %s replicates from %s; give it another "
			"upstream first\n", blocker, name);
		return CLUSTER_E_REFUSED;
	}
	if ((r = save(a->path, &cfg)))
		return r;
	printf("removed %s; its data and backups stay on its node until you delete them\n", name);
	next_steps(a->path);
	return 0;
}

/*
 * The hub's new key waits next to the file it reads until the cluster
 * file naming its public half is written; then it takes the old one's place.
 */
static int install_hub_key(const struct cluster_args *a, config_t *cfg, const char *key_file,
			   char priv[WG_KEY_B64_LEN + 2])
{
	_cleanup_free_ char *next = xasprintf("%s.new", key_file);
	int r;

	strcat(priv, "\n");
	r = write_secret(next, priv, true);
	explicit_zero(priv, WG_KEY_B64_LEN + 2); /* sizeof a parameter is the pointer's */
	if (r < 0 || (r = save(a->path, cfg)) != 0) {
		fprintf(stderr, "supervisor cluster rotate-key: hub key not changed\n");
		unlink(next);
		return r;
	}
	if (rename(next, key_file) < 0) {
		/* the file already names the new key: put the old file back, one verdict */
		_cleanup_free_ char *bak = xasprintf("%s.bak", a->path);
		int e = errno;
		bool restored = rename(bak, a->path) == 0;

		fprintf(stderr, "supervisor cluster rotate-key: cannot install %s: %s; hub key not changed, %s\n",
			key_file, strerror(e), restored ? "the previous cluster file is back in place" :
			"put the previous cluster file back from its .bak");
		unlink(next);
		return -e;
	}
	printf("hub key: new, in %s; reload the hub together with the spokes\n", key_file);
	return 0;
}

static int cluster_rotate_key(const struct cluster_args *a, const char *name)
{
	_cleanup_(config_destroyp) config_t cfg;
	char priv[WG_KEY_B64_LEN + 2] = "", pub[WG_KEY_B64_LEN + 1];
	const char *key_file = a->hub_key;
	bool made, hub;
	int r;

	if ((r = load_tree(a->path, &cfg)))
		return r;
	hub = strcmp(name, conf_hub_name(&cfg)) == 0;
	if (hub && conf_edit_hub_key_file(&cfg))
		key_file = conf_edit_hub_key_file(&cfg); /* the key file the hub actually reads */
	if (!conf_edit_find_node(&cfg, name)) {
		fprintf(stderr, "supervisor cluster rotate-key: no node named %s in %s\n", name, a->path);
		return CLUSTER_E_REFUSED;
	}
	if ((r = node_key(a->pubkey, priv, pub, &made)))
		return r;
	(void)conf_edit_set_public_key(&cfg, name, pub); /* the node is there: found above */
	if (hub && made) {
		if ((r = install_hub_key(a, &cfg, key_file, priv)))
			return r;
		next_steps(a->path);
		return 0;
	}
	if ((r = save(a->path, &cfg))) {
		explicit_zero(priv, sizeof(priv));
		return r;
	}
	if (!hub) {
		r = write_bundle(a->bundle, name, made ? priv : NULL, a->path);
		explicit_zero(priv, sizeof(priv));
		if (r < 0) {
			fprintf(stderr, "supervisor cluster: cannot write the bundle: %s\n", strerror(-r));
			return r;
		}
	}
	printf("%s: new public key %s; %s, then reload every node\n", name, pub,
	       made ? "put the new private key on it (its bundle's spoke.env)" : "the spoke already has its key");
	next_steps(a->path);
	return 0;
}

static const struct {
	const char *name;
	int (*run)(const struct cluster_args *a, const char *node);
	bool takes_node; /* NAME after the subcommand */
} subcommands[] = {
	{ "init", cluster_init, false },
	{ "add-spoke", cluster_add_spoke, true },
	{ "remove-spoke", cluster_remove_spoke, true },
	{ "rotate-key", cluster_rotate_key, true },
};

int cmd_cluster(const struct cli_command *cmd, int argc, char **argv)
{
	struct cluster_args a = { .path = conf_default_path(), .network = CONF_DEFAULT_NETWORK,
				  .hub_key = CONF_DEFAULT_KEY_FILE, .bundle = "./spoke-bundles" };
	_cleanup_free_ char *hub_key_abs = NULL;
	const char *what;
	size_t i;
	int opt, r;

	if (argc < 2) {
		cli_command_usage(cmd, stderr);
		return EXIT_USAGE;
	}
	what = argv[1];
	optind = 1;
	while ((opt = getopt_long(argc - 1, argv + 1, "c:", cluster_opts, NULL)) != -1) {
		switch (opt) {
		case 'c': a.path = optarg; break;
		case OPT_ENDPOINT: a.endpoint = optarg; break;
		case OPT_NETWORK: a.network = optarg; break;
		case OPT_HUB_KEY: a.hub_key = optarg; break;
		case OPT_BUNDLE: a.bundle = optarg; break;
		case OPT_PUBKEY: a.pubkey = optarg; break;
		case OPT_UPSTREAM: a.upstream = optarg; break;
		case OPT_PRIMARY: a.primary = true; break;
		case OPT_SPOKES: a.spokes = optarg; break;
		case OPT_SSH_FROM:
			if (a.n_ssh_from < ARRAY_SIZE(a.ssh_from))
				a.ssh_from[a.n_ssh_from++] = optarg;
			break;
		default:
			cli_command_usage(cmd, stderr);
			return EXIT_USAGE;
		}
	}
	argc--;
	argv++;
	/* the key path goes into the file, which wants it absolute */
	if (a.hub_key[0] != '/') {
		_cleanup_free_ char *d = xstrdup(a.hub_key), *b = xstrdup(a.hub_key);
		_cleanup_free_ char *dir = realpath(dirname(d), NULL);

		if (!dir) {
			fprintf(stderr, "supervisor cluster: --hub-key %s: %s\n", a.hub_key, strerror(errno));
			return 1;
		}
		a.hub_key = hub_key_abs = xasprintf("%s/%s", dir, basename(b));
	}
	for (i = 0; i < ARRAY_SIZE(subcommands); i++)
		if (strcmp(what, subcommands[i].name) == 0)
			break;
	if (i == ARRAY_SIZE(subcommands) || optind != argc - (subcommands[i].takes_node ? 1 : 0)) {
		cli_command_usage(cmd, stderr);
		return EXIT_USAGE;
	}
	r = subcommands[i].run(&a, subcommands[i].takes_node ? argv[optind] : NULL);
	/* the one place a helper's outcome becomes the exit status */
	if (r == CONF_E_INVALID)
		return EXIT_CONFIG;
	if (r == CLUSTER_E_USAGE)
		return EXIT_USAGE;
	return r == 0 ? 0 : 1;
}
