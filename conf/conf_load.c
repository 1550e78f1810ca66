// SPDX-License-Identifier: MIT
/*
 * conf_load_*(): libconfig parse -> table-driven checks (conf_parse.c) ->
 * checks across values (conf_validate.c) -> this node picked. Only when no
 * error was found is a struct conf handed out.
 */
#include "conf/conf_internal.h"
#include "lib/mem.h"

#include <libgen.h>
#include <stdlib.h>
#include <string.h>

static void ctx_free(struct load_ctx *ctx)
{
	free(ctx->diag_order);
	free(ctx->nodes);
	free(ctx->acls);
}

static int load(config_t *cfg, bool ok, const char *name, const char *node, struct conf **out,
		struct conf_diag *diag)
{
	struct conf_store *store = xcalloc(1, sizeof(*store));
	struct conf *c = xcalloc(1, sizeof(*c));
	struct load_ctx ctx = { .fname = name, .diag = diag, .store = store, .conf = c };
	char host[256];
	int self;

	*out = NULL;
	c->priv = store;
	c->path = store_strdup(store, name);
	if (!ok) {
		const char *file = config_error_file(cfg);

		if (config_error_type(cfg) == CONFIG_ERR_FILE_IO)
			diag_add(&ctx, file, 0, "cannot read the file (hint: check the path given with -c or SUPERVISOR_CONFIG)");
		else
			diag_add(&ctx, file, config_error_line(cfg),
				 "%s (hint: look for a missing '=', ';', quote or bracket on this line or just before it)",
				 config_error_text(cfg));
		goto fail;
	}
	parse_root(&ctx, config_root_setting(cfg));
	validate_cluster(&ctx, config_root_setting(cfg));
	if (!node)
		node = conf_default_node_name(host, sizeof(host));
	self = select_node(&ctx, node, config_root_setting(cfg));
	if (diag->n)
		goto fail;

	struct conf_node *nodes = store_alloc(store, sizeof(*nodes) * ctx.n_nodes);

	for (size_t i = 0; i < ctx.n_nodes; i++) {
		nodes[i] = ctx.nodes[i].node;
		nodes[i].ssh_from = ctx.nodes[i].ssh_from;
		nodes[i].n_ssh_from = ctx.nodes[i].n_ssh_from;
		if (ctx.nodes[i].n_children) {
			struct conf_child *ch = store_alloc(store, sizeof(*ch) * ctx.nodes[i].n_children);

			for (size_t k = 0; k < ctx.nodes[i].n_children; k++)
				ch[k] = ctx.nodes[i].children[k].child;
			nodes[i].children = ch;
			nodes[i].n_children = ctx.nodes[i].n_children;
		}
	}
	c->nodes = nodes;
	c->n_nodes = ctx.n_nodes;
	c->self = self;
	ctx_free(&ctx);
	*out = c;
	return 0;
fail:
	diag_sort(&ctx);
	ctx_free(&ctx);
	conf_free(c);
	return CONF_E_INVALID;
}

int conf_load_file(const char *path, const char *node, struct conf **out,
		   struct conf_diag *diag)
{
	config_t cfg;
	_cleanup_free_ char *dir = xstrdup(path);
	bool ok;
	int r;

	config_init(&cfg);
	/* Relative @include paths resolve next to the cluster file. */
	config_set_include_dir(&cfg, dirname(dir));
	ok = config_read_file(&cfg, path) == CONFIG_TRUE;
	if (!ok && config_error_type(&cfg) == CONFIG_ERR_FILE_IO && !config_error_file(&cfg)) {
		/* libconfig leaves the file unset when the top file cannot be opened. */
		struct conf_diag *d = diag;

		d->lines = xreallocarray(d->lines, d->n + 1, sizeof(*d->lines));
		d->lines[d->n++] = xasprintf("%s:0: cannot read the file (hint: check the path given with -c or SUPERVISOR_CONFIG)",
					     path);
		config_destroy(&cfg);
		*out = NULL;
		return CONF_E_INVALID;
	}
	r = load(&cfg, ok, path, node, out, diag);
	config_destroy(&cfg);
	return r;
}

int conf_load_string(const char *text, const char *name, const char *node, struct conf **out,
		     struct conf_diag *diag)
{
	config_t cfg;
	bool ok;
	int r;

	config_init(&cfg);
	ok = config_read_string(&cfg, text) == CONFIG_TRUE;
	r = load(&cfg, ok, name, node, out, diag);
	config_destroy(&cfg);
	return r;
}
