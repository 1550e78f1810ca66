// SPDX-License-Identifier: MIT
/*
 * Other firewalls on the hub, judged (pure). Packets forwarded from the
 * overlay interface back into it (spoke to spoke) traverse every base
 * chain on the forward hook, in every table; a drop anywhere is final and
 * an accept only ends its own chain. So each foreign base chain is judged
 * on its own: does every such packet certainly die in it?
 *
 * The judgement is about "a packet from wg0 to wg0", any address, port or
 * connection state. Each rule covers all of those packets, some, or none:
 *
 *   - iifname/oifname, == or !=, exact or a prefix ("wg*", iptables' "wg+"),
 *     and meta nfproto (inet tables) are decided against that packet;
 *   - anything else (addresses, ports, ct state, marks, xt matches, set
 *     lookups, limits) makes a rule cover only "some";
 *   - counter and log are neither; a rule without a verdict continues.
 *
 * A chain is walked in order, following jump and goto (8 deep):
 *
 *   - a rule covering all that accepts: the chain passes the traffic;
 *   - one covering all that drops or rejects: reported (that rule);
 *   - reaching the end of a base chain whose policy is drop: reported;
 *   - a rule covering some that accepts and names the interface
 *     (`iifname "wg0" tcp dport 5432 accept`): someone wrote rules for the
 *     overlay on purpose; the chain is not judged;
 *   - a rule covering some that jumps to a chain that may accept: not judged;
 *   - verdict maps, queues and xt targets other than REJECT, LOG and NFLOG
 *     covering all: not judged.
 *
 * Not recognised, on purpose: drops of some of the traffic (`ct state
 * invalid drop`, a port), accepts by address only (`ip saddr 10.88.0.0/24
 * accept` in a policy-drop chain is reported although it lets the overlay
 * through: the fix is harmless), iif/oif by index, verdicts from maps,
 * chains of other families (ip6, bridge, netdev) and iptables-legacy,
 * which nftables cannot see. A chain that is not judged is not reported:
 * a reason must be right when it is there.
 */
#include "firewall/firewall.h"

#include <linux/netfilter.h>
#include <stdlib.h>
#include <string.h>

#define WALK_DEPTH 8

enum cover {
	COVER_NONE,
	COVER_SOME,
	COVER_ALL,
};

enum walk {
	WALK_END,        /* fell off the end, or returned */
	WALK_ACCEPT,
	WALK_DROP,
	WALK_UNJUDGED,
};

struct walk_ctx {
	const struct fw_ftable *t;
	const char *ifname;
	const struct fw_fchain *drop_chain; /* where a certain drop was found */
	size_t drop_rule;
};

void fw_foreign_clear(struct fw_foreign *f)
{
	for (size_t i = 0; i < f->n_tables; i++) {
		struct fw_ftable *t = &f->tables[i];

		for (size_t j = 0; j < t->n_chains; j++) {
			struct fw_fchain *c = &t->chains[j];

			for (size_t k = 0; k < c->n_rules; k++) {
				free(c->rules[k].match);
				free(c->rules[k].target);
			}
			free(c->rules);
			free(c->name);
		}
		free(t->chains);
		free(t->name);
	}
	free(f->tables);
	memset(f, 0, sizeof(*f));
}

static const char *family_name(uint32_t family)
{
	return family == NFPROTO_INET ? "inet" : family == NFPROTO_IPV4 ? "ip" : "?";
}

static const struct fw_fchain *find_chain(const struct fw_ftable *t, const char *name)
{
	for (size_t i = 0; name && i < t->n_chains; i++)
		if (strcmp(t->chains[i].name, name) == 0)
			return &t->chains[i];
	return NULL;
}

static bool name_matches(const struct fw_fmatch *m, const char *ifname)
{
	size_t n = strnlen(m->name, sizeof(m->name));
	bool eq = m->prefix ? strncmp(ifname, m->name, n) == 0 : strncmp(ifname, m->name, sizeof(m->name)) == 0;

	return eq != m->negate;
}

/* How much of the wg0-to-wg0 traffic @r matches; @named: it says "wg0" (==). */
static enum cover rule_covers(const struct fw_frule *r, const char *ifname, bool *named)
{
	enum cover c = COVER_ALL;

	*named = false;
	for (size_t i = 0; i < r->n_match; i++) {
		const struct fw_fmatch *m = &r->match[i];

		switch (m->key) {
		case FW_FKEY_IIFNAME:
		case FW_FKEY_OIFNAME:
			if (!name_matches(m, ifname))
				return COVER_NONE;
			if (!m->negate)
				*named = true;
			break;
		case FW_FKEY_NFPROTO:
			if ((m->nfproto == NFPROTO_IPV4) == m->negate)
				return COVER_NONE;
			break;
		case FW_FKEY_OTHER:
			c = COVER_SOME;
			break;
		}
	}
	return c;
}

static enum walk walk(struct walk_ctx *w, const struct fw_fchain *c, unsigned depth, bool certain);

/* A jump or goto covering only some packets: may what it reaches accept them? */
static bool may_accept(struct walk_ctx *w, const struct fw_frule *r, unsigned depth)
{
	const struct fw_fchain *sub = find_chain(w->t, r->target);
	enum walk res;

	if (!sub || depth >= WALK_DEPTH)
		return true;
	res = walk(w, sub, depth + 1, false);
	return res == WALK_ACCEPT || res == WALK_UNJUDGED;
}

/*
 * Walk chain @c for a wg0-to-wg0 packet. @certain: every such packet gets
 * here (not through a jump that covers only some), so a drop found is
 * recorded as the reason.
 */
