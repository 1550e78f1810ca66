// SPDX-License-Identifier: MIT
/*
 * The libconfig walk. Every group of the cluster file is described by a
 * table of keys (name, type, where it goes, limits); one generic routine
 * checks each setting against its table, so unknown keys, wrong types,
 * missing keys and bad values are all reported the same way, with the
 * line libconfig recorded for the setting. Checks that need more than one
 * value (duplicates, references) live in conf_validate.c.
 */
#include "conf/conf_internal.h"
#include "child/child.h"
#include "lib/common.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "lib/wgkey.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum vtype {
	VT_PATH,      /* absolute path */
	VT_NAME,      /* node name */
	VT_IDENT,     /* postgres role name, env variable name */
	VT_IFNAME,
	VT_UINT,      /* integer in [min, max], stored as uint32_t */
	VT_U16,       /* integer in [min, max], stored as uint16_t */
	VT_U64,       /* integer in [min, max] (libconfig's 64-bit L suffix too), as uint64_t */
	VT_MTU,       /* "auto" (stored as 0) or an integer in [min, max], as uint16_t */
	VT_IPV4,
	VT_CIDR,
	VT_WGKEY,
	VT_HOSTPORT,  /* host:port, host a name or address (endpoints) */
	VT_LISTEN,    /* address:port, the address a literal (listen) */
	VT_ENUM,      /* one of choices[], stored as int */
	VT_SCHEDULE,
	VT_LOGLEVEL,
	VT_NAMES,     /* list of strings -> struct name_list */
	VT_BOOL,
	VT_SECONDS,   /* whole seconds in [min, max], stored as uint32_t milliseconds */
	VT_STOPPLAN,  /* "SIGINT/30s SIGQUIT/5s" into a struct conf_child */
	VT_CHILDREN,  /* list of child groups into a struct raw_node */
	VT_CIDRS,     /* list of CIDRs -> (struct conf_cidr *, size_t) */
	VT_PORTS,     /* list of ports -> struct port_list */
	VT_GROUP,     /* nested group parsed with .sub into base + offset */
	VT_ROLE_OR_GROUP, /* spoke postgres: "primary", or { role = ...; port = ...; } */
	VT_FORBIDDEN, /* a key that must not be here; .hint says why */
};

struct group_spec;

struct key_spec {
	const char *name;
	enum vtype type;
	size_t offset;
	bool required;
	long long min, max;
	const char *const *choices;
	const struct group_spec *sub;
	const char *hint;
	size_t line_offset; /* where to store the setting's line; 0: nowhere */
};

struct group_spec {
	const struct key_spec *keys;
	size_t n_keys;
	/* Called before the keys are parsed (to reset a replaced group). */
	void (*begin)(void *target);
	/* Called after, for checks between keys of this group. */
	void (*finish)(struct load_ctx *ctx, const config_setting_t *s, const char *path,
		       void *target);
};

static const char *const pg_roles[] = { "none", "primary", "replica", NULL };
static const char *const backup_methods[] = { "pg_dump", "pgbackrest", NULL };
static const char *const ha_modes[] = { "off", "manual", "automatic", NULL };

/* ---- value parsers ----------------------------------------------------- */

static const char *type_name(int type)
{
	switch (type) {
	case CONFIG_TYPE_GROUP: return "a group { ... }";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64: return "an integer";
	case CONFIG_TYPE_FLOAT: return "a decimal number";
	case CONFIG_TYPE_STRING: return "a string";
	case CONFIG_TYPE_BOOL: return "a boolean";
	case CONFIG_TYPE_ARRAY:
	case CONFIG_TYPE_LIST: return "a list";
	default: return "empty";
	}
}

static int wanted_type(enum vtype t)
{
	switch (t) {
	case VT_UINT:
	case VT_U16:
	case VT_U64:
	case VT_SECONDS:
		return CONFIG_TYPE_INT;
	case VT_BOOL:
		return CONFIG_TYPE_BOOL;
	case VT_CHILDREN:
		return CONFIG_TYPE_NONE; /* a list of groups, checked by parse_children() */
	case VT_NAMES:
	case VT_CIDRS:
	case VT_PORTS:
		return CONFIG_TYPE_LIST;
	case VT_GROUP:
		return CONFIG_TYPE_GROUP;
	case VT_ROLE_OR_GROUP:
	case VT_MTU:
		return CONFIG_TYPE_NONE; /* checked in parse_value() */
	case VT_PATH:
	case VT_NAME:
	case VT_IDENT:
	case VT_IFNAME:
	case VT_IPV4:
	case VT_CIDR:
	case VT_WGKEY:
	case VT_HOSTPORT:
	case VT_LISTEN:
	case VT_ENUM:
	case VT_SCHEDULE:
	case VT_LOGLEVEL:
	case VT_STOPPLAN:
	case VT_FORBIDDEN:
		return CONFIG_TYPE_STRING;
	}
	return CONFIG_TYPE_NONE;
}

static bool type_matches(int want, int have)
{
	if (want == CONFIG_TYPE_INT)
		return have == CONFIG_TYPE_INT || have == CONFIG_TYPE_INT64;
	if (want == CONFIG_TYPE_LIST)
		return have == CONFIG_TYPE_LIST || have == CONFIG_TYPE_ARRAY;
	return want == have;
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CONF_NAME_MAX || !islower((unsigned char)s[0]) || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '-')
			return false;
	return true;
}

static bool valid_ident(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return false;
	return true;
}

static bool valid_ifname(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 15)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

static bool valid_hostname(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '.')
			return false;
	return s[0] != '-' && s[0] != '.';
}

