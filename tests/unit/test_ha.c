// SPDX-License-Identifier: MIT
/*
 * High availability's pure parts: etcd's command line, the leader view of
 * the configuration, LSNs, pg_control (a synthetic file, then a real
 * cluster made by initdb and read back against pg_controldata), and the
 * Postgres files as the view makes them.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/conf.h"
#include "ha/ha_internal.h"
#include "lib/common.h"
#include "lib/mem.h"
#include "pgwatch/pgwatch.h"

/*
 * ha.conf's cluster with the spokes out of name order and a spoke without
 * Postgres among them: etcd's members are the Postgres spokes in file
 * order. Ports away from etcd's defaults, so none can be hard-coded.
 */
static const char ha_text[] =
	"cluster = { network = \"10.88.0.0/24\"; };\n"
	"hub = { name = \"hub\"; overlay_ip = \"10.88.0.1\"; endpoint = \"203.0.113.10:51820\";\n"
	"        public_key = \"FN+bZ6djGKzJiUTbK+nkFbc3vVlLBX7D2DhBAzsGIxs=\"; };\n"
	"spokes = (\n"
	"  { name = \"spoke-b\"; overlay_ip = \"10.88.0.12\"; public_key = \"qTmMN+yLU1bsYP/kxaXfL5vpY52dTs1S5JfZCuxa33M=\";\n"
	"    postgres = \"replica\"; upstream = \"spoke-a\"; },\n"
	"  { name = \"spoke-a\"; overlay_ip = \"10.88.0.11\"; public_key = \"M3i9WQyag4lUF0QfLXkiDK/gXA6kGGUBHiOxdgohQWA=\";\n"
	"    postgres = \"primary\"; },\n"
	"  { name = \"spoke-d\"; overlay_ip = \"10.88.0.14\"; public_key = \"Nl6JC++zEPxSTUkF+A/HGtexUV0E1OpZNNw14PqZrEc=\"; },\n"
	"  { name = \"spoke-c\"; overlay_ip = \"10.88.0.13\"; public_key = \"D18iCfHIj3Rj0wcI3Ba4s6A/uBW5I9rXxDI37cXMAjc=\";\n"
	"    postgres = \"replica\"; }\n"
	");\n"
	"ha = { mode = \"automatic\"; etcd = \"/opt/etcd/bin/etcd\"; data_dir = \"/srv/etcd\";\n"
	"       client_port = 12379; peer_port = 2390; };\n";

static struct conf *load_text(const char *text, const char *node)
{
	struct conf_diag diag = { 0 };
	struct conf *c = NULL;

	if (conf_load_string(text, "ha-test.conf", node, &c, &diag) != 0) {
		conf_diag_print(&diag, stderr);
		fail_msg("cannot load the inline cluster file for %s", node);
	}
	conf_diag_clear(&diag);
	return c;
}

static struct conf *load_file(const char *rel, const char *node)
{
	const char *dir = getenv("CONF_TEST_DIR");
	_cleanup_free_ char *path = xasprintf("%s/%s", dir ? dir : "tests/conf", rel);
	struct conf_diag diag = { 0 };
	struct conf *c = NULL;

	if (conf_load_file(path, node, &c, &diag) != 0) {
		conf_diag_print(&diag, stderr);
		fail_msg("cannot load %s", path);
	}
	conf_diag_clear(&diag);
	return c;
}

static int node_index(const struct conf *c, const char *name)
{
	for (size_t i = 0; i < c->n_nodes; i++)
		if (strcmp(c->nodes[i].name, name) == 0)
			return (int)i;
	fail_msg("no node %s", name);
	return -1;
}

/* ---- etcd's command line ------------------------------------------------ */

static const char *const etcd_want[] = {
	"/opt/etcd/bin/etcd",
	"--name=spoke-b",
	"--data-dir=/srv/etcd",
	"--listen-peer-urls=http://10.88.0.12:2390",
	"--initial-advertise-peer-urls=http://10.88.0.12:2390",
	"--listen-client-urls=http://127.0.0.1:12379",
	"--advertise-client-urls=http://127.0.0.1:12379",
	("--initial-cluster=spoke-b=http://10.88.0.12:2390,spoke-a=http://10.88.0.11:2390,"
	 "spoke-c=http://10.88.0.13:2390"),
	"--initial-cluster-state=new",
	"--initial-cluster-token=supervisor-10.88.0.0-24",
	"--heartbeat-interval=200",
	"--election-timeout=2000",
	"--pre-vote=true",
	"--auto-compaction-mode=periodic",
	"--auto-compaction-retention=1h",
	"--logger=zap",
	"--log-level=warn",
};