static enum walk walk(struct walk_ctx *w, const struct fw_fchain *c, unsigned depth, bool certain)
{
	for (size_t i = 0; i < c->n_rules; i++) {
		const struct fw_frule *r = &c->rules[i];
		const struct fw_fchain *sub;
		enum walk res;
		bool named;

		switch (rule_covers(r, w->ifname, &named)) {
		case COVER_NONE:
			continue;
		case COVER_SOME:
			if (r->verdict == FW_FV_ACCEPT && named)
				return WALK_UNJUDGED;
			if ((r->verdict == FW_FV_JUMP || r->verdict == FW_FV_GOTO) && may_accept(w, r, depth))
				return WALK_UNJUDGED;
			continue; /* a partial drop, return or map: not judged, look further */
		case COVER_ALL:
			break;
		}
		switch (r->verdict) {
		case FW_FV_CONTINUE:
			continue;
		case FW_FV_ACCEPT:
			return WALK_ACCEPT;
		case FW_FV_DROP:
		case FW_FV_REJECT:
			if (certain) {
				w->drop_chain = c;
				w->drop_rule = i;
			}
			return WALK_DROP;
		case FW_FV_RETURN:
			return WALK_END;
		case FW_FV_OTHER:
			return WALK_UNJUDGED;
		case FW_FV_JUMP:
		case FW_FV_GOTO:
			sub = find_chain(w->t, r->target);
			if (!sub || depth >= WALK_DEPTH)
				return WALK_UNJUDGED;
			res = walk(w, sub, depth + 1, certain);
			/* After a goto, the end of the target is the end of this chain. */
			if (res != WALK_END || r->verdict == FW_FV_GOTO)
				return res;
			continue;
		}
	}
	return WALK_END;
}

/* The first rule every wg0 packet meets in @c jumps to @chain. */
static bool first_jumps_to(const struct fw_fchain *c, const char *chain, const char *ifname)
{
	for (size_t i = 0; i < c->n_rules; i++) {
		bool named;

		switch (rule_covers(&c->rules[i], ifname, &named)) {
		case COVER_NONE:
			continue;
		case COVER_SOME:
			return false;
		case COVER_ALL:
			if (c->rules[i].verdict == FW_FV_CONTINUE)
				continue;
			return c->rules[i].verdict == FW_FV_JUMP && c->rules[i].target &&
			       strcmp(c->rules[i].target, chain) == 0;
		}
	}
	return false;
}

/*
 * The command that lets the traffic through. An accept inserted first in
 * the base chain comes before any drop in it or in what it jumps to. For
 * iptables-nft's own chain, iptables' command (nft's edits there confuse
 * iptables); for Docker, its DOCKER-USER chain (Docker rewrites FORWARD
 * when it restarts, never DOCKER-USER); for UFW's policy, a ufw route
 * (UFW rewrites its chains on reload).
 */
static void fix_for(const struct fw_ftable *t, const struct fw_fchain *c, bool policy, const char *ifname,
		    char *out, size_t size)
{
	if (t->family == NFPROTO_IPV4 && strcmp(t->name, "filter") == 0 && strcmp(c->name, "FORWARD") == 0) {
		if (find_chain(t, "DOCKER-USER") && first_jumps_to(c, "DOCKER-USER", ifname))
			snprintf(out, size, "iptables -I DOCKER-USER -i %s -o %s -j ACCEPT", ifname, ifname);
		else if (policy && find_chain(t, "ufw-user-forward"))
			snprintf(out, size, "ufw route allow in on %s out on %s", ifname, ifname);
		else
			snprintf(out, size, "iptables -I FORWARD -i %s -o %s -j ACCEPT", ifname, ifname);
		return;
	}
	snprintf(out, size, "nft insert rule %s %s %s iifname \"%s\" oifname \"%s\" accept",
		 family_name(t->family), t->name, c->name, ifname, ifname);
}

size_t fw_foreign_judge(const struct fw_foreign *f, const char *ifname, struct fw_block out[FW_BLOCKS_MAX])
{
	size_t n = 0;

	for (size_t i = 0; i < f->n_tables; i++) {
		const struct fw_ftable *t = &f->tables[i];

		for (size_t j = 0; j < t->n_chains && n < FW_BLOCKS_MAX; j++) {
			const struct fw_fchain *c = &t->chains[j];
			struct walk_ctx w = { .t = t, .ifname = ifname };
			struct fw_block *b = &out[n];
			enum walk res;

			if (!c->forward)
				continue;
			res = walk(&w, c, 0, true);
			if (res == WALK_ACCEPT || res == WALK_UNJUDGED || (res == WALK_END && !c->policy_drop))
				continue;
			memset(b, 0, sizeof(*b));
			snprintf(b->chain, sizeof(b->chain), "%s %s %s", family_name(t->family), t->name, c->name);
			if (res == WALK_END) {
				snprintf(b->why, sizeof(b->why), "policy drop, and no rule accepts every packet "
					 "from %s to %s before it", ifname, ifname);
			} else {
				const struct fw_frule *r = &w.drop_chain->rules[w.drop_rule];

				snprintf(b->why, sizeof(b->why), "rule %zu%s%s (handle %llu) %s every packet from %s to %s",
					 w.drop_rule + 1, w.drop_chain == c ? "" : " of chain ",
					 w.drop_chain == c ? "" : w.drop_chain->name, (unsigned long long)r->handle,
					 r->verdict == FW_FV_REJECT ? "rejects" : "drops", ifname, ifname);
			}
			fix_for(t, c, res == WALK_END, ifname, b->fix, sizeof(b->fix));
			n++;
		}
	}
	return n;
}