#define STR_(x) #x
#define STR(x) STR_(x)
#define NAME_MAX_STR STR(CONF_NAME_MAX)

static bool valid_path(const char *s)
{
	return s[0] == '/' && !strchr(s, '\n') && strlen(s) <= 1024;
}

/* Strings that are stored as written once a predicate accepts them. */
static const struct {
	enum vtype type;
	bool (*valid)(const char *s);
	const char *problem;
} string_checks[] = {
	{ VT_PATH, valid_path, "is not an absolute path" },
	{ VT_NAME, valid_name,
	  "is not a valid node name (hint: lowercase letters, digits and '-', starting with a letter, at most " NAME_MAX_STR " characters)" },
	{ VT_IDENT, valid_ident, "is not a valid name (hint: letters, digits and '_')" },
	{ VT_IFNAME, valid_ifname,
	  "is not a valid interface name (hint: at most 15 characters, e.g. \"wg0\")" },
};

bool conf_parse_cidr(const char *s, struct conf_cidr *out)
{
	char buf[32];
	const char *slash = strchr(s, '/');
	char *end;
	long prefix;

	if (!slash || (size_t)(slash - s) >= sizeof(buf))
		return false;
	memcpy(buf, s, (size_t)(slash - s));
	buf[slash - s] = '\0';
	if (inet_pton(AF_INET, buf, &out->addr) != 1 || !isdigit((unsigned char)slash[1]))
		return false;
	prefix = strtol(slash + 1, &end, 10);
	if (*end || prefix < 0 || prefix > 32)
		return false;
	out->prefix = (uint8_t)prefix;
	return true;
}

static uint32_t prefix_mask(uint8_t prefix)
{
	return prefix ? htonl(~(uint32_t)0 << (32 - prefix)) : 0;
}

/*
 * host:port with the port last; an IPv6 host must be bracketed so the
 * colon split is unambiguous. @literal: the host must be an address.
 */
static bool parse_hostport(struct load_ctx *ctx, const char *s, bool literal,
			   struct conf_hostport *out)
{
	const char *colon = strrchr(s, ':');
	char host[256];
	char *end;
	long port;
	size_t hl;

	if (!colon || colon == s || !isdigit((unsigned char)colon[1]))
		return false;
	port = strtol(colon + 1, &end, 10);
	if (*end || port < 1 || port > 65535)
		return false;
	hl = (size_t)(colon - s);
	if (hl >= sizeof(host))
		return false;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (host[0] == '[') {
		struct in6_addr a6;

		if (hl < 3 || host[hl - 1] != ']')
			return false;
		host[hl - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &a6) != 1)
			return false;
		out->host = store_strdup(ctx->store, host + 1);
	} else {
		struct in_addr a4;

		if (strchr(host, ':'))
			return false;
		if (literal ? inet_pton(AF_INET, host, &a4) != 1 : !valid_hostname(host))
			return false;
		out->host = store_strdup(ctx->store, host);
	}
	out->port = (uint16_t)port;
	return true;
}

static void parse_name_list(struct load_ctx *ctx, const config_setting_t *s, const char *path,
			    struct name_list *out)
{
	int n = config_setting_length(s);

	out->names = store_alloc(ctx->store, sizeof(*out->names) * (size_t)(n ? n : 1));
	out->lines = store_alloc(ctx->store, sizeof(*out->lines) * (size_t)(n ? n : 1));
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *v = config_setting_get_string(e);

		if (!v) {
			diag_at(ctx, e, "%s[%d]: must be a string, not %s", path, i,
				type_name(config_setting_type(e)));
			continue;
		}
		out->names[out->n] = store_strdup(ctx->store, v);
		out->lines[out->n++] = config_setting_source_line(e);
	}
}

static void parse_port_list(struct load_ctx *ctx, const config_setting_t *s, const char *path,
			    struct port_list *out)
{
	int n = config_setting_length(s);

	out->ports = store_alloc(ctx->store, sizeof(*out->ports) * (size_t)(n ? n : 1));
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		int t = config_setting_type(e);
		long long v;

		if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
			diag_at(ctx, e, "%s[%d]: must be a port number, not %s", path, i, type_name(t));
			continue;
		}
		v = config_setting_get_int64(e);
		if (v < 1 || v > 65535) {
			diag_at(ctx, e, "%s[%d]: port %lld is out of range 1..65535", path, i, v);
			continue;
		}
		out->ports[out->n++] = (uint16_t)v;
	}
}

static void parse_cidr_list(struct load_ctx *ctx, const config_setting_t *s, const char *path,
			    void *dst)
{
	struct raw_node *rn = dst; /* only nodes carry CIDR lists (ssh_from) */
	int n = config_setting_length(s);

	rn->ssh_from = store_alloc(ctx->store, sizeof(*rn->ssh_from) * (size_t)(n ? n : 1));
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *v = config_setting_get_string(e);
		struct conf_cidr c;

		if (!v || !conf_parse_cidr(v, &c)) {
			diag_at(ctx, e, "%s[%d]: not an IPv4 network (hint: e.g. \"198.51.100.7/32\")",
				path, i);
			continue;
		}
		if (c.addr.s_addr & ~prefix_mask(c.prefix)) {
			diag_at(ctx, e, "%s[%d]: \"%s\" has host bits set", path, i, v);
			continue;
		}
		rn->ssh_from[rn->n_ssh_from++] = c;
	}
}

static void parse_group(struct load_ctx *ctx, const config_setting_t *g, const char *path,
			const struct group_spec *spec, void *target);
