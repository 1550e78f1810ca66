// SPDX-License-Identifier: MIT
/*
 * Writing cluster files (`supervisor cluster ...`): a libconfig tree is
 * edited, rendered in one canonical layout, checked by the same loader
 * every node uses, and only then written: to FILE.tmp, fsynced, the old
 * file kept as FILE.bak, renamed into place. A change that would not load
 * is never written. The edits themselves (init, spokes in and out, keys)
 * are here too, so that the command only parses arguments and handles
 * secrets and bundles.
 */
#include "conf/conf_edit.h"
#include "conf/conf.h"
#include "conf/conf_internal.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void render_value(FILE *f, const config_setting_t *s, int depth);

static void render_string(FILE *f, const char *v)
{
	fputc('"', f);
	for (; *v; v++) {
		if (*v == '"' || *v == '\\')
			fputc('\\', f);
		fputc(*v, f);
	}
	fputc('"', f);
}

static bool is_scalar_group(const config_setting_t *s)
{
	for (int i = 0; i < config_setting_length(s); i++) {
		int t = config_setting_type(config_setting_get_elem(s, (unsigned)i));

		if (t == CONFIG_TYPE_GROUP || t == CONFIG_TYPE_LIST)
			return false;
	}
	return config_setting_length(s) <= 6;
}

static void render_members(FILE *f, const config_setting_t *s, int depth, bool inline_)
{
	for (int i = 0; i < config_setting_length(s); i++) {
		const config_setting_t *m = config_setting_get_elem(s, (unsigned)i);

		if (inline_)
			fputc(' ', f);
		else
			fprintf(f, "%*s", depth * 2, "");
		fprintf(f, "%s = ", config_setting_name(m));
		render_value(f, m, depth);
		fputc(';', f);
		if (!inline_)
			fputc('\n', f);
	}
}

static void render_value(FILE *f, const config_setting_t *s, int depth)
{
	int n = config_setting_length(s);

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
		fprintf(f, "%d", config_setting_get_int(s));
		break;
	case CONFIG_TYPE_INT64:
		fprintf(f, "%lldL", config_setting_get_int64(s));
		break;
	case CONFIG_TYPE_FLOAT:
		fprintf(f, "%g", config_setting_get_float(s));
		break;
	case CONFIG_TYPE_BOOL:
		fputs(config_setting_get_bool(s) ? "true" : "false", f);
		break;
	case CONFIG_TYPE_STRING:
		render_string(f, config_setting_get_string(s));
		break;
	case CONFIG_TYPE_ARRAY:
		fputs("[", f);
		for (int i = 0; i < n; i++) {
			fputs(i ? ", " : " ", f);
			render_value(f, config_setting_get_elem(s, (unsigned)i), depth);
		}
		fputs(n ? " ]" : "]", f);
		break;
	case CONFIG_TYPE_LIST:
		/* lists of groups (spokes, acl, children): one element per line */
		fputs("(\n", f);
		for (int i = 0; i < n; i++) {
			fprintf(f, "%*s", (depth + 1) * 2, "");
			render_value(f, config_setting_get_elem(s, (unsigned)i), depth + 1);
			fputs(i + 1 < n ? ",\n" : "\n", f);
		}
		fprintf(f, "%*s)", depth * 2, "");
		break;
	case CONFIG_TYPE_GROUP:
		if (is_scalar_group(s)) {
			fputc('{', f);
			render_members(f, s, depth + 1, true);
			fputs(" }", f);
		} else {
			fputs("{\n", f);
			render_members(f, s, depth + 1, false);
			fprintf(f, "%*s}", depth * 2, "");
		}
		break;
	default:
		fputs("\"?\"", f);
	}
}

char *conf_edit_render(const config_t *cfg, const char *header)
{
	const config_setting_t *root = config_root_setting(cfg);
	char *out = NULL;
	size_t len = 0;
	FILE *f = xmemstream(&out, &len);

	if (header)
		fputs(header, f);
	for (int i = 0; i < config_setting_length(root); i++) {
		const config_setting_t *m = config_setting_get_elem(root, (unsigned)i);

		fprintf(f, "%s%s = ", i && config_setting_type(m) == CONFIG_TYPE_LIST ? "\n" : "",
			config_setting_name(m));
		render_value(f, m, 0);
		fputs(";\n", f);
	}
	if (fclose(f) != 0)
		fatalx("conf", "out of memory");
	return out;
}