static void test_etcd_argv(void **state)
{
	struct conf *c = load_text(ha_text, "spoke-b");
	char buf[4096];
	const char *argv[32];
	size_t n = 0;

	(void)state;
	assert_int_equal(ha_etcd_argv(c, buf, sizeof(buf), argv), 0);
	for (; argv[n]; n++) {
		if (n >= ARRAY_SIZE(etcd_want))
			fail_msg("argument %zu too many: %s", n, argv[n]);
		assert_string_equal(argv[n], etcd_want[n]);
		/* every string lives in the caller's buffer */
		assert_true(argv[n] >= buf && argv[n] < buf + sizeof(buf));
	}
	assert_int_equal(n, ARRAY_SIZE(etcd_want));
	conf_free(c);
}

/* The strings fit exactly, or the answer is -ENOSPC: never a truncated argument. */
static void test_etcd_argv_nospace(void **state)
{
	struct conf *c = load_text(ha_text, "spoke-b");
	char buf[4096];
	const char *argv[32];
	size_t need = 0;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(etcd_want); i++)
		need += strlen(etcd_want[i]) + 1;
	assert_int_equal(ha_etcd_argv(c, buf, 0, argv), -ENOSPC);
	assert_int_equal(ha_etcd_argv(c, buf, 16, argv), -ENOSPC);
	assert_int_equal(ha_etcd_argv(c, buf, need - 1, argv), -ENOSPC);
	assert_int_equal(ha_etcd_argv(c, buf, need, argv), 0);
	assert_string_equal(argv[ARRAY_SIZE(etcd_want) - 1], "--log-level=warn");
	assert_null(argv[ARRAY_SIZE(etcd_want)]);
	conf_free(c);
}

/* ---- the leader view --------------------------------------------------- */

/* @v's node @i is @b's but for its role and upstream, which are @role and @up. */
static void assert_node_as(const struct conf_node *v, const struct conf_node *b, enum conf_pg_role role,
			   int up)
{
	struct conf_node want;

	memcpy(&want, b, sizeof(want)); /* padding too: compared byte for byte */
	want.pg_role = role;
	want.upstream = up;
	if (v->pg_role != role || v->upstream != up)
		fail_msg("%s: role %s upstream %d, want %s upstream %d", b->name, conf_pg_role_name(v->pg_role),
			 v->upstream, conf_pg_role_name(role), up);
	assert_memory_equal(v, &want, sizeof(want)); /* nothing else changed */
}

static void test_view_leader(void **state)
{
	struct conf *base = load_text(ha_text, "spoke-c");
	int a = node_index(base, "spoke-a"), b = node_index(base, "spoke-b");
	int c = node_index(base, "spoke-c"), d = node_index(base, "spoke-d");
	struct conf_node before[8];
	struct conf *v;

	(void)state;
	assert_int_equal(base->n_nodes, 5);
	memcpy(before, base->nodes, sizeof(*before) * base->n_nodes);
	/* the file: spoke-a primary, spoke-c without an upstream takes it */
	assert_int_equal(base->nodes[b].upstream, a);
	assert_int_equal(base->nodes[c].upstream, a);

	v = conf_with_leader(base, b);
	assert_ptr_not_equal(v->nodes, base->nodes);
	assert_int_equal(v->n_nodes, base->n_nodes);
	assert_int_equal(v->self, base->self);
	assert_node_as(&v->nodes[b], &base->nodes[b], CONF_PG_PRIMARY, -1);
	assert_node_as(&v->nodes[a], &base->nodes[a], CONF_PG_REPLICA, b);
	assert_node_as(&v->nodes[c], &base->nodes[c], CONF_PG_REPLICA, b);
	/* the hub and the spoke without Postgres, byte for byte */
	assert_memory_equal(&v->nodes[0], &base->nodes[0], sizeof(v->nodes[0]));
	assert_memory_equal(&v->nodes[d], &base->nodes[d], sizeof(v->nodes[d]));
	assert_int_equal(v->nodes[d].pg_role, CONF_PG_NONE);
	assert_int_equal(v->nodes[d].upstream, -1);
	/* the base is left as it was */
	assert_memory_equal(base->nodes, before, sizeof(*before) * base->n_nodes);
	conf_free(v);

	/* the bootstrap primary as leader: spoke-b's upstream stays spoke-a */
	v = conf_with_leader(base, a);
	assert_node_as(&v->nodes[a], &base->nodes[a], CONF_PG_PRIMARY, -1);
	assert_node_as(&v->nodes[b], &base->nodes[b], CONF_PG_REPLICA, a);
	assert_node_as(&v->nodes[c], &base->nodes[c], CONF_PG_REPLICA, a);
	conf_free(v);
	conf_free(base);
}