static void parse_children(struct load_ctx *ctx, const config_setting_t *s, const char *path,
			   struct raw_node *rn);

/* Parse one setting @s described by @k into @base. */
static void parse_value(struct load_ctx *ctx, const config_setting_t *s, const char *path,
			const struct key_spec *k, char *base)
{
	void *dst = base + k->offset;
	const char *str = config_setting_get_string(s);
	const char *why = NULL;

	if (k->line_offset)
		*(int *)(void *)(base + k->line_offset) = config_setting_source_line(s);

	switch (k->type) {
	case VT_FORBIDDEN:
		diag_at(ctx, s, "%s: not allowed here (hint: %s)", path, k->hint);
		return;
	case VT_GROUP:
		parse_group(ctx, s, path, k->sub, dst);
		return;
	case VT_ROLE_OR_GROUP:
		if (config_setting_is_group(s)) {
			parse_group(ctx, s, path, k->sub, base);
			return;
		}
		if (config_setting_type(s) != CONFIG_TYPE_STRING) {
			diag_at(ctx, s, "%s: must be a role (\"primary\", \"replica\", \"none\") or a group { role = ...; ... }, not %s",
				path, type_name(config_setting_type(s)));
			return;
		}
		k = k->sub->keys; /* the group's first key is the role itself */
		dst = base + k->offset;
		*(int *)(void *)(base + k->line_offset) = config_setting_source_line(s);
		goto enum_value;
	case VT_MTU:
		if (config_setting_type(s) == CONFIG_TYPE_STRING && !strcmp(config_setting_get_string(s), "auto")) {
			*(uint16_t *)dst = 0;
			return;
		}
		if (config_setting_type(s) != CONFIG_TYPE_INT && config_setting_type(s) != CONFIG_TYPE_INT64) {
			diag_at(ctx, s, "%s: must be \"auto\" or a number of bytes %lld..%lld, not %s", path,
				k->min, k->max, config_setting_type(s) == CONFIG_TYPE_STRING ?
				"another string" : type_name(config_setting_type(s)));
			return;
		}
		if (config_setting_get_int64(s) < k->min || config_setting_get_int64(s) > k->max) {
			diag_at(ctx, s, "%s: %lld is out of range %lld..%lld (hint: \"auto\" takes it from the path to the hub)",
				path, config_setting_get_int64(s), k->min, k->max);
			return;
		}
		*(uint16_t *)dst = (uint16_t)config_setting_get_int64(s);
		return;
	case VT_NAMES:
		parse_name_list(ctx, s, path, dst);
		return;
	case VT_PORTS:
		parse_port_list(ctx, s, path, dst);
		return;
	case VT_CHILDREN:
		parse_children(ctx, s, path, (struct raw_node *)(void *)base);
		return;
	case VT_BOOL:
		*(bool *)dst = config_setting_get_bool(s);
		return;
	case VT_STOPPLAN:
		if (!stop_plan_parse(str, dst, &why))
			diag_at(ctx, s, "%s: \"%s\": %s (hint: e.g. \"SIGINT/30s SIGQUIT/5s\"; SIGKILL follows the last step)",
				path, str, why);
		return;
	case VT_CIDRS:
		parse_cidr_list(ctx, s, path, base);
		return;
	case VT_UINT:
	case VT_U16:
	case VT_U64:
	case VT_SECONDS: {
		long long v = config_setting_get_int64(s);

		if (v < k->min || v > k->max) {
			diag_at(ctx, s, "%s: %lld is out of range %lld..%lld", path, v, k->min, k->max);
			return;
		}
		if (k->type == VT_U16)
			*(uint16_t *)dst = (uint16_t)v;
		else if (k->type == VT_U64)
			*(uint64_t *)dst = (uint64_t)v;
		else if (k->type == VT_SECONDS)
			*(uint32_t *)dst = (uint32_t)v * 1000;
		else
			*(uint32_t *)dst = (uint32_t)v;
		return;
	}
	case VT_PATH:
	case VT_NAME:
	case VT_IDENT:
	case VT_IFNAME:
		for (size_t i = 0; i < ARRAY_SIZE(string_checks); i++) {
			if (string_checks[i].type != k->type)
				continue;
			if (!string_checks[i].valid(str)) {
				diag_at(ctx, s, "%s: \"%s\" %s", path, str, string_checks[i].problem);
				return;
			}
		}
		*(const char **)dst = store_strdup(ctx->store, str);
		return;
	case VT_IPV4:
		if (inet_pton(AF_INET, str, dst) != 1)
			diag_at(ctx, s, "%s: \"%s\" is not an IPv4 address", path, str);
		return;
	case VT_CIDR: {
		struct conf_cidr *c = dst;

		if (!conf_parse_cidr(str, c) || c->prefix > 30 || c->prefix < 8) {
			diag_at(ctx, s, "%s: \"%s\" is not an IPv4 network (hint: e.g. \"" CONF_DEFAULT_NETWORK "\", prefix 8..30)",
				path, str);
			return;
		}
		if (c->addr.s_addr & ~prefix_mask(c->prefix)) {
			char ip[16];
			struct in_addr net = { .s_addr = c->addr.s_addr & prefix_mask(c->prefix) };

			diag_at(ctx, s, "%s: \"%s\" has host bits set (hint: did you mean \"%s/%u\"?)",
				path, str, conf_ip_str(net, ip), c->prefix);
			return;
		}
		ctx->have_network = true;
		return;
	}
	case VT_WGKEY: {
		uint8_t key[WG_KEY_LEN];

		if (!wgkey_from_base64(str, key)) {
			diag_at(ctx, s,
				"%s: not a WireGuard public key (hint: 44 characters of base64 for 32 bytes, as printed by `supervisor pubkey`)",
				path);
			return;
		}
		*(const char **)dst = store_strdup(ctx->store, str);
		return;
	}
	case VT_HOSTPORT:
	case VT_LISTEN:
		if (!parse_hostport(ctx, str, k->type == VT_LISTEN, dst))
			diag_at(ctx, s, "%s: \"%s\" is not %s:port (hint: %s)", path, str,
				k->type == VT_LISTEN ? "address" : "host", k->hint);
		return;
	case VT_ENUM:
	enum_value:
		for (int i = 0; k->choices[i]; i++) {
			if (strcmp(str, k->choices[i]) == 0) {
				*(int *)dst = i;
				return;
			}
		}
		{
			char list[256] = "";

			for (int i = 0; k->choices[i]; i++)
				snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s\"%s\"",
					 i ? ", " : "", k->choices[i]);
			diag_at(ctx, s, "%s: \"%s\" is not one of %s", path, str, list);
		}
		return;
	case VT_SCHEDULE:
		if (!schedule_parse(str, dst, &why)) {
			diag_at(ctx, s, "%s: \"%s\": %s (hint: \"daily 03:00\", \"hourly\", \"every 6h\", optionally followed by \"jitter 10m\")",
				path, str, why);
			return;
		}
		((struct conf_schedule *)dst)->text = store_strdup(ctx->store, str);
		return;
	case VT_LOGLEVEL:
		if (!log_level_parse(str, dst))
			diag_at(ctx, s, "%s: \"%s\" is not one of \"debug\", \"info\", \"warn\", \"error\"",
				path, str);
		return;
	}
}

