// SPDX-License-Identifier: MIT
/*
 * Talking to nf_tables: a socket per operation, and the atomic apply.
 *
 * The apply is one batch: NEWTABLE (so the delete cannot fail on a first
 * run), DELTABLE, NEWTABLE, the sets and their elements, the chains, the
 * rules. Every command carries NLM_F_ACK, so success is positive: the
 * batch counts as committed only when every command was acknowledged with
 * 0. nfnetlink processes the whole batch inside sendmsg(), validating all
 * of it before committing any, so on an error nothing changed and the
 * previous table (if any) is still in force.
 */
#include "firewall/firewall_internal.h"
#include "lib/common.h"
#include "lib/log.h"
#include "lib/mem.h"

#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include <libnftnl/batch.h>
#include <libnftnl/common.h>
#include <libnftnl/gen.h>

#define BATCH_PAGE (256 * 1024)
#define BATCH_OVERRUN (64 * 1024 + 4096) /* one message of up to 64 KiB past a page */
#define RECV_BUF (64 * 1024)
#define QUERY_TIMEOUT_MS 2000

int fw_sock_open(struct fw_sock *s)
{
	int one = 1;

	memset(s, 0, sizeof(*s));
	s->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!s->nl)
		return -errno;
	/* Error acks carry only the failed message's header, plus the reason. */
	(void)mnl_socket_setsockopt(s->nl, NETLINK_CAP_ACK, &one, sizeof(one));
	(void)mnl_socket_setsockopt(s->nl, NETLINK_EXT_ACK, &one, sizeof(one));
	if (mnl_socket_bind(s->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int r = -errno;

		fw_sock_close(s);
		return r;
	}
	s->portid = mnl_socket_get_portid(s->nl);
	s->seq = (uint32_t)time(NULL);
	return 0;
}

void fw_sock_close(struct fw_sock *s)
{
	if (s->nl)
		mnl_socket_close(s->nl);
	s->nl = NULL;
}

/* Wait for the socket to be readable: the kernel answers at once, so a
 * silence of two seconds means a lost reply, not a slow one. */
static int wait_readable(struct fw_sock *s, int timeout_ms)
{
	struct pollfd p = { .fd = mnl_socket_get_fd(s->nl), .events = POLLIN };
	int r = poll(&p, 1, timeout_ms);

	if (r < 0)
		return -errno;
	return r == 0 ? -ETIMEDOUT : 0;
}

int fw_sock_query(struct fw_sock *s, struct nlmsghdr *req, mnl_cb_t cb, void *data)
{
	_cleanup_free_ char *buf = xmalloc(RECV_BUF);
	int r;

	if (mnl_socket_sendto(s->nl, req, req->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		ssize_t n;

		if ((r = wait_readable(s, QUERY_TIMEOUT_MS)) < 0)
			return r;
		n = mnl_socket_recvfrom(s->nl, buf, RECV_BUF);
		if (n < 0)
			return -errno;
		r = mnl_cb_run(buf, (size_t)n, req->nlmsg_seq, s->portid, cb, data);
		if (r < 0)
			return errno ? -errno : -EPROTO;
		if (r == MNL_CB_STOP)
			return 0;
	}
}

static int gen_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_gen *g = nftnl_gen_alloc();

	if (!g)
		fatalx("firewall", "out of memory");
	if (nftnl_gen_nlmsg_parse(nlh, g) == 0)
		*(uint32_t *)data = nftnl_gen_get_u32(g, NFTNL_GEN_ID);
	nftnl_gen_free(g);
	return MNL_CB_OK;
}

int fw_sock_genid(struct fw_sock *s, uint32_t *out)
{
	char buf[FW_REQ_BUF];
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETGEN, AF_UNSPEC, NLM_F_ACK,
						     s->seq++);

	*out = 0;
	return fw_sock_query(s, nlh, gen_cb, out);
}

#define READ_ATTEMPTS 3

int fw_read_stable(int (*read)(struct fw_sock *s, void *data), void (*reset)(void *data), void *data,
		   uint32_t *genid)
{
	struct fw_sock s;
	int r;

	if ((r = fw_sock_open(&s)) < 0)
		return r == -EPROTONOSUPPORT ? FW_E_UNSUPPORTED : r;
	for (int attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
		uint32_t before, after;

		reset(data);
		if ((r = fw_sock_genid(&s, &before)) < 0 || (r = read(&s, data)) < 0 ||
		    (r = fw_sock_genid(&s, &after)) < 0) {
			reset(data);
			break;
		}
		*genid = after;
		if (before == after)
			break;
	}
	fw_sock_close(&s);
	return r;
}

int fw_genid(uint32_t *out)
{
	struct fw_sock s;
	int r = fw_sock_open(&s);

	if (r < 0)
		return r;
	r = fw_sock_genid(&s, out);
	fw_sock_close(&s);
	return r;
}

/* ---- the batch ------------------------------------------------------------------ */

