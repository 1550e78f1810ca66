/* SPDX-License-Identifier: MIT */
/*
 * The firewall: one nftables table of our own ("inet supervisor"), never
 * anyone else's and never `flush ruleset`. The rules are a pure function
 * of the validated configuration (a struct fw_model, unit-tested without a
 * kernel), rendered as nft text for people (check-config) and as netlink
 * messages for the kernel. An apply is one batch that replaces the table
 * atomically (add, delete, add): every message is acknowledged and checked,
 * and a failed batch leaves the previous table in force.
 *
 * Running, the firewall watches the ruleset's generation: when someone else
 * commits, our table is read back and compared with what we want; a table
 * that was deleted or edited is re-applied within a second and counted.
 * The table carries no owner flag, so it outlives the supervisor: a crash
 * leaves the node closed, not open.
 */
#ifndef SUP_FIREWALL_H
#define SUP_FIREWALL_H

#include <jansson.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "conf/conf.h"
#include "lib/common.h"
#include "lib/health.h"
#include "lib/loop.h"

#define FW_TABLE "supervisor"
#define FW_IFNAMSIZ 16

/* ---- the rule model (pure) ------------------------------------------------ */

enum fw_match_kind {
	FW_MATCH_IIF_LO,      /* iif "lo" (always index 1) */
	FW_MATCH_IIFNAME,     /* iifname "wg0" */
	FW_MATCH_OIFNAME,     /* oifname "wg0" (negate: !=) */
	FW_MATCH_CT_STATE,    /* ct state in a mask of NF_CT_STATE_BIT()s */
	FW_MATCH_SADDR,       /* ip saddr A.B.C.D/N */
	FW_MATCH_DADDR,       /* ip daddr A.B.C.D/N */
	FW_MATCH_DPORT,       /* tcp|udp dport N */
	FW_MATCH_ICMPV6_TYPE, /* icmpv6 type T */
	FW_MATCH_SET,         /* ip saddr [. ip daddr] . tcp|udp dport @set / vmap @set */
};

struct fw_match {
	enum fw_match_kind kind;
	bool negate;
	union {
		char ifname[FW_IFNAMSIZ];
		uint32_t ct_mask;
		struct conf_cidr cidr;
		struct {
			uint8_t proto;
			uint16_t port;
		} l4;
		uint8_t icmp_type;
		size_t set;   /* index into fw_model.sets */
	} u;
};

enum fw_verdict {
	FW_ACCEPT,
	FW_DROP,
	FW_VMAP,      /* the verdict comes from the map the last match looks up */
};

#define FW_MATCHES_MAX 5

struct fw_rule {
	struct fw_match match[FW_MATCHES_MAX];
	size_t n_match;
	bool counter;          /* drops are counted, for `ctl firewall` */
	enum fw_verdict verdict;
	const char *why;       /* what the rule is for: shown as an nft comment line */
};

enum fw_hook {
	FW_HOOK_INPUT,
	FW_HOOK_FORWARD,
	FW_HOOK_OUTPUT,
};

struct fw_chain {
	const char *name;
	enum fw_hook hook;
	bool policy_drop;
	struct fw_rule *rules;
	size_t n_rules;
};

enum fw_set_key {
	FW_KEY_SADDR_DPORT,        /* ipv4_addr . inet_service */
	FW_KEY_SADDR_DADDR_DPORT,  /* ipv4_addr . ipv4_addr . inet_service (a vmap) */
};

struct fw_elem {
	struct in_addr saddr, daddr;
	uint16_t port;
};

struct fw_set {
	char name[FW_IFNAMSIZ];
	enum fw_set_key key;
	uint8_t proto;         /* IPPROTO_TCP or IPPROTO_UDP */
	bool vmap;             /* elements map to accept */
	struct fw_elem *elems;
	size_t n_elems;
};

#define FW_CHAINS_MAX 3
#define FW_SETS_MAX 2