static const struct key_spec *find_key(const struct group_spec *spec, const char *name)
{
	for (size_t i = 0; i < spec->n_keys; i++)
		if (strcmp(spec->keys[i].name, name) == 0)
			return &spec->keys[i];
	return NULL;
}

static void report_unknown(struct load_ctx *ctx, const config_setting_t *s, const char *path,
			   const char *name, const struct group_spec *spec)
{
	const char *best = NULL;
	unsigned best_d = 3;
	char known[512] = "";

	if (strcmp(name, "private_key") == 0 || strcmp(name, "password") == 0) {
		diag_at(ctx, s,
			"%s: secrets must not be written in the cluster file (hint: use keys.private_key_file or keys.private_key_env; postgres.password_file for passwords)",
			path);
		return;
	}
	for (size_t i = 0; i < spec->n_keys; i++) {
		unsigned d = edit_distance(name, spec->keys[i].name);

		if (spec->keys[i].type == VT_FORBIDDEN)
			continue;
		if (d < best_d) {
			best_d = d;
			best = spec->keys[i].name;
		}
		snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s",
			 known[0] ? ", " : "", spec->keys[i].name);
	}
	if (best)
		diag_at(ctx, s, "%s: unknown key (hint: did you mean \"%s\"?)", path, best);
	else
		diag_at(ctx, s, "%s: unknown key (hint: known keys here: %s)", path, known);
}

static void parse_group(struct load_ctx *ctx, const config_setting_t *g, const char *path,
			const struct group_spec *spec, void *target)
{
	bool seen[32] = { false };

	if (spec->begin)
		spec->begin(target);
	for (int i = 0; i < config_setting_length(g); i++) {
		const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
		const char *name = config_setting_name(s);
		_cleanup_free_ char *sub = xasprintf("%s.%s", path, name);
		const struct key_spec *k = find_key(spec, name);
		int want;

		if (!k) {
			report_unknown(ctx, s, sub, name, spec);
			continue;
		}
		seen[k - spec->keys] = true;
		want = wanted_type(k->type);
		if (want != CONFIG_TYPE_NONE && k->type != VT_FORBIDDEN &&
		    !type_matches(want, config_setting_type(s))) {
			diag_at(ctx, s, "%s: must be %s, not %s", sub, type_name(want),
				type_name(config_setting_type(s)));
			continue;
		}
		parse_value(ctx, s, sub, k, target);
	}
	for (size_t i = 0; i < spec->n_keys; i++)
		if (spec->keys[i].required && !seen[i])
			diag_at(ctx, g, "%s: missing required key \"%s\"", path, spec->keys[i].name);
	if (spec->finish)
		spec->finish(ctx, g, path, target);
}

/* ---- the tables -------------------------------------------------------- */

#define KEY(n, t, o) { .name = n, .type = t, .offset = o }
#define KEYX(n, t, o, ...) { .name = n, .type = t, .offset = o, __VA_ARGS__ }
#define SET(f) offsetof(struct conf_settings, f)
#define NODE(f) offsetof(struct raw_node, f)

static void keys_begin(void *target)
{
	struct conf_keys *k = target;

	/* A keys group replaces the inherited one as a whole: file XOR env. */
	k->private_key_file = NULL;
	k->private_key_env = NULL;
}

static void keys_finish(struct load_ctx *ctx, const config_setting_t *s, const char *path,
			void *target)
{
	struct conf_keys *k = target;

	if (k->private_key_file && k->private_key_env)
		diag_at(ctx, s, "%s: give either private_key_file or private_key_env, not both", path);
	else if (!k->private_key_file && !k->private_key_env)
		k->private_key_file = CONF_DEFAULT_KEY_FILE;
}

