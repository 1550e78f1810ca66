// SPDX-License-Identifier: MIT
/*
 * `supervisor backup run|verify|list` (what the daemon starts as its
 * backup child, and what an operator may run by hand: the lock keeps the
 * two from overlapping) and `supervisor restore`.
 */
#include "cli/cli.h"
#include "backup/backup.h"
#include "lib/common.h"
#include "lib/mem.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void conf_freep(struct conf **c)
{
	conf_free(*c);
}

enum { OPT_RUN_ID = 256, OPT_NO_PRECHECK, OPT_ALLOW_LAG, OPT_JSON, OPT_BACKUP, OPT_TARGET };

static const struct option backup_opts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "node", required_argument, NULL, 'n' },
	{ "run-id", required_argument, NULL, OPT_RUN_ID },
	{ "no-precheck", no_argument, NULL, OPT_NO_PRECHECK },
	{ "allow-lag", no_argument, NULL, OPT_ALLOW_LAG },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "backup", required_argument, NULL, OPT_BACKUP },
	{ "target", required_argument, NULL, OPT_TARGET },
	{ 0 },
};

struct backup_args {
	const char *path, *node, *run_id, *backup, *target;
	bool no_precheck, allow_lag, json;
};

static int parse(const struct cli_command *cmd, int argc, char **argv, struct backup_args *a)
{
	int opt;

	a->path = conf_default_path();
	while ((opt = getopt_long(argc, argv, "c:n:", backup_opts, NULL)) != -1) {
		switch (opt) {
		case 'c': a->path = optarg; break;
		case 'n': a->node = optarg; break;
		case OPT_RUN_ID: a->run_id = optarg; break;
		case OPT_NO_PRECHECK: a->no_precheck = true; break;
		case OPT_ALLOW_LAG: a->allow_lag = true; break;
		case OPT_JSON: a->json = true; break;
		case OPT_BACKUP: a->backup = optarg; break;
		case OPT_TARGET: a->target = optarg; break;
		default:
			cli_command_usage(cmd, stderr);
			return EXIT_USAGE;
		}
	}
	return 0;
}

void print_backup_table(const json_t *backups)
{
	const json_t *e;
	size_t i;

	printf("%-34s %-10s %-20s %-20s %12s  %-5s %s\n", "NAME", "METHOD", "FINISHED (UTC)",
	       "DATA AS OF (UTC)", "SIZE", "GOOD", "DATABASES / PROBLEM");
	json_array_foreach(backups, i, e) {
		time_t t = (time_t)json_integer_value(json_object_get(e, "finished_at"));
		time_t a = (time_t)json_integer_value(json_object_get(e, "as_of"));
		char when[32] = "-", as_of[32] = "unknown", dbs[256] = "";
		const json_t *d;
		size_t k;
		struct tm tm;

		if (t && gmtime_r(&t, &tm))
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		if (a && gmtime_r(&a, &tm))
			strftime(as_of, sizeof(as_of), "%Y-%m-%d %H:%M:%S", &tm);
		json_array_foreach(json_object_get(e, "databases"), k, d)
			snprintf(dbs + strlen(dbs), sizeof(dbs) - strlen(dbs), "%s%s", k ? "," : "",
				 json_string_value(d));
		const char *method = json_string_value(json_object_get(e, "method"));
		const char *problem = json_string_value(json_object_get(e, "problem"));
		bool good = json_is_true(json_object_get(e, "good"));

		printf("%-34s %-10s %-20s %-20s %12lld  %-5s %s\n", json_string_value(json_object_get(e, "name")),
		       method ? method : "?", when, as_of, (long long)json_integer_value(json_object_get(e, "size_bytes")),
		       good ? "yes" : "NO", good ? dbs : problem ? problem : "");
	}
}

int cmd_backup(const struct cli_command *cmd, int argc, char **argv)
{
	struct backup_args a = { 0 };
	_cleanup_(conf_freep) struct conf *conf = NULL;
	char host[256];
	const char *what;
	int r;

	if (argc < 2) {
		cli_command_usage(cmd, stderr);
		return EXIT_USAGE;
	}
	what = argv[1];
	if ((r = parse(cmd, argc - 1, argv + 1, &a)) != 0)
		return r;
	if (optind != argc - 1) {
		cli_command_usage(cmd, stderr);
		return EXIT_USAGE;
	}
	if ((r = cli_load_conf(a.path, a.node ? a.node : conf_default_node_name(host, sizeof(host)), &conf)))
		return r;
	if (strcmp(what, "run") == 0 || strcmp(what, "verify") == 0) {
		struct backup_run_opts o = {
			.mode = what[0] == 'r' ? BACKUP_MODE_RUN : BACKUP_MODE_VERIFY,
			.run_id = a.run_id,
			.no_precheck = a.no_precheck,
			.allow_lag = a.allow_lag,
		};

		return backup_run(conf, &o);
	}
	if (strcmp(what, "list") == 0) {
		char *dir = xasprintf("%s/%s", conf_self(conf)->settings.backup.dir, conf_self(conf)->name);
		json_t *list = backup_catalog(conf);


		if (a.json) {
			json_dumpf(list, stdout, JSON_INDENT(2));
			putchar('\n');
		} else {
			printf("backups in %s (checksums re-read now)\n", dir);
			print_backup_table(list);
		}
		r = 0;
		for (size_t i = 0; i < json_array_size(list); i++)
			if (!json_is_true(json_object_get(json_array_get(list, i), "good")))
				r = 1;
		json_decref(list);
		free(dir);
		return r;
	}
	cli_command_usage(cmd, stderr);
	return EXIT_USAGE;
}

int cmd_restore(const struct cli_command *cmd, int argc, char **argv)
{
	struct backup_args a = { 0 };
	_cleanup_(conf_freep) struct conf *conf = NULL;
	char host[256];
	int r;

	if ((r = parse(cmd, argc, argv, &a)) != 0)
		return r;
	if (optind != argc || !a.target) {
		cli_command_usage(cmd, stderr);
		return EXIT_USAGE;
	}
	if ((r = cli_load_conf(a.path, a.node ? a.node : conf_default_node_name(host, sizeof(host)), &conf)))
		return r;
	return backup_restore(conf, a.backup, a.target);
}
