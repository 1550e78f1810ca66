// SPDX-License-Identifier: MIT
/*
 * The running firewall: apply at start (before anything else listens),
 * re-apply when a reload changes the rules, and keep the table as applied.
 *
 * Drift is noticed two ways. An nftables event socket, filtered in the
 * kernel to NEWGEN messages only (one per commit, by anyone), schedules a
 * read-back 100 ms after a commit that was not ours; events lost to a full
 * socket buffer schedule one too. A 5 s poll of the generation id covers a
 * missing event socket. A read-back that finds our table missing or
 * different re-applies it and counts a repair. Our own commits are told
 * apart by the netlink port id they came from, not by the generation, so a
 * foreign commit racing ours is still checked.
 *
 * On the hub, the same triggers (a foreign commit, 100 ms later; the poll,
 * when the generation moved) re-read the other tables' forward chains and
 * judge whether they drop spoke-to-spoke traffic (firewall/foreign.c): our
 * accept cannot override their drop, so all we can do is say so, and how
 * to fix it.
 */
#include "firewall/firewall_internal.h"
#include "lib/common.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/mem.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

#include <libnftnl/gen.h>

#define CHECK_DELAY_MS 100
#define POLL_MS 5000
#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 30000

struct firewall {
	struct loop *loop;
	const struct conf *conf;
	struct fw_model *model;
	struct fw_status st;
	struct fw_readback last_read;
	struct loop_source *check_timer, *retry_timer, *poll_timer, *events_src;
	struct mnl_socket *events;
	uint32_t own_portid;          /* the socket of our last commit */
	uint32_t retry_ms;
	void (*on_change)(void *data, enum fw_state st);
	void *on_change_data;
	/* Other firewalls (the hub only). */
	bool hub;
	char ifname[FW_IFNAMSIZ];
	bool foreign_read;            /* read at least once */
	uint32_t foreign_genid;       /* the generation last judged */
	int64_t foreign_at_ms;
	char foreign_error[160];
	struct fw_block blocks[FW_BLOCKS_MAX];
	size_t n_blocks;
};

