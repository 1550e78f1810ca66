/* SPDX-License-Identifier: MIT */
/*
 * Writing cluster files (conf/conf_edit.c), for `supervisor cluster`: the
 * file as a libconfig tree, edited in place, then written only if the
 * loader every node uses accepts the result. Kept apart from conf/conf.h
 * so that <libconfig.h> reaches only the code that edits files.
 *
 * Errors: 0, -errno, or a positive CONF_E_* / CONF_EDIT_E_* below.
 */
#ifndef SUP_CONF_EDIT_H
#define SUP_CONF_EDIT_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>

#include "conf/conf.h"

/* Expected outcomes of conf_edit_remove_spoke() (CONF_E_INVALID is 1). */
#define CONF_EDIT_E_UNKNOWN 2   /* no spoke of that name */
#define CONF_EDIT_E_PRIMARY 3   /* it is the primary */
#define CONF_EDIT_E_UPSTREAM 4  /* another spoke replicates from it */

/* The hub's part of a new cluster file (conf_edit_init()). */
struct conf_edit_hub {
	const char *network;          /* cluster.network, "a.b.c.d/N"; the hub is its .1 */
	const char *endpoint;         /* host:port the spokes dial */
	const char *public_key;       /* base64 */
	const char *private_key_file; /* absolute */
	const char *const *ssh_from;  /* CIDRs, may be empty */
	size_t n_ssh_from;
};

/* conf_edit_render() - @cfg in the canonical layout, after @header (may be NULL). Caller frees. */
char *conf_edit_render(const config_t *cfg, const char *header);
/**
 * conf_edit_save() - write @cfg to @path, only if it loads.
 * @path: the cluster file; the previous one is kept as PATH.bak.
 * @cfg: the edited tree.
 * @header: comment lines for the top of the file (may be NULL).
 * @diag: receives the errors when the result would not load.
 *
 * Return: 0, CONF_E_INVALID (nothing written), or -errno.
 */
int conf_edit_save(const char *path, const config_t *cfg, const char *header, struct conf_diag *diag);
/* conf_hub_name() - hub.name in @cfg, or "hub". */
const char *conf_hub_name(const config_t *cfg);

/**
 * conf_edit_init() - a new cluster: the cluster and hub groups, an empty
 * spokes list, keys and password from the environment on the spokes.
 * @cfg: an empty tree (config_init()).
 * @hub: the hub's part.
 *
 * Return: 0, or -EINVAL when @hub->network is not "a.b.c.d/N".
 */
int conf_edit_init(config_t *cfg, const struct conf_edit_hub *hub);

/* conf_edit_find_spoke() - the spoke named @name, or NULL; @index (may be NULL) gets its position. */
config_setting_t *conf_edit_find_spoke(config_t *cfg, const char *name, int *index);
/* conf_edit_find_node() - the hub's group when @name is the hub's, else the spoke's, or NULL. */
config_setting_t *conf_edit_find_node(config_t *cfg, const char *name);
/* conf_edit_spoke_role() - a spoke's postgres role: "primary", "replica", ..., or "none". */
const char *conf_edit_spoke_role(const config_setting_t *spoke);
/* conf_edit_primary_name() - the name of the spoke whose role is primary, or NULL. */
const char *conf_edit_primary_name(config_t *cfg);
/* conf_edit_hub_key_file() - the key file the hub reads (hub.keys, else keys), or NULL. */
const char *conf_edit_hub_key_file(const config_t *cfg);

/**
 * conf_edit_next_ip() - the lowest free address from .11 up in cluster.network
 * (CONF_DEFAULT_NETWORK when the file has none).
 * @cfg: the tree.
 * @out: receives the dotted quad.
 *
 * Return: 0, -EINVAL (no network of prefix 8..30), or -ENOSPC (all taken).
 */
int conf_edit_next_ip(const config_t *cfg, char out[16]);

/**
 * conf_edit_add_spoke() - append a spoke (the spokes list is made if missing).
 * @cfg: the tree.
 * @name: its name.
 * @ip: its overlay address (conf_edit_next_ip()).
 * @public_key: base64.
 * @upstream: the spoke it replicates from, or NULL for a primary.
 *
 * A replica also gets replication both ways with its upstream on 5432 in
 * the acl, when the file has one, or @acl_create.
 */
void conf_edit_add_spoke(config_t *cfg, const char *name, const char *ip, const char *public_key,
			 const char *upstream, bool acl_create);

/**
 * conf_edit_remove_spoke() - take a spoke out of spokes and out of every
 * acl entry; an entry left with no one on a side goes, and an empty acl.
 * @cfg: the tree.
 * @name: the spoke.
 * @blocker: with CONF_EDIT_E_UPSTREAM, the spoke that replicates from it.
 *
 * Return: 0, CONF_EDIT_E_UNKNOWN, CONF_EDIT_E_PRIMARY or CONF_EDIT_E_UPSTREAM
 * (nothing changed).
 */
int conf_edit_remove_spoke(config_t *cfg, const char *name, const char **blocker);

/**
 * conf_edit_set_public_key() - the public key of the node @name (hub or spoke).
 *
 * Return: 0, or CONF_EDIT_E_UNKNOWN.
 */
int conf_edit_set_public_key(config_t *cfg, const char *name, const char *public_key);

#endif