struct batch {
	struct fw_sock *sock;
	struct nftnl_batch *b;
	uint32_t first_seq;        /* of the first command */
	char (*what)[48];          /* per command, for error messages */
	size_t n, cap;
};

static struct nlmsghdr *batch_msg(struct batch *bt, uint16_t type, uint16_t flags, const char *fmt,
				  ...) _printf_(4, 5);
static struct nlmsghdr *batch_msg(struct batch *bt, uint16_t type, uint16_t flags, const char *fmt,
				  ...)
{
	va_list ap;

	if (bt->n == bt->cap) {
		bt->cap = bt->cap ? bt->cap * 2 : 64;
		bt->what = xreallocarray(bt->what, bt->cap, sizeof(*bt->what));
	}
	va_start(ap, fmt);
	vsnprintf(bt->what[bt->n], sizeof(bt->what[0]), fmt, ap);
	va_end(ap);
	bt->n++;
	return nftnl_nlmsg_build_hdr(nftnl_batch_buffer(bt->b), type, NFPROTO_INET, flags | NLM_F_ACK,
				     bt->sock->seq++);
}

static void batch_next(struct batch *bt)
{
	if (nftnl_batch_update(bt->b) < 0)
		fatalx("firewall", "out of memory");
}

static void build_batch(struct batch *bt, const struct fw_model *m)
{
	struct nftnl_table *t = fw_nl_table(m);
	struct nlmsghdr *nlh;

	nftnl_batch_begin(nftnl_batch_buffer(bt->b), bt->sock->seq++);
	batch_next(bt);
	bt->first_seq = bt->sock->seq;
	/* add, delete, add: firewalld's and knftables' emulation of "destroy" (6.3+). */
	nlh = batch_msg(bt, NFT_MSG_NEWTABLE, NLM_F_CREATE, "table %s (ensure)", m->table);
	nftnl_table_nlmsg_build_payload(nlh, t);
	batch_next(bt);
	nlh = batch_msg(bt, NFT_MSG_DELTABLE, 0, "table %s (delete)", m->table);
	nftnl_table_nlmsg_build_payload(nlh, t);
	batch_next(bt);
	nlh = batch_msg(bt, NFT_MSG_NEWTABLE, NLM_F_CREATE | NLM_F_EXCL, "table %s", m->table);
	nftnl_table_nlmsg_build_payload(nlh, t);
	batch_next(bt);
	nftnl_table_free(t);

	for (size_t i = 0; i < m->n_sets; i++) {
		struct nftnl_set *s = fw_nl_set(m, i, 0, 0);

		nlh = batch_msg(bt, NFT_MSG_NEWSET, NLM_F_CREATE | NLM_F_EXCL, "set %s", m->sets[i].name);
		nftnl_set_nlmsg_build_payload(nlh, s);
		batch_next(bt);
		nftnl_set_free(s);
		for (size_t k = 0; k < m->sets[i].n_elems; k += FW_ELEMS_PER_MSG) {
			s = fw_nl_set(m, i, k, FW_ELEMS_PER_MSG);
			nlh = batch_msg(bt, NFT_MSG_NEWSETELEM, NLM_F_CREATE | NLM_F_EXCL,
					"elements %zu.. of set %s", k, m->sets[i].name);
			nftnl_set_elems_nlmsg_build_payload(nlh, s);
			batch_next(bt);
			nftnl_set_free(s);
		}
	}
	for (size_t i = 0; i < m->n_chains; i++) {
		struct nftnl_chain *c = fw_nl_chain(m, &m->chains[i]);

		nlh = batch_msg(bt, NFT_MSG_NEWCHAIN, NLM_F_CREATE | NLM_F_EXCL, "chain %s",
				m->chains[i].name);
		nftnl_chain_nlmsg_build_payload(nlh, c);
		batch_next(bt);
		nftnl_chain_free(c);
	}
	for (size_t i = 0; i < m->n_chains; i++) {
		for (size_t k = 0; k < m->chains[i].n_rules; k++) {
			struct nftnl_rule *r = fw_nl_rule(m, &m->chains[i], &m->chains[i].rules[k]);

			nlh = batch_msg(bt, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND,
					"rule %s#%zu (%s)", m->chains[i].name, k,
					m->chains[i].rules[k].why ? m->chains[i].rules[k].why : "");
			nftnl_rule_nlmsg_build_payload(nlh, r);
			batch_next(bt);
			nftnl_rule_free(r);
		}
	}
	nftnl_batch_end(nftnl_batch_buffer(bt->b), bt->sock->seq++);
	batch_next(bt);
}

static int send_batch(struct batch *bt)
{
	int n = nftnl_batch_iovec_len(bt->b);
	_cleanup_free_ struct iovec *iov = xcalloc((size_t)n, sizeof(*iov));
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	struct msghdr msg = { .msg_name = &kernel, .msg_namelen = sizeof(kernel), .msg_iov = iov,
			      .msg_iovlen = (size_t)n };
	int fd = mnl_socket_get_fd(bt->sock->nl);
	int size = 0;

	nftnl_batch_iovec(bt->b, iov, (uint32_t)n);
	for (int i = 0; i < n; i++)
		size += (int)iov[i].iov_len;
	/*
	 * The kernel takes the batch as one datagram, and queues one ack per
	 * command before sendmsg() returns: both buffers must hold it all
	 * (the FORCE variants need CAP_NET_ADMIN, which applying needs anyway).
	 */
	int rcv = (int)(bt->n * 1024 + RECV_BUF);

	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	if (sendmsg(fd, &msg, 0) < 0)
		return -errno;
	return 0;
}

