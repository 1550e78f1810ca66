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
 */
#include "cli/cli.h"

#include <arpa/inet.h>
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

/* The replication password, next to the cluster file: made once. */
static char *replication_password(const char *conf_path, bool create)
{
	_cleanup_free_ char *dir = xstrdup(conf_path);
	_cleanup_free_ char *path = xasprintf("%s/replication.pass", dirname(dir));
	char buf[128];
	FILE *f = fopen(path, "re");

	if (f) {
		char *line = fgets(buf, sizeof(buf), f);

		fclose(f);
		return line ? xstrdup(str_trim_right(line)) : NULL;
	}
	if (!create)
		return NULL;
	{
		char a[WG_KEY_B64_LEN + 1], b[WG_KEY_B64_LEN + 1], *p, *q;

		if (new_pair(a, b) < 0)
			return NULL;
		/* 32 random bytes, as letters and digits only (no quoting anywhere) */
		for (p = q = a; *p; p++)
			if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'))
				*q++ = *p;
		*q = '\0';
		snprintf(buf, sizeof(buf), "%s\n", a);
		explicit_zero(a, sizeof(a));
		if (write_secret(path, buf, false) < 0)
			return NULL;
		printf("replication password: new, in %s (0600)\n", path);
		return xstrdup(str_trim_right(buf));
	}
}

/*
 * DIR/NAME/: spoke.env (0600: the spoke's secrets, for Dstack's encrypted
 * environment), cluster.conf, docker-compose.yml (its service alone).
 */
static int write_bundle(const char *dir, const char *name, const char *priv_b64, const char *conf_path)
{
	_cleanup_free_ char *d = xasprintf("%s/%s", dir, name);
	_cleanup_free_ char *env = xasprintf("%s/spoke.env", d);
	_cleanup_free_ char *compose = xasprintf("%s/docker-compose.yml", d);
	_cleanup_free_ char *copy = xasprintf("%s/cluster.conf", d);
	_cleanup_free_ char *pass = replication_password(conf_path, false);
	_cleanup_free_ char *text = NULL;
	_cleanup_fclose_ FILE *in = NULL, *out = NULL;
	char buf[4096];
	size_t n;
	int r;

	if ((mkdir(dir, 0700) < 0 && errno != EEXIST) || (mkdir(d, 0700) < 0 && errno != EEXIST))
		return -errno;
	text = xasprintf("# %s: Dstack encrypted environment variables. Enter them, then delete this file.\n"
			 "%s%s%s"
			 "REPLICATION_PASSWORD=%s\n", name,
			 priv_b64 ? "WG_PRIVATE_KEY=" : "# WG_PRIVATE_KEY: the key made on the spoke (--pubkey)\n",
			 priv_b64 ? priv_b64 : "", priv_b64 ? "\n" : "", pass ? pass : "");
	r = write_secret(env, text, true);
	explicit_zero(text, strlen(text));
	if (r < 0)
		return r;
	out = fopen(compose, "we");
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
	in = fopen(conf_path, "re");
	fclose(out);
	out = fopen(copy, "we");
	if (!in || !out)
		return -errno;
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		fwrite(buf, 1, n, out);
	printf("bundle for %s: %s/ (spoke.env is 0600: its secrets, for the Dstack encrypted environment)\n",
	       name, d);
	return 0;
}

/* ---- the tree ------------------------------------------------------------------- */

static config_setting_t *find_spoke(config_t *cfg, const char *name, int *index)
{
	config_setting_t *spokes = config_lookup(cfg, "spokes");

	for (int i = 0; spokes && i < config_setting_length(spokes); i++) {
		config_setting_t *s = config_setting_get_elem(spokes, (unsigned)i);
		const char *n = NULL;

		if (config_setting_lookup_string(s, "name", &n) && strcmp(n, name) == 0) {
			if (index)
				*index = i;
			return s;
		}
	}
	return NULL;
}