struct fw_model {
	const char *table;
	struct fw_chain chains[FW_CHAINS_MAX];
	size_t n_chains;
	struct fw_set sets[FW_SETS_MAX];
	size_t n_sets;
};

/**
 * fw_model_build() - the ruleset this node wants, from its configuration.
 * @conf: a validated configuration (this node is conf_self()).
 *
 * Spoke: input drops by default and takes lo, established flows, the
 * status port, IPv6 neighbour discovery and, from wg0, overlay sources
 * other than the hub (only the acl's flows when there is an acl); nothing
 * from the hub's overlay IP passes, not even replies. Hub: input takes
 * ssh (from hub.ssh_from), the WireGuard port and established flows;
 * forward passes wg0 to wg0 only for allowed pairs, drops other wg0
 * traffic and accepts the rest (other bridges); output drops anything to
 * the overlay.
 *
 * Return: a new model; free with fw_model_free().
 */
struct fw_model *fw_model_build(const struct conf *conf);
struct fw_model *fw_model_free(struct fw_model *m);
/* fw_model_n_elems() - elements over all sets. */
size_t fw_model_n_elems(const struct fw_model *m);
/* fw_model_n_rules() - rules over all chains. */
size_t fw_model_n_rules(const struct fw_model *m);

/**
 * fw_model_nft() - the table in nft(8) syntax, loadable with `nft -f`.
 * @m: the model.
 * @replace: prefix "table ...; delete table ...;" so that loading the text
 *           replaces an existing table in one transaction, as we do.
 *
 * Return: the text; caller frees.
 */
char *fw_model_nft(const struct fw_model *m, bool replace);

/**
 * fw_model_hash() - "sha256:" and the first 16 hex digits of the SHA-256
 * of fw_model_nft(@m, false), so anyone can recompute it from check-config.
 * @m: the model.
 * @out: receives the text.
 */
void fw_model_hash(const struct fw_model *m, char out[24]);

/* ---- netlink ------------------------------------------------------------------ */

/* Positive results of fw_apply() (the error contract's expected conditions). */
#define FW_E_REJECTED 1     /* the kernel refused the batch; nothing changed */
#define FW_E_UNSUPPORTED 2  /* this kernel has no nf_tables */

struct fw_apply_result {
	uint32_t messages;      /* command messages sent (each acknowledged) */
	uint32_t genid;         /* ruleset generation after the commit */
	uint64_t duration_us;
	uint32_t portid;        /* the netlink port the commit came from */
	char error[256];        /* why, when not 0 */
};

/**
 * fw_apply() - replace our table with @m in one atomic batch.
 * @m: the model.
 * @res: receives counts, timing, and the reason on failure.
 *
 * Blocks for the kernel's processing of the batch (it runs inside
 * sendmsg()); about 50 ms for 60 000 set elements.
 * Return: 0; FW_E_REJECTED (the previous table is untouched);
 * FW_E_UNSUPPORTED; or -errno for a socket failure.
 */
int fw_apply(const struct fw_model *m, struct fw_apply_result *res) _must_check_;

/* Counters read back from our table's counted rules. */
struct fw_counter {
	char chain[FW_IFNAMSIZ];
	unsigned rule;          /* position in the chain, from 0 */
	const char *why;        /* the rule's purpose (from the model) */
	uint64_t packets, bytes;
};

#define FW_COUNTERS_MAX 16

struct fw_readback {
	bool present;           /* our table exists */
	bool matches;           /* and is exactly the model */
	char difference[256];   /* the first difference, when not */
	uint32_t genid;         /* the generation that was read */
	struct fw_counter counters[FW_COUNTERS_MAX];
	size_t n_counters;
};

/**
 * fw_check() - read our table back from the kernel and compare it with @m.
 * @m: the model.
 * @out: receives presence, the first difference, and the drop counters.
 *
 * The read is consistent: it is retried when the generation moved during it.
 * Return: 0 or -errno (FW_E_UNSUPPORTED without nf_tables).
 */