/* Every other Postgres spoke follows the leader, also one the file cascades. */
static void test_view_flattens_cascade(void **state)
{
	struct conf *base = load_file("valid/ha_nofailover.conf", "spoke-a");
	int a = node_index(base, "spoke-a"), b = node_index(base, "spoke-b");
	int c = node_index(base, "spoke-c");
	struct conf *v = conf_with_leader(base, a);

	(void)state;
	assert_int_equal(base->nodes[c].upstream, b);
	assert_node_as(&v->nodes[c], &base->nodes[c], CONF_PG_REPLICA, a);
	assert_false(v->nodes[c].failover); /* may follow, never be promoted */
	conf_free(v);
	conf_free(base);
}

static void test_view_no_leader(void **state)
{
	struct conf *base = load_text(ha_text, "spoke-c");
	struct conf *v = conf_with_leader(base, -1);

	(void)state;
	assert_ptr_not_equal(v->nodes, base->nodes);
	assert_int_equal(v->n_nodes, base->n_nodes);
	assert_memory_equal(v->nodes, base->nodes, sizeof(*v->nodes) * base->n_nodes);
	conf_free(v);
	conf_free(base);
}

/* The view borrows; freeing it frees only its own (ASan finds a double free or a leak). */
static void test_view_borrows(void **state)
{
	struct conf *base = load_file("valid/ha.conf", "spoke-b");
	int b = node_index(base, "spoke-b");
	struct conf *v1 = conf_with_leader(base, b), *v2 = conf_with_leader(base, -1);
	char *s;

	(void)state;
	assert_ptr_equal(v1->path, base->path);
	assert_ptr_equal(v1->flows, base->flows);
	assert_int_equal(v1->n_flows, base->n_flows);
	assert_int_equal(v1->has_acl, base->has_acl);
	assert_ptr_equal(v1->ha.etcd_bin, base->ha.etcd_bin);
	assert_ptr_equal(v1->ha.data_dir, base->ha.data_dir);
	assert_ptr_equal(v1->cluster.interface, base->cluster.interface);
	for (size_t i = 0; i < base->n_nodes; i++) {
		assert_ptr_equal(v1->nodes[i].name, base->nodes[i].name);
		assert_ptr_equal(v1->nodes[i].children, base->nodes[i].children);
		assert_ptr_equal(v1->nodes[i].settings.postgres.data_dir,
				 base->nodes[i].settings.postgres.data_dir);
	}
	assert_ptr_not_equal(v1->priv, base->priv);
	assert_ptr_not_equal(v1->priv, v2->priv);
	conf_free(v1);
	/* the base and the other view still work */
	s = pg_settings_text(v2, "/run/supervisor/pgpass", NULL);
	assert_non_null(strstr(s, "cluster_name = 'spoke-b'\n"));
	free(s);
	conf_free(v2);
	assert_string_equal(base->nodes[b].name, "spoke-b");
	s = pg_hba_text(base, NULL);
	assert_non_null(strstr(s, "# spoke-c\n"));
	free(s);
	assert_null(conf_free(base));
}

/* ---- LSNs ---------------------------------------------------------------- */