static void set_string(config_setting_t *group, const char *name, const char *value)
{
	config_setting_t *s = config_setting_get_member(group, name);

	if (!s)
		s = config_setting_add(group, name, CONFIG_TYPE_STRING);
	config_setting_set_string(s, value);
}

static const char *spoke_role(const config_setting_t *s)
{
	const char *role = NULL;
	const config_setting_t *pg = config_setting_get_member(s, "postgres");

	if (pg && config_setting_type(pg) == CONFIG_TYPE_STRING)
		return config_setting_get_string(pg);
	if (pg && config_setting_lookup_string(pg, "role", &role))
		return role;
	return "none";
}

static const char *primary_name(config_t *cfg)
{
	config_setting_t *spokes = config_lookup(cfg, "spokes");
	const char *n = NULL;

	for (int i = 0; spokes && i < config_setting_length(spokes); i++) {
		config_setting_t *s = config_setting_get_elem(spokes, (unsigned)i);

		if (strcmp(spoke_role(s), "primary") == 0 && config_setting_lookup_string(s, "name", &n))
			return n;
	}
	return NULL;
}

/* The lowest free address from .11 up in cluster.network. */
static int next_ip(config_t *cfg, char out[16])
{
	const char *net = "10.88.0.0/24";
	char base[32], *slash;
	struct in_addr a;
	uint32_t first, mask, prefix;

	config_lookup_string(cfg, "cluster.network", &net);
	snprintf(base, sizeof(base), "%s", net);
	slash = strchr(base, '/');
	prefix = slash ? (uint32_t)strtoul(slash + 1, NULL, 10) : 24;
	if (slash)
		*slash = '\0';
	if (inet_pton(AF_INET, base, &a) != 1 || prefix < 8 || prefix > 30)
		return -EINVAL;
	mask = prefix ? ~0u << (32 - prefix) : 0;
	first = ntohl(a.s_addr) & mask;
	for (uint32_t h = first + 11; (h & mask) == first && (h | mask) != ~0u; h++) {
		struct in_addr c = { htonl(h) };
		bool used = false;
		const char *ip = NULL;
		config_setting_t *spokes = config_lookup(cfg, "spokes");

		inet_ntop(AF_INET, &c, out, 16);
		if (config_lookup_string(cfg, "hub.overlay_ip", &ip) && strcmp(ip, out) == 0)
			used = true;
		for (int i = 0; !used && spokes && i < config_setting_length(spokes); i++)
			used = config_setting_lookup_string(config_setting_get_elem(spokes, (unsigned)i),
							    "overlay_ip", &ip) && strcmp(ip, out) == 0;
		if (!used)
			return 0;
	}
	return -ENOSPC;
}

static config_setting_t *add_array(config_setting_t *group, const char *name, const char *const *values)
{
	config_setting_t *a = config_setting_add(group, name, CONFIG_TYPE_ARRAY);

	for (size_t i = 0; values[i]; i++)
		config_setting_set_string_elem(a, -1, values[i]);
	return a;
}

/* Replication both ways between @a and @b on 5432, when the file has an acl. */
static void acl_replication(config_t *cfg, const char *a, const char *b, bool create)
{
	config_setting_t *acl = config_lookup(cfg, "acl");
	const char *pair[2][2] = { { a, b }, { b, a } };

	if (!acl) {
		if (!create)
			return;
		acl = config_setting_add(config_root_setting(cfg), "acl", CONFIG_TYPE_LIST);
	}
	for (int k = 0; k < 2; k++) {
		config_setting_t *e = config_setting_add(acl, NULL, CONFIG_TYPE_GROUP);
		const char *from[] = { pair[k][0], NULL }, *to[] = { pair[k][1], NULL };
		config_setting_t *tcp;

		add_array(e, "from", from);
		add_array(e, "to", to);
		tcp = config_setting_add(e, "tcp", CONFIG_TYPE_ARRAY);
		config_setting_set_int_elem(tcp, -1, 5432);
	}
}