int fw_check(const struct fw_model *m, struct fw_readback *out) _must_check_;

/* fw_genid() - the current ruleset generation. Return: 0 or -errno. */
int fw_genid(uint32_t *out) _must_check_;

/* ---- other firewalls on the hub ---------------------------------------------------- */

/*
 * A drop in any base chain on the forward hook wins over our accept, so a
 * hub that also runs Docker or UFW (`ip filter FORWARD` policy drop) can
 * silently kill spoke-to-spoke traffic while every tunnel is fresh. The
 * ruleset we do not own is read (fw_foreign_read()) into the description
 * below, and judged by a pure function (fw_foreign_judge()) for packets
 * from the overlay interface back out of it.
 */

enum fw_fkey {
	FW_FKEY_IIFNAME,       /* meta iifname (iptables -i) */
	FW_FKEY_OIFNAME,       /* meta oifname (iptables -o) */
	FW_FKEY_NFPROTO,       /* meta nfproto (inet tables) */
	FW_FKEY_OTHER,         /* anything else: addresses, ports, ct state, xt matches ... */
};

struct fw_fmatch {
	enum fw_fkey key;
	bool negate;           /* != */
	bool prefix;           /* compares only strlen(name) bytes: "wg*" (iptables "wg+") */
	char name[FW_IFNAMSIZ];
	uint8_t nfproto;       /* NFPROTO_IPV4 ... */
};

enum fw_fverdict {
	FW_FV_CONTINUE,        /* no verdict (counter, log): on to the next rule */
	FW_FV_ACCEPT,
	FW_FV_DROP,
	FW_FV_REJECT,
	FW_FV_JUMP,            /* to .target, back here on return */
	FW_FV_GOTO,            /* to .target, not back */
	FW_FV_RETURN,
	FW_FV_OTHER,           /* a verdict map, queue, an unknown xt target: not judged */
};

struct fw_frule {
	struct fw_fmatch *match;
	size_t n_match;
	enum fw_fverdict verdict;
	char *target;          /* the chain, for JUMP and GOTO */
	uint64_t handle;
};

struct fw_fchain {
	char *name;
	bool forward;          /* a base chain on the forward hook */
	bool policy_drop;
	struct fw_frule *rules;
	size_t n_rules;
};

struct fw_ftable {
	uint32_t family;       /* NFPROTO_IPV4 or NFPROTO_INET: the families that see IPv4 */
	char *name;
	struct fw_fchain *chains;
	size_t n_chains;
};

/* The ruleset we do not own, as far as the forward hook goes. */
struct fw_foreign {
	struct fw_ftable *tables;
	size_t n_tables;
	uint32_t genid;        /* the generation that was read */
};

/* fw_foreign_clear() - free everything @f holds and zero it. */
void fw_foreign_clear(struct fw_foreign *f);

/* One base chain that would drop overlay-to-overlay traffic. */
struct fw_block {
	char chain[160];       /* "ip filter FORWARD" */
	char why[320];         /* "policy drop, and no rule accepts ..." */
	char fix[320];         /* the command that lets the traffic through */
};

#define FW_BLOCKS_MAX 8

/**
 * fw_foreign_judge() - which base chains would drop forwarded packets from
 * @ifname to @ifname, and the command that fixes each.
 * @f: the ruleset we do not own (our own table must not be in it).
 * @ifname: the overlay interface ("wg0").
 * @out: receives up to FW_BLOCKS_MAX findings.
 *
 * Conservative: a chain is reported only when every such packet certainly
 * dies in it: its policy is drop and no rule accepts all of them first, or
 * a rule that matches all of them drops or rejects. What is and is not
 * recognised is spelled out in firewall/foreign.c.
 *
 * Return: the number of findings.
 */
size_t fw_foreign_judge(const struct fw_foreign *f, const char *ifname, struct fw_block out[FW_BLOCKS_MAX]);