int conf_edit_save(const char *path, const config_t *cfg, const char *header, struct conf_diag *diag)
{
	_cleanup_free_ char *text = conf_edit_render(cfg, header);
	_cleanup_free_ char *tmp = xasprintf("%s.tmp", path);
	_cleanup_free_ char *bak = xasprintf("%s.bak", path);
	struct conf *check = NULL;
	size_t len = strlen(text);
	int fd, r = 0;

	/* The result must load for the hub (every node parses the same file). */
	if (conf_load_string(text, path, conf_hub_name(cfg), &check, diag) != 0)
		return CONF_E_INVALID;
	conf_free(check);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	r = write_all(fd, text, len);
	if (!r && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (!r && access(path, F_OK) == 0) {
		unlink(bak);
		if (link(path, bak) < 0)
			r = -errno;
	}
	if (!r && rename(tmp, path) < 0)
		r = -errno;
	if (r)
		unlink(tmp);
	return r;
}

const char *conf_hub_name(const config_t *cfg)
{
	const char *name = NULL;

	if (!config_lookup_string(cfg, "hub.name", &name))
		return "hub";
	return name;
}

/* ---- the edits -------------------------------------------------------------- */

static void set_string(config_setting_t *group, const char *name, const char *value)
{
	config_setting_t *s = config_setting_get_member(group, name);

	if (!s)
		s = config_setting_add(group, name, CONFIG_TYPE_STRING);
	config_setting_set_string(s, value);
}

static void set_int(config_setting_t *group, const char *name, int value)
{
	config_setting_set_int(config_setting_add(group, name, CONFIG_TYPE_INT), value);
}

static config_setting_t *add_array(config_setting_t *group, const char *name, const char *const *values,
				   size_t n)
{
	config_setting_t *a = config_setting_add(group, name, CONFIG_TYPE_ARRAY);

	for (size_t i = 0; i < n; i++)
		config_setting_set_string_elem(a, -1, values[i]);
	return a;
}

static uint32_t host_mask(uint8_t prefix)
{
	return prefix ? ~(uint32_t)0 << (32 - prefix) : 0;
}

int conf_edit_init(config_t *cfg, const struct conf_edit_hub *h)
{
	config_setting_t *root = config_root_setting(cfg), *g, *hub;
	struct conf_cidr net;
	struct in_addr first;
	char ip[16];

	if (!conf_parse_cidr(h->network, &net))
		return -EINVAL;
	first.s_addr = htonl((ntohl(net.addr.s_addr) & host_mask(net.prefix)) + 1);
	g = config_setting_add(root, "cluster", CONFIG_TYPE_GROUP);
	set_string(g, "network", h->network);
	set_int(g, "port", 51820);
	set_int(g, "keepalive", 25);
	set_int(g, "fresh_handshake", 180);
	hub = config_setting_add(root, "hub", CONFIG_TYPE_GROUP);
	set_string(hub, "name", "hub");
	set_string(hub, "overlay_ip", conf_ip_str(first, ip));
	set_string(hub, "endpoint", h->endpoint);
	set_string(hub, "public_key", h->public_key);
	if (h->n_ssh_from)
		add_array(hub, "ssh_from", h->ssh_from, h->n_ssh_from);
	set_string(config_setting_add(hub, "keys", CONFIG_TYPE_GROUP), "private_key_file", h->private_key_file);
	config_setting_add(root, "spokes", CONFIG_TYPE_LIST);
	set_string(config_setting_add(root, "keys", CONFIG_TYPE_GROUP), "private_key_env", "WG_PRIVATE_KEY");
	set_string(config_setting_add(root, "postgres", CONFIG_TYPE_GROUP), "password_env", "REPLICATION_PASSWORD");
	return 0;
}

config_setting_t *conf_edit_find_spoke(config_t *cfg, const char *name, int *index)
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

config_setting_t *conf_edit_find_node(config_t *cfg, const char *name)
{
	if (strcmp(name, conf_hub_name(cfg)) == 0)
		return config_lookup(cfg, "hub");
	return conf_edit_find_spoke(cfg, name, NULL);
}

const char *conf_edit_spoke_role(const config_setting_t *spoke)
{
	const char *role = NULL;
	const config_setting_t *pg = config_setting_get_member(spoke, "postgres");

	if (pg && config_setting_type(pg) == CONFIG_TYPE_STRING)
		return config_setting_get_string(pg);
	if (pg && config_setting_lookup_string(pg, "role", &role))
		return role;
	return "none";
}

const char *conf_edit_primary_name(config_t *cfg)
{
	config_setting_t *spokes = config_lookup(cfg, "spokes");
	const char *n = NULL;

	for (int i = 0; spokes && i < config_setting_length(spokes); i++) {
		config_setting_t *s = config_setting_get_elem(spokes, (unsigned)i);

		if (strcmp(conf_edit_spoke_role(s), "primary") == 0 && config_setting_lookup_string(s, "name", &n))
			return n;
	}
	return NULL;
}

const char *conf_edit_hub_key_file(const config_t *cfg)
{
	const char *path = NULL;

	if (config_lookup_string(cfg, "hub.keys.private_key_file", &path) ||
	    config_lookup_string(cfg, "keys.private_key_file", &path))
		return path;
	return NULL;
}

static bool ip_taken(const config_t *cfg, const char *ip)
{
	config_setting_t *spokes = config_lookup(cfg, "spokes");
	const char *have = NULL;

	if (config_lookup_string(cfg, "hub.overlay_ip", &have) && strcmp(have, ip) == 0)
		return true;
	for (int i = 0; spokes && i < config_setting_length(spokes); i++)
		if (config_setting_lookup_string(config_setting_get_elem(spokes, (unsigned)i), "overlay_ip", &have) &&
		    strcmp(have, ip) == 0)
			return true;
	return false;
}

int conf_edit_next_ip(const config_t *cfg, char out[16])
{
	const char *text = CONF_DEFAULT_NETWORK;
	struct conf_cidr net;
	uint32_t first, mask;

	config_lookup_string(cfg, "cluster.network", &text);
	if (!conf_parse_cidr(text, &net) || net.prefix < 8 || net.prefix > 30)
		return -EINVAL;
	mask = host_mask(net.prefix);
	first = ntohl(net.addr.s_addr) & mask;
	/* .1 is the hub's, .2 to .10 are left for people; never the broadcast address */
	for (uint32_t h = first + 11; (h & mask) == first && (h | mask) != ~0u; h++) {
		if (!ip_taken(cfg, conf_ip_str((struct in_addr){ htonl(h) }, out)))
			return 0;
	}
	return -ENOSPC;
}

/* Replication both ways between @a and @b on 5432, when the file has an acl (or @create). */
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

		add_array(e, "from", &pair[k][0], 1);
		add_array(e, "to", &pair[k][1], 1);
		config_setting_set_int_elem(config_setting_add(e, "tcp", CONFIG_TYPE_ARRAY), -1, 5432);
	}
}