static config_setting_t *add_spoke_entry(config_t *cfg, const char *name, const char *ip, const char *pub,
					 const char *role, const char *upstream)
{
	config_setting_t *spokes = config_lookup(cfg, "spokes");
	config_setting_t *s;

	if (!spokes)
		spokes = config_setting_add(config_root_setting(cfg), "spokes", CONFIG_TYPE_LIST);
	s = config_setting_add(spokes, NULL, CONFIG_TYPE_GROUP);
	set_string(s, "name", name);
	set_string(s, "overlay_ip", ip);
	set_string(s, "public_key", pub);
	set_string(s, "postgres", role);
	if (upstream)
		set_string(s, "upstream", upstream);
	return s;
}

static int save(const char *path, config_t *cfg)
{
	struct conf_diag diag = { 0 };
	bool existed = access(path, F_OK) == 0;
	int r = conf_edit_save(path, cfg, HEADER, &diag);

	if (r == CONF_E_INVALID) {
		conf_diag_print(&diag, stderr);
		fprintf(stderr, "supervisor cluster: the change would not load; %s is unchanged\n", path);
		conf_diag_clear(&diag);
		return EXIT_CONFIG;
	}
	if (r < 0) {
		fprintf(stderr, "supervisor cluster: cannot write %s: %s\n", path, strerror(-r));
		return 1;
	}
	if (existed)
		printf("wrote %s (previous version: %s.bak)\n", path, path);
	else
		printf("wrote %s\n", path);
	return 0;
}

static int load_tree(const char *path, config_t *cfg)
{
	struct conf *c = NULL;
	int r;

	config_init(cfg); /* before anything: the caller destroys it either way */
	if (config_read_file(cfg, path) != CONFIG_TRUE) {
		fprintf(stderr, "%s:%d: %s\n", path, config_error_line(cfg), config_error_text(cfg));
		return EXIT_CONFIG;
	}
	/* Only a file that loads is edited: its own errors come first. */
	if ((r = cli_load_conf(path, conf_hub_name(cfg), &c)))
		return r;
	conf_free(c);
	return 0;
}

/* A new spoke's key: made here (into its bundle) or given (made on the spoke). */
static int spoke_key(const struct cluster_args *a, char priv[WG_KEY_B64_LEN + 1], char pub[WG_KEY_B64_LEN + 1],
		     bool *made)
{
	uint8_t k[WG_KEY_LEN];

	*made = false;
	if (a->pubkey) {
		if (!wgkey_from_base64(a->pubkey, k)) {
			fprintf(stderr, "supervisor cluster: --pubkey is not a WireGuard public key\n");
			return EXIT_USAGE;
		}
		snprintf(pub, WG_KEY_B64_LEN + 1, "%s", a->pubkey);
		return 0;
	}
	if (new_pair(priv, pub) < 0) {
		fprintf(stderr, "supervisor cluster: no random source\n");
		return 1;
	}
	*made = true;
	return 0;
}

static void next_steps(const char *path)
{
	printf("next: copy %s to every node (hub and spokes), then run `supervisor ctl reload` on each\n", path);
}

/* ---- commands ---------------------------------------------------------------------- */