static const struct key_spec keys_keys[] = {
	KEY("private_key_file", VT_PATH, offsetof(struct conf_keys, private_key_file)),
	KEY("private_key_env", VT_IDENT, offsetof(struct conf_keys, private_key_env)),
};
static const struct group_spec keys_group = { keys_keys, ARRAY_SIZE(keys_keys),
					      keys_begin, keys_finish };

#define PG(f) offsetof(struct conf_postgres, f)
/* The same keys at top level and inside a spoke; OFF() says where they go. */
#define POSTGRES_KEYS(OFF)                                               \
	KEY("bin_dir", VT_PATH, OFF(bin_dir)),                           \
	KEY("data_dir", VT_PATH, OFF(data_dir)),                         \
	KEYX("port", VT_U16, OFF(port), .min = 1, .max = 65535),          \
	KEY("user", VT_IDENT, OFF(user)),                                \
	KEY("replication_user", VT_IDENT, OFF(replication_user)),        \
	KEY("password_file", VT_PATH, OFF(password_file)),               \
	KEY("password_env", VT_IDENT, OFF(password_env))
static const struct key_spec postgres_keys[] = {
	POSTGRES_KEYS(PG),
	KEYX("role", VT_FORBIDDEN, 0,
	    .hint = "the role is per spoke: postgres = \"primary\" or postgres = { role = ...; } in the spoke"),
};
static const struct group_spec postgres_group = { postgres_keys, ARRAY_SIZE(postgres_keys),
						  NULL, NULL };

#define BK(f) offsetof(struct conf_backup, f)
static const struct key_spec backup_keys[] = {
	KEYX("method", VT_ENUM, BK(method), .choices = backup_methods),
	KEY("dir", VT_PATH, BK(dir)),
	KEY("schedule", VT_SCHEDULE, BK(schedule)),
	KEYX("keep_daily", VT_UINT, BK(keep_daily), .min = 0, .max = 3650),
	KEYX("keep_weekly", VT_UINT, BK(keep_weekly), .min = 0, .max = 520),
	KEYX("keep_monthly", VT_UINT, BK(keep_monthly), .min = 0, .max = 1200),
	KEYX("max_age", VT_UINT, BK(max_age_s), .min = 60, .max = 366 * 86400),
	KEYX("timeout", VT_UINT, BK(timeout_s), .min = 60, .max = 7 * 86400),
	KEYX("max_replica_lag", VT_UINT, BK(max_replica_lag_s), .min = 5, .max = 366 * 86400),
};
static const struct group_spec backup_group = { backup_keys, ARRAY_SIZE(backup_keys),
						NULL, NULL };

static const struct key_spec status_keys[] = {
	KEYX("listen", VT_LISTEN, 0, .hint = "e.g. \"0.0.0.0:8000\""),
};
static const struct group_spec status_group = { status_keys, ARRAY_SIZE(status_keys),
						NULL, NULL };

static void control_finish(struct load_ctx *ctx, const config_setting_t *s, const char *path,
			   void *target)
{
	const char **sock = target;

	/* sun_path is 108 bytes including the NUL. */
	if (*sock && strlen(*sock) > 107)
		diag_at(ctx, s, "%s.socket: the path is longer than 107 bytes", path);
}

static const struct key_spec control_keys[] = {
	KEY("socket", VT_PATH, 0),
};
static const struct group_spec control_group = { control_keys, ARRAY_SIZE(control_keys),
						 NULL, control_finish };

#define NM(f) offsetof(struct conf_names, f)
static const struct key_spec names_keys[] = {
	KEYX("hosts_file", VT_PATH, NM(hosts_file), .hint = "e.g. \"/etc/hosts\""),
	KEYX("domain", VT_NAME, NM(domain), .hint = "one label, e.g. \"vpn\" for spoke-a.vpn"),
};
static const struct group_spec names_group = { names_keys, ARRAY_SIZE(names_keys), NULL, NULL };

static const struct key_spec log_keys[] = {
	KEY("level", VT_LOGLEVEL, 0),
};
static const struct group_spec log_group = { log_keys, ARRAY_SIZE(log_keys), NULL, NULL };

/* Process supervision; stored in the settings so nodes can differ. */
#define SV(f) offsetof(struct conf_supervision, f)
static const struct key_spec supervisor_keys[] = {
	KEYX("shutdown_budget", VT_SECONDS, SV(shutdown_budget_ms),
	     .min = 1, .max = 300),
	KEYX("backoff_max", VT_SECONDS, SV(backoff_max_ms), .min = 1,
	     .max = 3600),
	KEYX("stable_after", VT_SECONDS, SV(stable_after_ms), .min = 1,
	     .max = 3600),
	KEYX("give_up_after", VT_UINT, SV(give_up_after), .min = 0,
	     .max = 1000),
};
static const struct group_spec supervisor_group = { supervisor_keys, ARRAY_SIZE(supervisor_keys),
						    NULL, NULL };

/* Children: extra supervised processes of one node. */
static const char *const restart_policies[] = { "never", "on-failure", "always", NULL };
#define CH(f) offsetof(struct raw_child, f)
static const struct key_spec child_keys[] = {
	KEYX("name", VT_NAME, CH(child.name), .required = true),
	KEYX("command", VT_NAMES, CH(argv), .required = true, .line_offset = CH(argv_line)),
	KEYX("env", VT_NAMES, CH(env), .line_offset = CH(env_line)),
	KEY("user", VT_IDENT, CH(child.user)),
	KEY("cwd", VT_PATH, CH(child.cwd)),
	KEYX("restart", VT_ENUM, CH(child.restart), .choices = restart_policies),
	KEY("stop", VT_STOPPLAN, CH(child)),
	KEYX("after", VT_NAMES, CH(after), .line_offset = CH(after_line)),
	KEY("required", VT_BOOL, CH(child.required)),
};
static const struct group_spec child_group = { child_keys, ARRAY_SIZE(child_keys), NULL, NULL };

