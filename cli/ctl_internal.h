/* SPDX-License-Identifier: MIT */
/* Private to cli/: what `ctl`'s subcommand files share (cmd_ctl.c, ctl_ha.c). */
#ifndef SUP_CLI_CTL_INTERNAL_H
#define SUP_CLI_CTL_INTERNAL_H

#include <jansson.h>

#include "cli/cli.h"

#define CTL_REPLY_MAX (4 << 20)

/* ctl_read_reply() - the daemon's reply, or NULL after saying why on stderr (cmd_ctl.c). */
json_t *ctl_read_reply(const char *text);

/* ctl_ha.c */
void print_ha(json_t *reply);
void print_ha_request(json_t *reply);
/* follow_ha_request() - poll `ha` until the request's new primary runs and the others follow. Return: health. */
int follow_ha_request(const char *path, json_t *request_reply);

#endif