static int cluster_init(const struct cluster_args *a)
{
	_cleanup_(config_destroyp) config_t cfg;
	_cleanup_free_ char *names = xstrdup(a->spokes ? a->spokes : "");
	_cleanup_free_ char *pass = NULL;
	config_setting_t *root, *g, *hub;
	char hub_pub[WG_KEY_B64_LEN + 1], ip[16];
	const char *primary = NULL;
	char *save_ptr = NULL, privs[64][WG_KEY_B64_LEN + 1];
	const char *made_for[64];
	size_t n_made = 0;
	int r;

	config_init(&cfg);
	if (!a->endpoint || !a->spokes) {
		fprintf(stderr, "supervisor cluster init: give --endpoint HOST:PORT and --spokes NAME[,NAME...]\n");
		return EXIT_USAGE;
	}
	if (access(a->path, F_OK) == 0) {
		fprintf(stderr, "supervisor cluster init: %s exists; nothing changed (add-spoke, remove-spoke and "
			"rotate-key edit it)\n", a->path);
		return 1;
	}
	if ((r = hub_key(a->hub_key, hub_pub)) < 0) {
		fprintf(stderr, "supervisor cluster init: hub key %s: %s\n", a->hub_key, strerror(-r));
		return 1;
	}
	pass = replication_password(a->path, true);
	if (!pass) {
		fprintf(stderr, "supervisor cluster init: cannot make the replication password next to %s\n", a->path);
		return 1;
	}
	root = config_root_setting(&cfg);
	g = config_setting_add(root, "cluster", CONFIG_TYPE_GROUP);
	set_string(g, "network", a->network);
	config_setting_set_int(config_setting_add(g, "port", CONFIG_TYPE_INT), 51820);
	config_setting_set_int(config_setting_add(g, "keepalive", CONFIG_TYPE_INT), 25);
	config_setting_set_int(config_setting_add(g, "fresh_handshake", CONFIG_TYPE_INT), 180);
	hub = config_setting_add(root, "hub", CONFIG_TYPE_GROUP);
	set_string(hub, "name", "hub");
	{
		char base[32], *dot;

		snprintf(base, sizeof(base), "%s", a->network);
		dot = strrchr(base, '.');
		if (!dot) {
			fprintf(stderr, "supervisor cluster init: --network %s is not a.b.c.d/N\n", a->network);
			return EXIT_USAGE;
		}
		strcpy(dot, ".1");
		set_string(hub, "overlay_ip", base);
	}
	set_string(hub, "endpoint", a->endpoint);
	set_string(hub, "public_key", hub_pub);
	if (a->n_ssh_from) {
		const char *v[17] = { 0 };

		memcpy(v, a->ssh_from, a->n_ssh_from * sizeof(*v));
		add_array(hub, "ssh_from", v);
	}
	set_string(config_setting_add(hub, "keys", CONFIG_TYPE_GROUP), "private_key_file", a->hub_key);
	config_setting_add(root, "spokes", CONFIG_TYPE_LIST);
	set_string(config_setting_add(root, "keys", CONFIG_TYPE_GROUP), "private_key_env", "WG_PRIVATE_KEY");
	set_string(config_setting_add(root, "postgres", CONFIG_TYPE_GROUP), "password_env", "REPLICATION_PASSWORD");
	for (char *n = strtok_r(names, ",", &save_ptr); n; n = strtok_r(NULL, ",", &save_ptr)) {
		char pub[WG_KEY_B64_LEN + 1];
		bool made;

		if (n_made == ARRAY_SIZE(privs) || next_ip(&cfg, ip) < 0 ||
		    spoke_key(&(struct cluster_args){ 0 }, privs[n_made], pub, &made)) {
			fprintf(stderr, "supervisor cluster init: too many spokes, or no free address\n");
			r = 1;
			goto out;
		}
		made_for[n_made++] = n;
		add_spoke_entry(&cfg, n, ip, pub, primary ? "replica" : "primary", primary);
		if (primary)
			acl_replication(&cfg, n, primary, true);
		else
			primary = n;
		printf("spoke %s: %s, %s\n", n, ip, primary == n ? "primary" : "replica");
	}
	r = save(a->path, &cfg);
	/* bundles once the file is final: each carries a copy of it */
	for (size_t i = 0; r == 0 && i < n_made; i++)
		if (write_bundle(a->bundle, made_for[i], privs[i], a->path) < 0) {
			fprintf(stderr, "supervisor cluster init: cannot write the bundle in %s: %s\n", a->bundle,
				strerror(errno));
			r = 1;
		}
	if (r == 0)
		printf("next: run the hub (setup-hub.sh or `supervisor run`), then deploy each spoke with its bundle\n");
out:
	explicit_zero(privs, sizeof(privs));
	return r;
}

