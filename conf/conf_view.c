// SPDX-License-Identifier: MIT
/*
 * With high availability the cluster file names only the bootstrap
 * primary; who is primary now lives in the store. The rest of the program
 * reads roles from a struct conf, so the current leader is applied as a
 * view: a copy of the file's configuration whose Postgres roles say
 * "primary" for the leader and "replica of the leader" for every other
 * Postgres spoke. Everything else is borrowed from the file's struct.
 */
#include "conf/conf_internal.h"
#include "lib/mem.h"

#include <string.h>

struct conf *conf_with_leader(const struct conf *base, int leader)
{
	return conf_with_roles(base, leader, NULL);
}

struct conf *conf_with_roles(const struct conf *base, int leader, const bool *fenced)
{
	struct conf *v = xcalloc(1, sizeof(*v));
	struct conf_store *st = xcalloc(1, sizeof(*st));
	struct conf_node *nodes = store_alloc(st, sizeof(*nodes) * base->n_nodes);

	*v = *base;
	v->priv = st;
	memcpy(nodes, base->nodes, sizeof(*nodes) * base->n_nodes);
	for (size_t i = 0; leader >= 0 && i < base->n_nodes; i++) {
		if (nodes[i].kind != CONF_NODE_SPOKE || nodes[i].pg_role == CONF_PG_NONE)
			continue;
		nodes[i].pg_role = (int)i == leader ? CONF_PG_PRIMARY : CONF_PG_REPLICA;
		nodes[i].upstream = (int)i == leader ? -1 : leader;
	}
	for (size_t i = 0; fenced && i < base->n_nodes; i++)
		nodes[i].fenced = fenced[i] && nodes[i].kind == CONF_NODE_SPOKE && nodes[i].pg_role != CONF_PG_NONE;
	v->nodes = nodes;
	return v;
}