/**
 * fw_foreign_read() - read every ip and inet table but ours that has a base
 * chain on the forward hook, with its chains and rules.
 * @out: receives the description; free with fw_foreign_clear().
 *
 * Dormant tables are left out (their chains are not hooked). The read is
 * consistent: retried when the generation moved during it. A few netlink
 * dumps, filtered to those tables; milliseconds.
 * Return: 0, FW_E_UNSUPPORTED, or -errno.
 */
int fw_foreign_read(struct fw_foreign *out) _must_check_;

/* ---- the running firewall --------------------------------------------------- */

enum fw_state {
	FW_STATE_PENDING,      /* not applied yet */
	FW_STATE_APPLIED,      /* in force and verified */
	FW_STATE_FAILED,       /* the last apply failed: see last_error */
	FW_STATE_UNSUPPORTED,  /* no nf_tables in this kernel */
};

struct fw_status {
	enum fw_state state;
	char rules_hash[24];      /* of the rules in force ("" before the first apply) */
	char wanted_hash[24];     /* of the rules the configuration asks for */
	int64_t applied_at_ms;    /* wall clock of the last good apply; 0: never */
	uint64_t apply_us;        /* how long it took */
	uint32_t genid;
	uint64_t applies, repairs, checks;
	char last_repair[256];    /* what the last repair fixed */
	int64_t last_repair_at_ms;
	char last_error[320];
	size_t n_rules, n_elems;
};

struct firewall;

/**
 * firewall_new() - apply this node's table now and keep it in force.
 * @loop: the event loop (an nftables event socket and timers are added).
 * @conf: the configuration (replace with firewall_set_conf() on reload).
 * @out: receives the object.
 *
 * The first apply happens before this returns, so nothing started after it
 * runs unprotected; a failed apply is retried, with the reason in the
 * status. Return: 0 or -errno (only for the loop's own failures).
 */
int firewall_new(struct loop *loop, const struct conf *conf, struct firewall **out) _must_check_;
struct firewall *firewall_free(struct firewall *fw);
/* firewall_set_conf() - re-apply when the rules the file asks for changed. */
void firewall_set_conf(struct firewall *fw, const struct conf *conf);
/* firewall_on_change() - called when the state changes (e.g. first applied). */
void firewall_on_change(struct firewall *fw, void (*fn)(void *data, enum fw_state st), void *data);
const struct fw_status *firewall_status(const struct firewall *fw);
/*
 * firewall_refresh() - read the table back now (fresh drop counters; a
 * difference found is repaired at once). A few milliseconds of netlink.
 */
void firewall_refresh(struct firewall *fw);
const char *fw_state_name(enum fw_state st);
/*
 * What the firewall knows, for the supervisor's snapshot. Borrowed from the
 * firewall: valid until it next runs on the loop (build, render, drop).
 */
struct fw_report {
	const struct fw_status *st;
	const char *table;                 /* "inet supervisor" */
	const char *ifname;                /* the overlay interface */
	const struct fw_counter *drops;    /* counted rules, as of the last read-back */
	size_t n_drops;
	bool hub;                          /* other firewalls' forward chains are judged here */
	bool foreign_read;                 /* they were read at least once */
	uint32_t foreign_genid;            /* the generation last judged */
	int64_t foreign_at_ms;             /* wall clock of that read; 0: never */
	const char *foreign_error;         /* NULL when the read worked */
	const struct fw_block *blocks;     /* chains that drop ifname-to-ifname traffic */
	size_t n_blocks;
};

/* firewall_report() - fill @out (borrowing, see struct fw_report). */
void firewall_report(const struct firewall *fw, struct fw_report *out);
/*
 * firewall_health() - our own table: critical while it is not in force
 * (pending, failed, unsupported); component "firewall".
 */
void firewall_health(const struct fw_report *r, struct health_report *out);
/*
 * firewall_foreign_health() - the other firewalls (the hub): degraded, with
 * a reason and the fix per chain that drops wg0-to-wg0 traffic.
 */
void firewall_foreign_health(const struct fw_report *r, struct health_report *out);

#endif