const char *fw_state_name(enum fw_state st)
{
	switch (st) {
	case FW_STATE_PENDING: return "pending";
	case FW_STATE_APPLIED: return "applied";
	case FW_STATE_FAILED: return "failed";
	case FW_STATE_UNSUPPORTED: return "unsupported";
	}
	return "unknown";
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Listeners hear of every change, and of every failure (its reason may be new). */
static void set_state(struct firewall *fw, enum fw_state st)
{
	enum fw_state was = fw->st.state;

	fw->st.state = st;
	if ((st != was || st != FW_STATE_APPLIED) && fw->on_change)
		fw->on_change(fw->on_change_data, st);
}

/* Read back and compare; the caller decides what a difference means. */
static int read_back(struct firewall *fw)
{
	int r = fw_check(fw->model, &fw->last_read);

	fw->st.checks++;
	if (r == 0)
		fw->st.genid = fw->last_read.genid;
	return r;
}

/* Apply the model; on success verify it by reading it back. */
static void apply(struct firewall *fw, const char *why)
{
	struct fw_apply_result res;
	char q[600];
	int r = fw_apply(fw->model, &res);

	fw->own_portid = res.portid;
	if (r != 0) {
		snprintf(fw->st.last_error, sizeof(fw->st.last_error), "%s", res.error);
		log_errorx("firewall", "apply failed reason=%s error=%s retry_in_ms=%u", why,
			   log_quote(q, sizeof(q), res.error), fw->retry_ms);
		set_state(fw, r == FW_E_UNSUPPORTED ? FW_STATE_UNSUPPORTED : FW_STATE_FAILED);
		loop_timer_arm(fw->retry_timer, fw->retry_ms, 0);
		fw->retry_ms = fw->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : fw->retry_ms * 2;
		return;
	}
	fw->retry_ms = RETRY_MIN_MS;
	loop_timer_disarm(fw->retry_timer);
	fw->st.applies++;
	fw->st.apply_us = res.duration_us;
	fw->st.applied_at_ms = wall_ms();
	fw->st.genid = res.genid;
	snprintf(fw->st.rules_hash, sizeof(fw->st.rules_hash), "%s", fw->st.wanted_hash);
	fw->st.n_rules = fw_model_n_rules(fw->model);
	fw->st.n_elems = fw_model_n_elems(fw->model);
	if (read_back(fw) == 0 && !fw->last_read.matches) {
		/* Our own commit reads back differently: say so, never loop on it. */
		snprintf(fw->st.last_error, sizeof(fw->st.last_error),
			 "applied, but it reads back differently: %s", fw->last_read.difference);
		log_errorx("firewall", "apply not verified difference=%s",
			   log_quote(q, sizeof(q), fw->last_read.difference));
		set_state(fw, FW_STATE_FAILED);
		return;
	}
	fw->st.last_error[0] = '\0';
	log_info("firewall", "applied reason=%s table=inet/%s rules=%zu elements=%zu messages=%u duration_us=%llu hash=%s",
		 why, FW_TABLE, fw->st.n_rules, fw->st.n_elems, res.messages,
		 (unsigned long long)res.duration_us, fw->st.rules_hash);
	set_state(fw, FW_STATE_APPLIED);
}

static void check_now(struct firewall *fw)
{
	char q[600];
	int r;

	if (fw->st.state != FW_STATE_APPLIED)
		return; /* a failed apply has its own retry */
	if ((r = read_back(fw)) != 0) {
		errno = r < 0 ? -r : EPROTO;
		log_warn("firewall", "cannot read our table back");
		return;
	}
	if (fw->last_read.matches)
		return;
	fw->st.repairs++;
	fw->st.last_repair_at_ms = wall_ms();
	snprintf(fw->st.last_repair, sizeof(fw->st.last_repair), "%s", fw->last_read.difference);
	log_warnx("firewall", "our table was changed by someone else; re-applying difference=%s repairs=%llu",
		  log_quote(q, sizeof(q), fw->last_read.difference), (unsigned long long)fw->st.repairs);
	apply(fw, "repair");
}

static bool same_block(const struct fw_block *a, const struct fw_block *b)
{
	return strcmp(a->chain, b->chain) == 0 && strcmp(a->why, b->why) == 0 && strcmp(a->fix, b->fix) == 0;
}

static bool known_block(const struct fw_block *set, size_t n, const struct fw_block *b)
{
	for (size_t i = 0; i < n; i++)
		if (same_block(&set[i], b))
			return true;
	return false;
}

/* Re-read and judge the other tables; log what appeared and what cleared. */
static void scan_foreign(struct firewall *fw)
{
	struct fw_foreign f;
	struct fw_block now[FW_BLOCKS_MAX];
	char q[3][400];
	size_t n;
	int r;

	if (!fw->hub)
		return;
	if ((r = fw_foreign_read(&f)) != 0) {
		if (!fw->foreign_error[0]) {
			errno = r < 0 ? -r : EPROTONOSUPPORT;
			log_warn("firewall", "cannot read the other nftables tables");
		}
		snprintf(fw->foreign_error, sizeof(fw->foreign_error), "cannot read the other tables: %s",
			 strerror(r < 0 ? -r : EPROTONOSUPPORT));
		return;
	}
	fw->foreign_error[0] = '\0';
	n = fw_foreign_judge(&f, fw->ifname, now);
	fw->foreign_genid = f.genid;
	fw->foreign_at_ms = wall_ms();
	fw->foreign_read = true;
	fw_foreign_clear(&f);
	for (size_t i = 0; i < n; i++)
		if (!known_block(fw->blocks, fw->n_blocks, &now[i]))
			log_warnx("firewall", "another firewall drops forwarded %s-to-%s traffic chain=%s why=%s fix=%s",
				  fw->ifname, fw->ifname, log_quote(q[0], sizeof(q[0]), now[i].chain),
				  log_quote(q[1], sizeof(q[1]), now[i].why), log_quote(q[2], sizeof(q[2]), now[i].fix));
	for (size_t i = 0; i < fw->n_blocks; i++)
		if (!known_block(now, n, &fw->blocks[i]))
			log_info("firewall", "the other firewall no longer drops forwarded %s-to-%s traffic chain=%s",
				 fw->ifname, fw->ifname, log_quote(q[0], sizeof(q[0]), fw->blocks[i].chain));
	memcpy(fw->blocks, now, n * sizeof(now[0]));
	fw->n_blocks = n;
}

static void on_check(struct loop_source *src, void *data)
{
	(void)src;
	check_now(data);
	scan_foreign(data);
}

static void on_retry(struct loop_source *src, void *data)
{
	(void)src;
	apply(data, "retry");
}

static void schedule_check(struct firewall *fw)
{
	if (!loop_timer_armed(fw->check_timer))
		loop_timer_arm(fw->check_timer, CHECK_DELAY_MS, 0);
}

static void on_poll(struct loop_source *src, void *data)
{
	struct firewall *fw = data;
	uint32_t gen;

	(void)src;
	if (fw_genid(&gen) != 0)
		return;
	if (fw->st.state == FW_STATE_APPLIED && gen != fw->st.genid)
		schedule_check(fw);
	else if (fw->hub && (!fw->foreign_read || gen != fw->foreign_genid))
		scan_foreign(fw); /* a commit whose event was missed */
}

/* ---- events ------------------------------------------------------------------ */

static void on_events(struct loop_source *src, int fd, uint32_t events, void *data)
{
	struct firewall *fw = data;
	char buf[8192];

	(void)src;
	(void)fd;
	(void)events;
	for (;;) {
		ssize_t n = recv(mnl_socket_get_fd(fw->events), buf, sizeof(buf), MSG_DONTWAIT);

		if (n < 0) {
			if (errno == ENOBUFS) { /* events were lost: look at the table */
				schedule_check(fw);
				continue;
			}
			return; /* EAGAIN: drained */
		}
		for (const struct nlmsghdr *nlh = (void *)buf; mnl_nlmsg_ok(nlh, (int)n);
		     nlh = mnl_nlmsg_next(nlh, (int *)&n)) {
			if (NFNL_MSG_TYPE(nlh->nlmsg_type) != NFT_MSG_NEWGEN)
				continue;
			if (nlh->nlmsg_pid != fw->own_portid || nlh->nlmsg_pid == 0)
				schedule_check(fw);
		}
	}
}

/*
 * A classic BPF filter that keeps only NEWGEN messages: one event per
 * commit instead of one per rule or set element (an apply of 60 000
 * elements would otherwise overflow the socket on every apply).
 */
static int filter_newgen(int fd)
{
	uint16_t type = NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWGEN;
	struct sock_filter code[] = {
		/* BPF loads are big-endian; nlmsg_type is in host order. */
		BPF_STMT(BPF_LD | BPF_H | BPF_ABS, offsetof(struct nlmsghdr, nlmsg_type)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, htons(type), 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0xffffffff),
		BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_fprog prog = { .len = ARRAY_SIZE(code), .filter = code };

	return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0 ? -errno : 0;
}

static int open_events(struct firewall *fw)
{
	int r;

	fw->events = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (!fw->events)
		return -errno;
	if ((r = filter_newgen(mnl_socket_get_fd(fw->events))) < 0)
		log_warnx("firewall", "no event filter; every nftables event will be read");
	if (mnl_socket_bind(fw->events, 1 << (NFNLGRP_NFTABLES - 1), MNL_SOCKET_AUTOPID) < 0)
		return -errno;
	return loop_add_fd(fw->loop, mnl_socket_get_fd(fw->events), EPOLLIN, on_events, fw,
			   &fw->events_src);
}

/* ---- public --------------------------------------------------------------------- */

static void set_model(struct firewall *fw, const struct conf *conf)
{
	fw_model_free(fw->model);
	fw->conf = conf;
	fw->model = fw_model_build(conf);
	fw->hub = conf_self(conf)->kind == CONF_NODE_HUB;
	snprintf(fw->ifname, sizeof(fw->ifname), "%s", conf->cluster.interface);
	fw_model_hash(fw->model, fw->st.wanted_hash);
}

int firewall_new(struct loop *loop, const struct conf *conf, struct firewall **out)
{
	struct firewall *fw = xcalloc(1, sizeof(*fw));
	int r;

	fw->loop = loop;
	fw->retry_ms = RETRY_MIN_MS;
	set_model(fw, conf);
	if ((r = loop_add_timer(loop, on_check, fw, &fw->check_timer)) < 0 ||
	    (r = loop_add_timer(loop, on_retry, fw, &fw->retry_timer)) < 0 ||
	    (r = loop_add_timer(loop, on_poll, fw, &fw->poll_timer)) < 0) {
		firewall_free(fw);
		return r;
	}
	if ((r = open_events(fw)) < 0) {
		errno = -r;
		log_warn("firewall", "no nftables events; drift is found by polling every %d s",
			 POLL_MS / 1000);
	}
	loop_timer_arm(fw->poll_timer, POLL_MS, POLL_MS);
	apply(fw, "start");
	scan_foreign(fw);
	*out = fw;
	return 0;
}

struct firewall *firewall_free(struct firewall *fw)
{
	if (!fw)
		return NULL;
	/* The table stays: a node without its supervisor stays closed. */
	loop_remove(fw->check_timer);
	loop_remove(fw->retry_timer);
	loop_remove(fw->poll_timer);
	loop_remove(fw->events_src);
	if (fw->events)
		mnl_socket_close(fw->events);
	fw_model_free(fw->model);
	free(fw);
	return NULL;
}

void firewall_set_conf(struct firewall *fw, const struct conf *conf)
{
	char before[sizeof(fw->st.wanted_hash)];

	memcpy(before, fw->st.wanted_hash, sizeof(before));
	set_model(fw, conf);
	if (strcmp(before, fw->st.wanted_hash) == 0 && fw->st.state == FW_STATE_APPLIED)
		return;
	fw->retry_ms = RETRY_MIN_MS;
	apply(fw, "reload");
}

void firewall_on_change(struct firewall *fw, void (*fn)(void *data, enum fw_state st), void *data)
{
	fw->on_change = fn;
	fw->on_change_data = data;
}

void firewall_refresh(struct firewall *fw)
{
	check_now(fw);
	scan_foreign(fw);
}

const struct fw_status *firewall_status(const struct firewall *fw)
{
	return &fw->st;
}

/* ---- report ------------------------------------------------------------------------ */

void firewall_report(const struct firewall *fw, struct fw_report *out)
{
	*out = (struct fw_report){
		.st = &fw->st, .table = "inet " FW_TABLE, .ifname = fw->ifname,
		.drops = fw->last_read.counters, .n_drops = fw->last_read.n_counters,
		.hub = fw->hub, .foreign_read = fw->foreign_read, .foreign_genid = fw->foreign_genid,
		.foreign_at_ms = fw->foreign_at_ms, .foreign_error = fw->foreign_error[0] ? fw->foreign_error : NULL,
		.blocks = fw->blocks, .n_blocks = fw->n_blocks,
	};
}

void firewall_foreign_health(const struct fw_report *r, struct health_report *out)
{
	for (size_t i = 0; i < r->n_blocks; i++) {
		const struct fw_block *b = &r->blocks[i];

		health_add(out, HEALTH_DEGRADED, "firewall", "firewall: another firewall drops forwarded %s-to-%s "
			   "(spoke to spoke) traffic in chain %s: %s; our accept cannot override it; fix on the hub: %s",
			   r->ifname, r->ifname, b->chain, b->why, b->fix);
	}
}

void firewall_health(const struct fw_report *r, struct health_report *out)
{
	switch (r->st->state) {
	case FW_STATE_APPLIED:
		return;
	case FW_STATE_PENDING:
		health_add(out, HEALTH_CRITICAL, "firewall", "firewall: not applied yet");
		return;
	case FW_STATE_FAILED:
	case FW_STATE_UNSUPPORTED:
		health_add(out, HEALTH_CRITICAL, "firewall", "firewall %s: %s%s", fw_state_name(r->st->state),
			   r->st->last_error,
			   r->st->rules_hash[0] ? " (the previously applied rules stay in force)" : "");
		return;
	}
}