static const char *ext_ack_msg(const struct nlmsghdr *nlh)
{
	const struct nlattr *a;

	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return NULL;
	mnl_attr_for_each(a, nlh, sizeof(struct nlmsgerr))
		if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG && mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
			return mnl_attr_get_str(a);
	return NULL;
}

/*
 * Collect one ack per command. Return: 0 when all are 0; FW_E_REJECTED
 * (first error in @res->error); FW_E_UNSUPPORTED; or -errno.
 */
static int collect_acks(struct batch *bt, struct fw_apply_result *res)
{
	_cleanup_free_ char *buf = xmalloc(RECV_BUF);
	size_t acked = 0;
	int result = 0;

	while (acked < bt->n) {
		ssize_t n;
		int r = wait_readable(bt->sock, QUERY_TIMEOUT_MS);

		if (r < 0) {
			snprintf(res->error, sizeof(res->error),
				 "the kernel acknowledged %zu of %zu messages", acked, bt->n);
			return r;
		}
		n = mnl_socket_recvfrom(bt->sock->nl, buf, RECV_BUF);
		if (n < 0)
			return -errno;
		for (const struct nlmsghdr *nlh = (void *)buf; mnl_nlmsg_ok(nlh, (int)n);
		     nlh = mnl_nlmsg_next(nlh, (int *)&n)) {
			const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);
			uint32_t idx = nlh->nlmsg_seq - bt->first_seq;
			const char *why;

			if (nlh->nlmsg_type != NLMSG_ERROR || nlh->nlmsg_pid != bt->sock->portid)
				continue;
			if (nlh->nlmsg_seq < bt->first_seq || idx >= bt->n) {
				/*
				 * The batch frame itself was refused: no nf_tables
				 * here, or (EPERM) no CAP_NET_ADMIN, as in a
				 * container not granted it.
				 */
				snprintf(res->error, sizeof(res->error),
					 "the kernel refused the batch: %s (%s)",
					 strerror(err->error < 0 && err->error > -4096 ? -err->error : EPROTO),
					 err->error == -EPERM ?
					 "no CAP_NET_ADMIN? a container needs cap_add NET_ADMIN" : "no nf_tables?");
				return err->error == -EOPNOTSUPP ? FW_E_UNSUPPORTED : FW_E_REJECTED;
			}
			acked++;
			if (err->error == 0 || result)
				continue;
			why = ext_ack_msg(nlh);
			snprintf(res->error, sizeof(res->error), "%s: %s%s%s", bt->what[idx],
				 strerror(err->error > -4096 ? -err->error : EPROTO), why ? ": " : "",
				 why ? why : "");
			result = err->error == -EOPNOTSUPP || err->error == -EAFNOSUPPORT ?
				 FW_E_UNSUPPORTED : FW_E_REJECTED;
		}
	}
	return result;
}

int fw_apply(const struct fw_model *m, struct fw_apply_result *res)
{
	struct fw_sock sock;
	struct batch bt = { .sock = &sock };
	struct timespec a, b;
	int r;

	memset(res, 0, sizeof(*res));
	clock_gettime(CLOCK_MONOTONIC, &a);
	if ((r = fw_sock_open(&sock)) < 0) {
		snprintf(res->error, sizeof(res->error), "cannot open an nf_tables socket: %s%s",
			 strerror(-r), r == -EPROTONOSUPPORT ? " (no nf_tables in this kernel)" : "");
		return r == -EPROTONOSUPPORT ? FW_E_UNSUPPORTED : r;
	}
	bt.b = nftnl_batch_alloc(BATCH_PAGE, BATCH_OVERRUN);
	if (!bt.b)
		fatalx("firewall", "out of memory");
	build_batch(&bt, m);
	res->messages = (uint32_t)bt.n;
	res->portid = sock.portid;
	r = send_batch(&bt);
	if (r < 0)
		snprintf(res->error, sizeof(res->error), "cannot send the batch: %s", strerror(-r));
	else
		r = collect_acks(&bt, res);
	if (r == 0 && (r = fw_sock_genid(&sock, &res->genid)) < 0)
		snprintf(res->error, sizeof(res->error), "cannot read the generation: %s", strerror(-r));
	nftnl_batch_free(bt.b);
	free(bt.what);
	fw_sock_close(&sock);
	clock_gettime(CLOCK_MONOTONIC, &b);
	res->duration_us = (uint64_t)(b.tv_sec - a.tv_sec) * 1000000u +
			   (uint64_t)((b.tv_nsec - a.tv_nsec) / 1000);
	return r;
}