static void test_lsn_round_trip(void **state)
{
	static const struct {
		const char *text;
		uint64_t lsn;
	} cases[] = {
		{ "0/0", 0 },
		{ "16/B374D848", 0x16B374D848ULL },
		{ "0/1500718", 0x1500718ULL },
		{ "1/0", 1ULL << 32 },
		{ "FFFFFFFF/FFFFFFFF", UINT64_MAX },
	};
	char buf[32];
	uint64_t v;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		v = 42;
		assert_int_equal(pg_lsn_parse(cases[i].text, &v), 0);
		assert_true(v == cases[i].lsn);
		assert_string_equal(pg_lsn_text(cases[i].lsn, buf, sizeof(buf)), cases[i].text);
	}
	/* pg_lsn's own input takes lower case too */
	assert_int_equal(pg_lsn_parse("16/b374d848", &v), 0);
	assert_true(v == 0x16B374D848ULL);
}

static void test_lsn_rejects(void **state)
{
	static const char *const bad[] = {
		"", "1", "1/", "/1", "x/1", "1/x", "1/2 ", "1/2/3", "100000000/0", "0/100000000",
	};
	uint64_t v = 42;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (pg_lsn_parse(bad[i], &v) != -EINVAL)
			fail_msg("\"%s\" was accepted", bad[i]);
	assert_int_equal(pg_lsn_parse(NULL, &v), -EINVAL);
	assert_true(v == 42); /* untouched on failure */
}

/* ---- pg_control ------------------------------------------------------------ */

/* *state: a temporary directory with an empty global/, for a data directory. */
static int temp_dir_setup(void **state)
{
	char *dir = xstrdup("/tmp/ha-test.XXXXXX");
	_cleanup_free_ char *global = NULL;

	if (!mkdtemp(dir)) {
		free(dir);
		return -1;
	}
	global = xasprintf("%s/global", dir);
	*state = dir;
	return mkdir(global, 0700);
}

/* Also after a failed test. */
static int temp_dir_teardown(void **state)
{
	char *dir = *state;
	_cleanup_free_ char *cmd = NULL;

	if (dir) {
		cmd = xasprintf("rm -rf '%s'", dir);
		(void)!system(cmd);
		free(dir);
	}
	return 0;
}

/* pg_control's head at its documented offsets, in a file of @size bytes (8 KiB in real ones). */
static void write_control(const char *dir, uint64_t sysid, uint32_t state, uint64_t ckpt, uint32_t tli,
			  size_t size)
{
	_cleanup_free_ char *path = xasprintf("%s/global/pg_control", dir);
	unsigned char b[8192];
	FILE *f;

	memset(b, 0xA5, sizeof(b)); /* not zeros: a field read from the wrong place shows */
	memcpy(b, &sysid, 8);
	memcpy(b + 16, &state, 4);
	memcpy(b + 32, &ckpt, 8);
	memcpy(b + 48, &tli, 4);
	assert_true(size <= sizeof(b));
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, size, f), size);
	assert_int_equal(fclose(f), 0);
}

static void test_pg_control_synthetic(void **state)
{
	const char *dir = *state;
	_cleanup_free_ char *missing = xasprintf("%s/nothing", dir);
	struct pg_control ctl;

	write_control(dir, 7312345678901234567ULL, PG_DB_SHUTDOWNED_IN_RECOVERY, 0x16B374D848ULL, 7, 8192);
	memset(&ctl, 0, sizeof(ctl));
	assert_int_equal(pg_control_read(dir, &ctl), 0);
	assert_true(ctl.sysid == 7312345678901234567ULL);
	assert_int_equal(ctl.state, PG_DB_SHUTDOWNED_IN_RECOVERY);
	assert_true(ctl.checkpoint_lsn == 0x16B374D848ULL);
	assert_int_equal(ctl.timeline, 7);
	assert_false(pg_control_was_primary(&ctl));

	write_control(dir, 1, PG_DB_IN_PRODUCTION, UINT64_MAX, UINT32_MAX, 8192);
	assert_int_equal(pg_control_read(dir, &ctl), 0);
	assert_true(ctl.sysid == 1);
	assert_int_equal(ctl.state, PG_DB_IN_PRODUCTION);
	assert_true(ctl.checkpoint_lsn == UINT64_MAX);
	assert_true(ctl.timeline == UINT32_MAX);
	assert_true(pg_control_was_primary(&ctl));

	write_control(dir, 1, PG_DB_SHUTDOWNED, 0x1500718, 1, 51); /* one byte short of the timeline */
	assert_int_equal(pg_control_read(dir, &ctl), -EIO);
	write_control(dir, 1, PG_DB_SHUTDOWNED, 0x1500718, 1, 0);
	assert_int_equal(pg_control_read(dir, &ctl), -EIO);
	assert_int_equal(pg_control_read(missing, &ctl), -ENOENT);
}

