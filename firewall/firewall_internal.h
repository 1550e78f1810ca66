/* SPDX-License-Identifier: MIT */
/* Private to firewall/: the netlink encoding and the kernel conversation. */
#ifndef SUP_FIREWALL_INTERNAL_H
#define SUP_FIREWALL_INTERNAL_H

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#include "firewall/firewall.h"
#include "lib/common.h"

/* Set elements per NEWSETELEM message: 1024 three-field map elements take
 * about 45 KiB, under the 64 KiB a netlink attribute can hold. */
#define FW_ELEMS_PER_MSG 1024

/* A request: a header and a table or set name. */
#define FW_REQ_BUF 1024

/* Each set's id within one batch, so rules can refer to sets made in it. */
static inline uint32_t fw_set_id(size_t set)
{
	return (uint32_t)set + 1;
}

struct nftnl_table *fw_nl_table(const struct fw_model *m);
struct nftnl_chain *fw_nl_chain(const struct fw_model *m, const struct fw_chain *c);
/* fw_nl_set() - the set's header, with elements [@from, @from + @n). */
struct nftnl_set *fw_nl_set(const struct fw_model *m, size_t set, size_t from, size_t n);
struct nftnl_rule *fw_nl_rule(const struct fw_model *m, const struct fw_chain *c,
			      const struct fw_rule *r);

/*
 * fw_canon_rule() - a rule as comparable text: libnftnl's own rendering of
 * its expressions, without the handle and position the kernel adds and
 * with counters read out (into @packets/@bytes when not NULL) and zeroed.
 * Modifies @r. Return: the text; caller frees.
 */
char *fw_canon_rule(struct nftnl_rule *r, uint64_t *packets, uint64_t *bytes);

/*
 * fw_elem_key() - an element as the kernel stores its key: the fields in
 * network order, each padded to 4 bytes. Return: the key length (8 or 12).
 */
size_t fw_elem_key(const struct fw_set *s, const struct fw_elem *e, uint8_t key[12]);

/* One netlink socket to nf_tables; errors are -errno. */
struct fw_sock {
	struct mnl_socket *nl;
	uint32_t portid;
	uint32_t seq;
};

int fw_sock_open(struct fw_sock *s) _must_check_;
void fw_sock_close(struct fw_sock *s);
/* fw_sock_genid() - NFT_MSG_GETGEN. */
int fw_sock_genid(struct fw_sock *s, uint32_t *out) _must_check_;
/*
 * fw_sock_query() - send one request and feed each reply to @cb until the
 * dump ends or the kernel acknowledges. Return: 0, or -errno (the kernel's
 * error, e.g. -ENOENT, or a socket failure; -ETIMEDOUT after 2 s).
 */
int fw_sock_query(struct fw_sock *s, struct nlmsghdr *req, mnl_cb_t cb, void *data) _must_check_;

/**
 * fw_read_stable() - read nftables state that no commit changed meanwhile.
 * @read: reads into @data over the socket; 0 or -errno.
 * @reset: empties @data (before each attempt, and after a failed one).
 * @data: for both.
 * @genid: receives the ruleset generation of the last read.
 *
 * The generation is asked before and after each read; a read it moved
 * under is done again, up to 3 times (the last one stands then).
 * Return: 0; FW_E_UNSUPPORTED without nf_tables; or -errno.
 */
int fw_read_stable(int (*read)(struct fw_sock *s, void *data), void (*reset)(void *data), void *data,
		   uint32_t *genid) _must_check_;

#endif
