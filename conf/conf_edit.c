// SPDX-License-Identifier: MIT
/*
 * Writing cluster files (`supervisor cluster ...`): a libconfig tree is
 * edited, rendered in one canonical layout, checked by the same loader
 * every node uses, and only then written: to FILE.tmp, fsynced, the old
 * file kept as FILE.bak, renamed into place. A change that would not load
 * is never written.
 */
#include "conf/conf.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"

#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
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