static void test_pg_control_was_primary(void **state)
{
	static const struct {
		enum pg_db_state state;
		bool primary;
	} cases[] = {
		{ PG_DB_SHUTDOWNED, true },
		{ PG_DB_IN_PRODUCTION, true },
		{ PG_DB_IN_CRASH_RECOVERY, true },
		{ PG_DB_SHUTDOWNED_IN_RECOVERY, false },
		{ PG_DB_IN_ARCHIVE_RECOVERY, false },
	};
	struct pg_control ctl = { 0 };

	(void)state;
	/* DBState's values are Postgres', on disk: they must not move */
	assert_int_equal(PG_DB_SHUTDOWNED, 1);
	assert_int_equal(PG_DB_SHUTDOWNED_IN_RECOVERY, 2);
	assert_int_equal(PG_DB_IN_CRASH_RECOVERY, 4);
	assert_int_equal(PG_DB_IN_ARCHIVE_RECOVERY, 5);
	assert_int_equal(PG_DB_IN_PRODUCTION, 6);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		ctl.state = cases[i].state;
		if (pg_control_was_primary(&ctl) != cases[i].primary)
			fail_msg("state %d: was_primary %d", (int)cases[i].state, !cases[i].primary);
	}
}

/* ---- pg_control of a real cluster ---------------------------------------------- */

/* The newest PostgreSQL's bin directory (scripts/setup installs postgresql-15). */
static char *pg_bin_dir(void)
{
	glob_t g;
	char *dir;

	if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) != 0 || g.gl_pathc == 0)
		fail_msg("no /usr/lib/postgresql/*/bin/initdb: install postgresql-15 (scripts/setup)");
	dir = xstrdup(g.gl_pathv[g.gl_pathc - 1]);
	globfree(&g);
	*strrchr(dir, '/') = '\0';
	return dir;
}

/* Runs @cmd through the shell, as the postgres user when root (initdb refuses root), in the C locale. */
static char *as_pg(const char *cmd)
{
	return geteuid() == 0 ? xasprintf("runuser -u postgres -- env LC_ALL=C %s", cmd)
			      : xasprintf("env LC_ALL=C %s", cmd);
}

static void run_pg(const char *fmt, ...) _printf_(1, 2);
static void run_pg(const char *fmt, ...)
{
	_cleanup_free_ char *cmd = NULL, *full = NULL;
	va_list ap;
	int r;

	va_start(ap, fmt);
	if (vasprintf(&cmd, fmt, ap) < 0)
		abort();
	va_end(ap);
	full = as_pg(cmd);
	r = system(full);
	if (r != 0)
		fail_msg("%s: exit status %d", full, r);
}

/* What pg_controldata says about @data, in pg_control's terms. */
static void controldata(const char *bin, const char *data, struct pg_control *out)
{
	_cleanup_free_ char *cmd = xasprintf("%s/pg_controldata %s", bin, data);
	_cleanup_free_ char *full = as_pg(cmd);
	char line[256], state[64] = "";
	unsigned hi, lo;
	int seen = 0;
	FILE *f = popen(full, "r");

	assert_non_null(f);
	memset(out, 0, sizeof(*out));
	while (fgets(line, sizeof(line), f)) {
		const char *v = strchr(line, ':');

		if (!v)
			continue;
		for (v++; *v == ' '; v++)
			;
		if (strncmp(line, "Database system identifier:", 27) == 0) {
			out->sysid = strtoull(v, NULL, 10);
			seen |= 1;
		} else if (strncmp(line, "Database cluster state:", 23) == 0) {
			snprintf(state, sizeof(state), "%.*s", (int)strcspn(v, "\n"), v);
			seen |= 2;
		} else if (strncmp(line, "Latest checkpoint location:", 27) == 0 &&
			   sscanf(v, "%X/%X", &hi, &lo) == 2) {
			out->checkpoint_lsn = (uint64_t)hi << 32 | lo;
			seen |= 4;
		} else if (strncmp(line, "Latest checkpoint's TimeLineID:", 31) == 0) {
			out->timeline = (uint32_t)strtoul(v, NULL, 10);
			seen |= 8;
		}
	}
	assert_int_equal(pclose(f), 0);
	if (seen != 15)
		fail_msg("%s: missing lines (seen %#x)", full, seen);
	if (strcmp(state, "shut down") != 0)
		fail_msg("%s: cluster state \"%s\", want \"shut down\"", full, state);
	out->state = PG_DB_SHUTDOWNED;
}