static void parse_children(struct load_ctx *ctx, const config_setting_t *s, const char *path,
			   struct raw_node *rn)
{
	int n;

	if (!config_setting_is_list(s)) {
		diag_at(ctx, s, "%s: must be a list ( { name = ...; command = [ ... ]; }, ... ), not %s",
			path, type_name(config_setting_type(s)));
		return;
	}
	n = config_setting_length(s);
	rn->children = store_alloc(ctx->store, sizeof(*rn->children) * (size_t)(n ? n : 1));
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		struct raw_child *rc = &rn->children[rn->n_children++];
		_cleanup_free_ char *sub = xasprintf("%s[%d]", path, i);

		rc->path = store_strdup(ctx->store, sub);
		rc->child.line = config_setting_source_line(e);
		rc->child.restart = CHILD_RESTART_ON_FAILURE;
		rc->child.stop[0] = (struct child_stop_step){ SIGTERM, 5000 };
		rc->child.n_stop = 1;
		if (!config_setting_is_group(e)) {
			diag_at(ctx, e, "%s: must be a group { name = ...; command = [ ... ]; }", sub);
			continue;
		}
		parse_group(ctx, e, sub, &child_group, rc);
	}
}

#define CL(f) offsetof(struct conf, cluster.f)
static const struct key_spec cluster_keys[] = {
	KEYX("network", VT_CIDR, CL(network), .required = true),
	KEY("interface", VT_IFNAME, CL(interface)),
	KEYX("port", VT_U16, CL(port), .min = 1, .max = 65535),
	KEYX("keepalive", VT_U16, CL(keepalive), .min = 0, .max = 65535),
	KEYX("fresh_handshake", VT_UINT, CL(fresh_handshake_s), .min = 5, .max = 86400),
	KEYX("mtu", VT_MTU, CL(mtu), .min = 1280, .max = 9000),
};
static const struct group_spec cluster_group = { cluster_keys, ARRAY_SIZE(cluster_keys),
						 NULL, NULL };

/* Node groups: the node's own keys, then the settings it may override. */
#define OVERRIDE(n, f, g) KEYX(n, VT_GROUP, NODE(node.settings) + SET(f), .sub = &g)

static const struct key_spec hub_keys[] = {
	KEYX("name", VT_NAME, NODE(node.name), .required = true, .line_offset = NODE(name_line)),
	KEYX("overlay_ip", VT_IPV4, NODE(node.overlay_ip), .required = true,
	    .line_offset = NODE(ip_line)),
	KEYX("endpoint", VT_HOSTPORT, NODE(node.endpoint), .required = true,
	    .hint = "the hub's public address and port, e.g. \"203.0.113.10:51820\""),
	KEYX("public_key", VT_WGKEY, NODE(node.public_key_b64), .required = true),
	KEY("ssh_from", VT_CIDRS, 0),
	OVERRIDE("keys", keys, keys_group),
	OVERRIDE("status", status_listen, status_group),
	OVERRIDE("control", control_socket, control_group),
	OVERRIDE("names", names, names_group),
	OVERRIDE("log", log_level, log_group),
	OVERRIDE("supervisor", supervision, supervisor_group),
	KEY("children", VT_CHILDREN, 0),
	KEYX("postgres", VT_FORBIDDEN, 0, .hint = "the hub runs no database; set postgres on spokes"),
	KEYX("backup", VT_FORBIDDEN, 0, .hint = "the hub runs no database, so it has no backups"),
	KEYX("upstream", VT_FORBIDDEN, 0, .hint = "the hub runs no database"),
	KEYX("failover", VT_FORBIDDEN, 0,
	    .hint = "the hub runs no database; failover = false goes on a Postgres spoke"),
};
static const struct group_spec hub_group = { hub_keys, ARRAY_SIZE(hub_keys), NULL, NULL };

/* A spoke's postgres group: its role plus overrides of the top-level group. */
#define SPG(f) (NODE(node.settings) + SET(postgres) + PG(f))
static const struct key_spec spoke_postgres_keys[] = {
	KEYX("role", VT_ENUM, NODE(node.pg_role), .choices = pg_roles,
	    .line_offset = NODE(pg_role_line)),
	POSTGRES_KEYS(SPG),
};
static const struct group_spec spoke_postgres_group = {
	spoke_postgres_keys, ARRAY_SIZE(spoke_postgres_keys), NULL, NULL
};

static const struct key_spec spoke_keys[] = {
	KEYX("name", VT_NAME, NODE(node.name), .required = true, .line_offset = NODE(name_line)),
	KEYX("overlay_ip", VT_IPV4, NODE(node.overlay_ip), .required = true,
	    .line_offset = NODE(ip_line)),
	KEYX("public_key", VT_WGKEY, NODE(node.public_key_b64), .required = true),
	KEYX("upstream", VT_NAME, NODE(upstream_name), .line_offset = NODE(upstream_line)),
	KEYX("failover", VT_BOOL, NODE(node.failover), .line_offset = NODE(failover_line)),
	OVERRIDE("keys", keys, keys_group),
	KEYX("postgres", VT_ROLE_OR_GROUP, 0, .sub = &spoke_postgres_group),
	OVERRIDE("backup", backup, backup_group),
	OVERRIDE("status", status_listen, status_group),
	OVERRIDE("control", control_socket, control_group),
	OVERRIDE("names", names, names_group),
	OVERRIDE("log", log_level, log_group),
	OVERRIDE("supervisor", supervision, supervisor_group),
	KEY("children", VT_CHILDREN, 0),
	KEYX("endpoint", VT_FORBIDDEN, 0,
	    .hint = "spokes connect outbound only; only the hub has an endpoint"),
	KEYX("ssh_from", VT_FORBIDDEN, 0, .hint = "spokes accept no SSH; only the hub has ssh_from"),
};
static const struct group_spec spoke_group = { spoke_keys, ARRAY_SIZE(spoke_keys), NULL, NULL };