static int cluster_add_spoke(const struct cluster_args *a, const char *name, bool quiet)
{
	_cleanup_(config_destroyp) config_t cfg;
	char priv[WG_KEY_B64_LEN + 1] = "", pub[WG_KEY_B64_LEN + 1], ip[16];
	const char *primary, *upstream;
	bool made;
	int r;

	if ((r = load_tree(a->path, &cfg)))
		return r;
	if (find_spoke(&cfg, name, NULL) || strcmp(name, conf_hub_name(&cfg)) == 0) {
		fprintf(stderr, "supervisor cluster add-spoke: %s is already in %s\n", name, a->path);
		return 1;
	}
	if (next_ip(&cfg, ip) < 0) {
		fprintf(stderr, "supervisor cluster add-spoke: no free address in cluster.network\n");
		return 1;
	}
	primary = primary_name(&cfg);
	upstream = a->primary ? NULL : a->upstream ? a->upstream : primary;
	if ((r = spoke_key(a, priv, pub, &made)))
		return r;
	add_spoke_entry(&cfg, name, ip, pub, upstream ? "replica" : "primary", upstream);
	if (upstream)
		acl_replication(&cfg, name, upstream, false);
	if ((r = save(a->path, &cfg))) {
		explicit_zero(priv, sizeof(priv));
		return r;
	}
	if (!quiet)
		printf("spoke %s: %s, %s%s%s\n", name, ip, upstream ? "replica of " : "primary",
		       upstream ? upstream : "", made ? ", key pair made here" : ", its own key");
	r = write_bundle(a->bundle, name, made ? priv : NULL, a->path);
	explicit_zero(priv, sizeof(priv));
	if (r < 0) {
		fprintf(stderr, "supervisor cluster: cannot write the bundle in %s: %s\n", a->bundle, strerror(-r));
		return 1;
	}
	if (!quiet)
		next_steps(a->path);
	return 0;
}

static int cluster_remove_spoke(const struct cluster_args *a, const char *name)
{
	_cleanup_(config_destroyp) config_t cfg;
	config_setting_t *spokes, *acl;
	int idx = -1, r;

	if ((r = load_tree(a->path, &cfg)))
		return r;
	if (!find_spoke(&cfg, name, &idx)) {
		fprintf(stderr, "supervisor cluster remove-spoke: no spoke named %s in %s\n", name, a->path);
		return 1;
	}
	if (strcmp(spoke_role(find_spoke(&cfg, name, NULL)), "primary") == 0) {
		fprintf(stderr, "supervisor cluster remove-spoke: %s is the primary; make another spoke the primary "
			"first\n", name);
		return 1;
	}
	spokes = config_lookup(&cfg, "spokes");
	for (int i = 0; i < config_setting_length(spokes); i++) {
		const char *up = NULL, *n = NULL;
		config_setting_t *s = config_setting_get_elem(spokes, (unsigned)i);

		if (config_setting_lookup_string(s, "upstream", &up) && strcmp(up, name) == 0 &&
		    config_setting_lookup_string(s, "name", &n)) {
			fprintf(stderr, "supervisor cluster remove-spoke: %s replicates from %s; give it another "
				"upstream first\n", n, name);
			return 1;
		}
	}
	config_setting_remove_elem(spokes, (unsigned)idx);
	/* the spoke leaves every acl entry; an entry left with no one on a side goes */
	acl = config_lookup(&cfg, "acl");
	for (int i = acl ? config_setting_length(acl) - 1 : -1; i >= 0; i--) {
		config_setting_t *e = config_setting_get_elem(acl, (unsigned)i);
		bool empty = false;

		for (int side = 0; side < 2; side++) {
			config_setting_t *arr = config_setting_get_member(e, side ? "to" : "from");

			for (int k = arr ? config_setting_length(arr) - 1 : -1; k >= 0; k--)
				if (strcmp(config_setting_get_string_elem(arr, k), name) == 0)
					config_setting_remove_elem(arr, (unsigned)k);
			empty |= arr && config_setting_length(arr) == 0;
		}
		if (empty)
			config_setting_remove_elem(acl, (unsigned)i);
	}
	if (acl && config_setting_length(acl) == 0)
		config_setting_remove(config_root_setting(&cfg), "acl");
	if ((r = save(a->path, &cfg)))
		return r;
	printf("removed %s; its data and backups stay on its node until you delete them\n", name);
	next_steps(a->path);
	return 0;
}