static void assert_control_matches(const char *bin, const char *data)
{
	struct pg_control got, want;
	char g[32], w[32];

	controldata(bin, data, &want);
	assert_int_equal(pg_control_read(data, &got), 0);
	assert_true(want.sysid != 0);
	if (got.sysid != want.sysid)
		fail_msg("sysid %llu, pg_controldata %llu", (unsigned long long)got.sysid,
			 (unsigned long long)want.sysid);
	assert_int_equal(got.state, want.state);
	if (got.checkpoint_lsn != want.checkpoint_lsn)
		fail_msg("checkpoint %s, pg_controldata %s", pg_lsn_text(got.checkpoint_lsn, g, sizeof(g)),
			 pg_lsn_text(want.checkpoint_lsn, w, sizeof(w)));
	assert_int_equal(got.timeline, want.timeline);
	assert_true(pg_control_was_primary(&got));
}

/*
 * The offsets against the real thing: a cluster from initdb (timeline 1),
 * then pg_resetwal onto timeline 3 and WAL past 4 GiB, so the checkpoint's
 * upper half and the timeline are not what a zeroed field would give.
 */
static void test_pg_control_real_cluster(void **state)
{
	const char *dir = *state;
	_cleanup_free_ char *bin = pg_bin_dir();
	_cleanup_free_ char *data = xasprintf("%s/data", dir);
	struct pg_control ctl;

	if (geteuid() == 0) {
		struct passwd *pw = getpwnam("postgres");

		if (!pw)
			fail_msg("running as root and there is no postgres user to run initdb as");
		assert_int_equal(chown(dir, pw->pw_uid, pw->pw_gid), 0);
	}
	run_pg("%s/initdb -D %s -A trust -U postgres --no-sync --no-instructions >/dev/null", bin, data);
	assert_control_matches(bin, data);
	assert_int_equal(pg_control_read(data, &ctl), 0);
	assert_int_equal(ctl.timeline, 1);

	run_pg("%s/pg_resetwal -l 000000030000000200000005 %s >/dev/null", bin, data);
	assert_control_matches(bin, data);
	assert_int_equal(pg_control_read(data, &ctl), 0);
	assert_int_equal(ctl.timeline, 3);
	assert_true(ctl.checkpoint_lsn >> 32 == 2);
}

/* ---- the Postgres files ------------------------------------------------------- */

static void test_settings_wal_keep(void **state)
{
	struct conf *ha = load_file("valid/ha.conf", "spoke-a");
	struct conf *off = load_file("valid/ha_off.conf", "spoke-a");
	char *s;

	(void)state;
	s = pg_settings_text(ha, "/x", NULL);
	assert_non_null(strstr(s, "\nwal_keep_size = '512MB'\n"));
	free(s);
	s = pg_settings_text(off, "/x", NULL);
	assert_null(strstr(s, "\nwal_keep_size")); /* max_slot_wal_keep_size is always there */
	free(s);
	conf_free(off);
	conf_free(ha);
}

static void test_settings_follow_leader(void **state)
{
	struct conf *c = load_file("valid/ha.conf", "spoke-c");
	struct conf *b = load_file("valid/ha.conf", "spoke-b");
	struct conf *cv = conf_with_leader(c, node_index(c, "spoke-b"));
	struct conf *bv = conf_with_leader(b, node_index(b, "spoke-b"));
	char *s;

	(void)state;
	/* the file: both stream from spoke-a */
	s = pg_settings_text(c, "/run/supervisor/pgpass", NULL);
	assert_non_null(strstr(s, "primary_conninfo = 'host=10.88.0.11 port=5432 "));
	free(s);
	s = pg_settings_text(b, "/run/supervisor/pgpass", NULL);
	assert_non_null(strstr(s, "primary_conninfo = 'host=10.88.0.11 port=5432 "));
	free(s);

	/* spoke-b leads: spoke-c streams from it, through its own slot there */
	s = pg_settings_text(cv, "/run/supervisor/pgpass", NULL);
	assert_non_null(strstr(s, "primary_conninfo = 'host=10.88.0.12 port=5432 user=replicator "
				  "passfile=/run/supervisor/pgpass application_name=spoke-c connect_timeout=5'\n"));
	assert_non_null(strstr(s, "primary_slot_name = 'spoke_c'\n"));
	assert_non_null(strstr(s, "\nwal_keep_size = '512MB'\n"));
	free(s);
	s = pg_settings_text(bv, "/run/supervisor/pgpass", NULL);
	assert_null(strstr(s, "primary_conninfo"));
	assert_null(strstr(s, "primary_slot_name"));
	assert_non_null(strstr(s, "cluster_name = 'spoke-b'\n"));
	assert_non_null(strstr(s, "\nwal_keep_size = '512MB'\n"));
	free(s);
	conf_free(bv);
	conf_free(cv);
	conf_free(b);
	conf_free(c);
}