#define ACL(f) offsetof(struct raw_acl, f)
static void acl_finish(struct load_ctx *ctx, const config_setting_t *s, const char *path,
		       void *target)
{
	struct raw_acl *a = target;

	if (!config_setting_get_member(s, "tcp") && !config_setting_get_member(s, "udp"))
		diag_at(ctx, s, "%s: no ports (hint: add tcp = [ 5432 ] and/or udp = [ ... ])", path);
	a->line = config_setting_source_line(s);
}

static const struct key_spec acl_keys[] = {
	KEYX("from", VT_NAMES, ACL(from), .required = true),
	KEYX("to", VT_NAMES, ACL(to), .required = true),
	KEY("tcp", VT_PORTS, ACL(tcp)),
	KEY("udp", VT_PORTS, ACL(udp)),
};
static const struct group_spec acl_group = { acl_keys, ARRAY_SIZE(acl_keys), NULL, acl_finish };

/*
 * High availability. Only the checks within the group are made here (and
 * whatever the mode, so a group kept with mode = "off" stays valid); those
 * against the nodes are in conf_ha.c.
 */
#define HA(f) offsetof(struct raw_ha, f)
static const struct key_spec ha_keys[] = {
	KEYX("mode", VT_ENUM, HA(ha.mode), .choices = ha_modes, .line_offset = HA(mode_line)),
	KEYX("ttl", VT_UINT, HA(ha.ttl_s), .min = 10, .max = 300),
	KEYX("loop_wait", VT_UINT, HA(ha.loop_wait_s), .min = 1, .max = 300),
	KEYX("retry_timeout", VT_UINT, HA(ha.retry_timeout_s), .min = 1, .max = 300),
	KEYX("maximum_lag_on_failover", VT_U64, HA(ha.maximum_lag_on_failover), .min = 0,
	     .max = INT64_MAX),
	KEY("etcd", VT_PATH, HA(ha.etcd_bin)),
	KEY("data_dir", VT_PATH, HA(ha.data_dir)),
	KEYX("client_port", VT_U16, HA(ha.client_port), .min = 1, .max = 65535,
	     .line_offset = HA(client_port_line)),
	KEYX("peer_port", VT_U16, HA(ha.peer_port), .min = 1, .max = 65535,
	     .line_offset = HA(peer_port_line)),
	KEYX("bootstrap_primary", VT_FORBIDDEN, 0,
	     .hint = "the bootstrap primary is the spoke with postgres = \"primary\""),
};
static const struct group_spec ha_group = { ha_keys, ARRAY_SIZE(ha_keys), NULL, ha_finish };

/* ---- the root ---------------------------------------------------------- */

static void parse_node(struct load_ctx *ctx, const config_setting_t *s, const char *path,
		       const struct group_spec *spec, enum conf_node_kind kind,
		       struct raw_node *rn)
{
	rn->path = store_strdup(ctx->store, path);
	rn->node.kind = kind;
	rn->node.upstream = -1;
	rn->node.line = config_setting_source_line(s);
	rn->node.settings = ctx->defaults;
	if (!config_setting_is_group(s)) {
		diag_at(ctx, s, "%s: must be a group { ... }, not %s", path,
			type_name(config_setting_type(s)));
		return;
	}
	parse_group(ctx, s, path, spec, rn);
}

static void parse_list(struct load_ctx *ctx, const config_setting_t *s, const char *name,
		       void (*each)(struct load_ctx *, const config_setting_t *, const char *, int))
{
	int n;

	if (!config_setting_is_list(s)) {
		diag_at(ctx, s, "%s: must be a list ( { ... }, { ... } ), not %s", name,
			config_setting_is_array(s) ? "an array [ ... ]" :
			type_name(config_setting_type(s)));
		return;
	}
	n = config_setting_length(s);
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		_cleanup_free_ char *path = xasprintf("%s[%d]", name, i);

		each(ctx, e, path, i);
	}
}

static void each_spoke(struct load_ctx *ctx, const config_setting_t *e, const char *path,
		       int i)
{
	(void)i;
	ctx->nodes = xreallocarray(ctx->nodes, ctx->n_nodes + 1, sizeof(*ctx->nodes));
	memset(&ctx->nodes[ctx->n_nodes], 0, sizeof(ctx->nodes[0]));
	parse_node(ctx, e, path, &spoke_group, CONF_NODE_SPOKE, &ctx->nodes[ctx->n_nodes]);
	ctx->n_nodes++;
}

static void each_acl(struct load_ctx *ctx, const config_setting_t *e, const char *path, int i)
{
	struct raw_acl *a;

	(void)i;
	ctx->acls = xreallocarray(ctx->acls, ctx->n_acls + 1, sizeof(*ctx->acls));
	a = &ctx->acls[ctx->n_acls++];
	memset(a, 0, sizeof(*a));
	a->path = store_strdup(ctx->store, path);
	a->line = config_setting_source_line(e);
	if (!config_setting_is_group(e)) {
		diag_at(ctx, e, "%s: must be a group { from = [...]; to = [...]; tcp = [...]; }",
			path);
		return;
	}
	parse_group(ctx, e, path, &acl_group, a);
}