static int cluster_rotate_key(const struct cluster_args *a, const char *name)
{
	_cleanup_(config_destroyp) config_t cfg;
	const char *a_hub_key = a->hub_key;
	char priv[WG_KEY_B64_LEN + 2] = "", pub[WG_KEY_B64_LEN + 1];
	config_setting_t *node;
	bool made, hub;
	int r;

	if ((r = load_tree(a->path, &cfg)))
		return r;
	hub = strcmp(name, conf_hub_name(&cfg)) == 0;
	node = hub ? config_lookup(&cfg, "hub") : find_spoke(&cfg, name, NULL);
	if (hub) {
		/* the key file the hub actually reads */
		const char *path = NULL;

		if (config_lookup_string(&cfg, "hub.keys.private_key_file", &path) ||
		    config_lookup_string(&cfg, "keys.private_key_file", &path))
			a_hub_key = path;
	}
	if (!node) {
		fprintf(stderr, "supervisor cluster rotate-key: no node named %s in %s\n", name, a->path);
		return 1;
	}
	if ((r = spoke_key(a, priv, pub, &made)))
		return r;
	set_string(node, "public_key", pub);
	if (hub && made) {
		/* the new key waits next to the old one until the file is written */
		_cleanup_free_ char *next = xasprintf("%s.new", a_hub_key);

		strcat(priv, "\n");
		r = write_secret(next, priv, true);
		explicit_zero(priv, sizeof(priv));
		if (r < 0 || (r = save(a->path, &cfg)) != 0) {
			fprintf(stderr, "supervisor cluster rotate-key: hub key not changed\n");
			unlink(next);
			return r > 0 ? r : 1;
		}
		if (rename(next, a_hub_key) < 0) {
			/* the file already names the new key: put the old file back, one verdict */
			_cleanup_free_ char *bak = xasprintf("%s.bak", a->path);
			int e = errno;
			bool restored = rename(bak, a->path) == 0;

			fprintf(stderr, "supervisor cluster rotate-key: cannot install %s: %s; hub key not changed, %s\n",
				a_hub_key, strerror(e), restored ? "the previous cluster file is back in place" :
				"put the previous cluster file back from its .bak");
			unlink(next);
			return 1;
		}
		printf("hub key: new, in %s; reload the hub together with the spokes\n", a_hub_key);
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
			return 1;
		}
	}
	printf("%s: new public key %s; %s, then reload every node\n", name, pub,
	       made ? "put the new private key on it (its bundle's spoke.env)" : "the spoke already has its key");
	next_steps(a->path);
	return 0;
}

int cmd_cluster(const struct cli_command *cmd, int argc, char **argv)
{
	struct cluster_args a = { .path = conf_default_path(), .network = "10.88.0.0/24",
				  .hub_key = "/etc/supervisor/wg.key", .bundle = "./spoke-bundles" };
	_cleanup_free_ char *hub_key_abs = NULL;
	const char *what;
	int opt;

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
	if (strcmp(what, "init") == 0 && optind == argc)
		return cluster_init(&a);
	if (optind != argc - 1) {
		cli_command_usage(cmd, stderr);
		return EXIT_USAGE;
	}
	if (strcmp(what, "add-spoke") == 0)
		return cluster_add_spoke(&a, argv[optind], false);
	if (strcmp(what, "remove-spoke") == 0)
		return cluster_remove_spoke(&a, argv[optind]);
	if (strcmp(what, "rotate-key") == 0)
		return cluster_rotate_key(&a, argv[optind]);
	cli_command_usage(cmd, stderr);
	return EXIT_USAGE;
}