void conf_edit_add_spoke(config_t *cfg, const char *name, const char *ip, const char *public_key,
			 const char *upstream, bool acl_create)
{
	config_setting_t *spokes = config_lookup(cfg, "spokes");
	config_setting_t *s;

	if (!spokes)
		spokes = config_setting_add(config_root_setting(cfg), "spokes", CONFIG_TYPE_LIST);
	s = config_setting_add(spokes, NULL, CONFIG_TYPE_GROUP);
	set_string(s, "name", name);
	set_string(s, "overlay_ip", ip);
	set_string(s, "public_key", public_key);
	set_string(s, "postgres", upstream ? "replica" : "primary");
	if (upstream) {
		set_string(s, "upstream", upstream);
		acl_replication(cfg, name, upstream, acl_create);
	}
}

/* @name leaves every acl entry; an entry left with no one on a side goes, and an empty acl. */
static void acl_remove(config_t *cfg, const char *name)
{
	config_setting_t *acl = config_lookup(cfg, "acl");

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
		config_setting_remove(config_root_setting(cfg), "acl");
}

int conf_edit_remove_spoke(config_t *cfg, const char *name, const char **blocker)
{
	config_setting_t *spokes = config_lookup(cfg, "spokes"), *spoke;
	int idx = -1;

	if (!(spoke = conf_edit_find_spoke(cfg, name, &idx)))
		return CONF_EDIT_E_UNKNOWN;
	if (strcmp(conf_edit_spoke_role(spoke), "primary") == 0)
		return CONF_EDIT_E_PRIMARY;
	for (int i = 0; i < config_setting_length(spokes); i++) {
		const char *up = NULL, *n = NULL;
		config_setting_t *s = config_setting_get_elem(spokes, (unsigned)i);

		if (config_setting_lookup_string(s, "upstream", &up) && strcmp(up, name) == 0 &&
		    config_setting_lookup_string(s, "name", &n)) {
			*blocker = n;
			return CONF_EDIT_E_UPSTREAM;
		}
	}
	config_setting_remove_elem(spokes, (unsigned)idx);
	acl_remove(cfg, name);
	return 0;
}

int conf_edit_set_public_key(config_t *cfg, const char *name, const char *public_key)
{
	config_setting_t *node = conf_edit_find_node(cfg, name);

	if (!node)
		return CONF_EDIT_E_UNKNOWN;
	set_string(node, "public_key", public_key);
	return 0;
}