/*
 * Top-level settings groups first (they are the defaults every node
 * inherits), then the nodes, whatever order the file uses.
 */
static const struct {
	const char *name;
	const struct group_spec *group;
	size_t offset;
} settings_groups[] = {
	{ "keys", &keys_group, SET(keys) },
	{ "postgres", &postgres_group, SET(postgres) },
	{ "backup", &backup_group, SET(backup) },
	{ "status", &status_group, SET(status_listen) },
	{ "control", &control_group, SET(control_socket) },
	{ "names", &names_group, SET(names) },
	{ "log", &log_group, SET(log_level) },
	{ "supervisor", &supervisor_group, SET(supervision) },
};

static const char *const root_names[] = { "cluster", "hub", "spokes", "acl", "ha" };

static bool is_root_name(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(root_names); i++)
		if (strcmp(name, root_names[i]) == 0)
			return true;
	for (size_t i = 0; i < ARRAY_SIZE(settings_groups); i++)
		if (strcmp(name, settings_groups[i].name) == 0)
			return true;
	return false;
}

static void report_unknown_root(struct load_ctx *ctx, const config_setting_t *s)
{
	static const struct key_spec all[] = {
		{ .name = "cluster" }, { .name = "hub" }, { .name = "spokes" }, { .name = "acl" },
		{ .name = "ha" },
		{ .name = "keys" }, { .name = "postgres" }, { .name = "backup" },
		{ .name = "status" }, { .name = "control" }, { .name = "names" }, { .name = "log" },
		{ .name = "supervisor" },
	};
	static const struct group_spec root = { all, ARRAY_SIZE(all), NULL, NULL };
	const char *name = config_setting_name(s);

	report_unknown(ctx, s, name, name, &root);
}

void parse_root(struct load_ctx *ctx, const config_setting_t *root)
{
	struct conf *c = ctx->conf;
	const config_setting_t *s;

	c->cluster.interface = "wg0";
	c->cluster.port = 51820;
	c->cluster.keepalive = 25;
	c->cluster.fresh_handshake_s = 180;
	c->cluster.mtu = 0; /* "auto": from the path to the hub */
	settings_set_defaults(&ctx->defaults);
	ha_set_defaults(&ctx->ha.ha);

	for (int i = 0; i < config_setting_length(root); i++) {
		s = config_setting_get_elem(root, (unsigned)i);
		if (!is_root_name(config_setting_name(s)))
			report_unknown_root(ctx, s);
	}
	for (size_t i = 0; i < ARRAY_SIZE(settings_groups); i++) {
		s = config_setting_get_member(root, settings_groups[i].name);
		if (!s)
			continue;
		if (!config_setting_is_group(s)) {
			diag_at(ctx, s, "%s: must be a group { ... }, not %s", settings_groups[i].name,
				type_name(config_setting_type(s)));
			continue;
		}
		parse_group(ctx, s, settings_groups[i].name, settings_groups[i].group,
			    (char *)&ctx->defaults + settings_groups[i].offset);
	}

	s = config_setting_get_member(root, "cluster");
	if (!s)
		diag_add(ctx, NULL, 1, "missing required group \"cluster\" (hint: cluster = { network = \"" CONF_DEFAULT_NETWORK "\"; };)");
	else if (!config_setting_is_group(s))
		diag_at(ctx, s, "cluster: must be a group { ... }, not %s",
			type_name(config_setting_type(s)));
	else {
		c->cluster.line = config_setting_source_line(s);
		parse_group(ctx, s, "cluster", &cluster_group, c);
	}

	/* nodes[0] is always the hub, parsed or not, so indexes stay stable. */
	ctx->nodes = xcalloc(1, sizeof(*ctx->nodes));
	ctx->n_nodes = 1;
	ctx->nodes[0].node.settings = ctx->defaults;
	ctx->nodes[0].node.upstream = -1;
	s = config_setting_get_member(root, "hub");
	if (!s) {
		diag_add(ctx, NULL, 1, "missing required group \"hub\" (hint: hub = { name = \"hub\"; overlay_ip = ...; endpoint = ...; public_key = ...; };)");
	} else {
		ctx->have_hub = true;
		parse_node(ctx, s, "hub", &hub_group, CONF_NODE_HUB, &ctx->nodes[0]);
	}

	s = config_setting_get_member(root, "spokes");
	if (!s) {
		diag_add(ctx, NULL, 1, "missing required list \"spokes\" (hint: spokes = ( { name = ...; overlay_ip = ...; public_key = ...; } );)");
	} else {
		ctx->spokes_line = config_setting_source_line(s);
		parse_list(ctx, s, "spokes", each_spoke);
		if (ctx->n_nodes == 1 && config_setting_is_list(s))
			diag_at(ctx, s, "spokes: the list is empty (hint: add at least one spoke)");
	}

	s = config_setting_get_member(root, "ha");
	if (s && !config_setting_is_group(s)) {
		diag_at(ctx, s, "ha: must be a group { mode = ...; ... }, not %s",
			type_name(config_setting_type(s)));
	} else if (s) {
		ctx->ha.ha.line = config_setting_source_line(s);
		parse_group(ctx, s, "ha", &ha_group, &ctx->ha);
	}

	s = config_setting_get_member(root, "acl");
	if (s) {
		c->has_acl = true;
		parse_list(ctx, s, "acl", each_acl);
	}
}