/* The leader's own port, not the follower's: spoke-b listens on 5433 in ha_nofailover.conf. */
static void test_settings_leader_port(void **state)
{
	struct conf *c = load_file("valid/ha_nofailover.conf", "spoke-c");
	struct conf *v = conf_with_leader(c, node_index(c, "spoke-b"));
	char *s = pg_settings_text(v, "/p", NULL);

	(void)state;
	assert_non_null(strstr(s, "primary_conninfo = 'host=10.88.0.12 port=5433 "));
	free(s);
	conf_free(v);
	conf_free(c);
}

/*
 * ha.conf's acl opens 5432 only between spoke-a and spoke-b/spoke-c; the
 * ha group derives c -> b, so spoke-b lets spoke-c in (it follows spoke-b
 * once spoke-b leads), view or not. Without HA nothing opens it.
 */
static void test_hba_derived_flow(void **state)
{
	struct conf *b = load_file("valid/ha.conf", "spoke-b");
	struct conf *v = conf_with_leader(b, node_index(b, "spoke-b"));
	struct conf *plain = load_file("valid/ha_off.conf", "spoke-b");
	char *hba = pg_hba_text(b, NULL), *hv = pg_hba_text(v, NULL), *hp;

	(void)state;
	assert_non_null(strstr(hba, "host    replication  replicator   10.88.0.13/32     scram-sha-256  # spoke-c\n"));
	assert_non_null(strstr(hba, "host    all          all          10.88.0.13/32     scram-sha-256  # spoke-c\n"));
	assert_non_null(strstr(hba, "host    replication  replicator   10.88.0.11/32     scram-sha-256  # spoke-a\n"));
	assert_non_null(strstr(hba, "host    all          all          10.88.0.11/32     scram-sha-256  # spoke-a\n"));
	assert_null(strstr(hba, "10.88.0.12/32")); /* not itself */
	assert_null(strstr(hba, "10.88.0.1/32"));  /* never the hub */
	assert_string_equal(hv, hba);
	/* ha_off.conf: only spoke-b -> spoke-a is open; nothing reaches spoke-b */
	hp = pg_hba_text(plain, NULL);
	assert_null(strstr(hp, "host "));
	free(hp);
	free(hv);
	free(hba);
	conf_free(plain);
	conf_free(v);
	conf_free(b);
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_etcd_argv),
		cmocka_unit_test(test_etcd_argv_nospace),
		cmocka_unit_test(test_view_leader),
		cmocka_unit_test(test_view_flattens_cascade),
		cmocka_unit_test(test_view_no_leader),
		cmocka_unit_test(test_view_borrows),
		cmocka_unit_test(test_lsn_round_trip),
		cmocka_unit_test(test_lsn_rejects),
		cmocka_unit_test_setup_teardown(test_pg_control_synthetic, temp_dir_setup, temp_dir_teardown),
		cmocka_unit_test(test_pg_control_was_primary),
		cmocka_unit_test_setup_teardown(test_pg_control_real_cluster, temp_dir_setup,
						temp_dir_teardown),
		cmocka_unit_test(test_settings_wal_keep),
		cmocka_unit_test(test_settings_follow_leader),
		cmocka_unit_test(test_settings_leader_port),
		cmocka_unit_test(test_hba_derived_flow),
	};

	return cmocka_run_group_tests_name("ha", tests, NULL, NULL);
}
