// SPDX-License-Identifier: MIT
/*
 * rtnetlink over libmnl: create the WireGuard link, bring it up with its
 * MTU, and check/add its address and the overlay route. Requests are
 * acknowledged; the kernel answers while handling sendmsg(), so reads
 * return at once (a 1 s receive deadline guards the loop anyway).
 */
#include "overlay/overlay_internal.h"
#include "lib/mem.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

struct rtnl {
	struct mnl_socket *nl;
	unsigned seq;
	unsigned portid;
};

int rtnl_open(struct rtnl **out)
{
	struct rtnl *r = xcalloc(1, sizeof(*r));
	struct timeval tv = { .tv_sec = 1 };

	r->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!r->nl || mnl_socket_bind(r->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int e = -errno;

		if (r->nl)
			mnl_socket_close(r->nl);
		free(r);
		return e;
	}
	setsockopt(mnl_socket_get_fd(r->nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	r->portid = mnl_socket_get_portid(r->nl);
	r->seq = (unsigned)time(NULL);
	*out = r;
	return 0;
}

struct rtnl *rtnl_close(struct rtnl *r)
{
	if (r) {
		mnl_socket_close(r->nl);
		free(r);
	}
	return NULL;
}

/* Send @nlh and run @cb over every reply until ACK/DONE. */
static int talk(struct rtnl *r, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	char buf[RTNL_BUF];
	int ret;

	nlh->nlmsg_seq = ++r->seq;
	if (mnl_socket_sendto(r->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		ssize_t n = mnl_socket_recvfrom(r->nl, buf, sizeof(buf));

		if (n < 0)
			return -errno;
		ret = mnl_cb_run(buf, (size_t)n, r->seq, r->portid, cb, data);
	} while (ret > MNL_CB_STOP);
	return ret < 0 ? -errno : 0;
}

int rtnl_link_create(struct rtnl *r, const char *iface, const char *kind)
{
	char buf[RTNL_BUF];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nlattr *info;

	nlh->nlmsg_type = RTM_NEWLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK;
	mnl_nlmsg_put_extra_header(nlh, sizeof(struct ifinfomsg));
	mnl_attr_put_strz(nlh, IFLA_IFNAME, iface);
	info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, kind);
	mnl_attr_nest_end(nlh, info);
	return talk(r, nlh, NULL, NULL);
}

struct link_info {
	bool up;
	unsigned mtu;
};

static int link_attr(const struct nlattr *a, void *data)
{
	struct link_info *li = data;

	if (mnl_attr_get_type(a) == IFLA_MTU && mnl_attr_validate(a, MNL_TYPE_U32) == 0)
		li->mtu = mnl_attr_get_u32(a);
	return MNL_CB_OK;
}

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	struct link_info *li = data;

	li->up = ifi->ifi_flags & IFF_UP;
	return mnl_attr_parse(nlh, sizeof(*ifi), link_attr, data);
}

int rtnl_link_get(struct rtnl *r, unsigned ifindex, bool *up, unsigned *mtu)
{
	char buf[RTNL_BUF];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifi;
	struct link_info li = { 0 };
	int ret;

	nlh->nlmsg_type = RTM_GETLINK;
	/* The ACK ends the exchange; without it talk() waits for its deadline. */
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = (int)ifindex;
	ret = talk(r, nlh, link_cb, &li);
	*up = li.up;
	*mtu = li.mtu;
	return ret;
}

int rtnl_link_set(struct rtnl *r, unsigned ifindex, bool up, unsigned mtu)
{
	char buf[RTNL_BUF];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifi;

	nlh->nlmsg_type = RTM_NEWLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = (int)ifindex;
	ifi->ifi_change = IFF_UP;
	ifi->ifi_flags = up ? IFF_UP : 0;
	if (mtu)
		mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	return talk(r, nlh, NULL, NULL);
}

struct addr_query {
	unsigned ifindex;
	struct in_addr addr;
	uint8_t prefix;
	bool found;
};

static int addr_attr(const struct nlattr *a, void *data)
{
	struct in_addr *local = data;

	if (mnl_attr_get_type(a) == IFA_LOCAL && mnl_attr_get_payload_len(a) == sizeof(*local))
		memcpy(local, mnl_attr_get_payload(a), sizeof(*local));
	return MNL_CB_OK;
}

static int addr_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	struct addr_query *q = data;
	struct in_addr local = { 0 };

	if (ifa->ifa_family != AF_INET || ifa->ifa_index != q->ifindex)
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*ifa), addr_attr, &local);
	if (local.s_addr == q->addr.s_addr && ifa->ifa_prefixlen == q->prefix)
		q->found = true;
	return MNL_CB_OK;
}

int rtnl_addr_has(struct rtnl *r, unsigned ifindex, struct in_addr addr, uint8_t prefix)
{
	char buf[RTNL_BUF];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifaddrmsg *ifa;
	struct addr_query q = { ifindex, addr, prefix, false };
	int ret;

	nlh->nlmsg_type = RTM_GETADDR;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	ret = talk(r, nlh, addr_cb, &q);
	return ret < 0 ? ret : q.found;
}

int rtnl_addr_add(struct rtnl *r, unsigned ifindex, struct in_addr addr, uint8_t prefix)
{
	char buf[RTNL_BUF];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifaddrmsg *ifa;

	nlh->nlmsg_type = RTM_NEWADDR;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE | NLM_F_ACK;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = prefix;
	ifa->ifa_index = ifindex;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	mnl_attr_put(nlh, IFA_LOCAL, sizeof(addr), &addr);
	mnl_attr_put(nlh, IFA_ADDRESS, sizeof(addr), &addr);
	return talk(r, nlh, NULL, NULL);
}

struct route_query {
	unsigned ifindex;
	struct in_addr dst;
	uint8_t prefix;
	bool found;
};

struct route_attrs {
	struct in_addr dst;
	unsigned oif;
};

static int route_attr(const struct nlattr *a, void *data)
{
	struct route_attrs *ra = data;

	if (mnl_attr_get_type(a) == RTA_DST && mnl_attr_get_payload_len(a) == sizeof(ra->dst))
		memcpy(&ra->dst, mnl_attr_get_payload(a), sizeof(ra->dst));
	else if (mnl_attr_get_type(a) == RTA_OIF && mnl_attr_validate(a, MNL_TYPE_U32) == 0)
		ra->oif = mnl_attr_get_u32(a);
	return MNL_CB_OK;
}

static int route_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	struct route_query *q = data;
	struct route_attrs ra = { { 0 }, 0 };

	if (rtm->rtm_family != AF_INET || rtm->rtm_table != RT_TABLE_MAIN ||
	    rtm->rtm_dst_len != q->prefix)
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*rtm), route_attr, &ra);
	if (ra.dst.s_addr == q->dst.s_addr && ra.oif == q->ifindex)
		q->found = true;
	return MNL_CB_OK;
}

int rtnl_route_has(struct rtnl *r, unsigned ifindex, struct in_addr dst, uint8_t prefix)
{
	char buf[RTNL_BUF];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct rtmsg *rtm;
	struct route_query q = { ifindex, dst, prefix, false };
	int ret;

	nlh->nlmsg_type = RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	ret = talk(r, nlh, route_cb, &q);
	return ret < 0 ? ret : q.found;
}

int rtnl_route_add(struct rtnl *r, unsigned ifindex, struct in_addr dst, uint8_t prefix)
{
	char buf[RTNL_BUF];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct rtmsg *rtm;

	nlh->nlmsg_type = RTM_NEWROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE | NLM_F_ACK;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = prefix;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_protocol = RTPROT_BOOT;
	rtm->rtm_scope = RT_SCOPE_LINK;
	rtm->rtm_type = RTN_UNICAST;
	mnl_attr_put(nlh, RTA_DST, sizeof(dst), &dst);
	mnl_attr_put_u32(nlh, RTA_OIF, ifindex);
	return talk(r, nlh, NULL, NULL);
}

/* ---- the path's MTU ---------------------------------------------------------- */

struct path_answer {
	unsigned oif;
	unsigned mtu; /* the route's own MTU (a route metric, or a learned path MTU); 0: none */
};

static int metrics_attr(const struct nlattr *a, void *data)
{
	struct path_answer *p = data;

	if (mnl_attr_get_type(a) == RTAX_MTU && mnl_attr_validate(a, MNL_TYPE_U32) == 0)
		p->mtu = mnl_attr_get_u32(a);
	return MNL_CB_OK;
}

static int path_attr(const struct nlattr *a, void *data)
{
	struct path_answer *p = data;

	if (mnl_attr_get_type(a) == RTA_OIF && mnl_attr_validate(a, MNL_TYPE_U32) == 0)
		p->oif = mnl_attr_get_u32(a);
	else if (mnl_attr_get_type(a) == RTA_METRICS && mnl_attr_validate(a, MNL_TYPE_NESTED) == 0)
		mnl_attr_parse_nested(a, metrics_attr, data);
	return MNL_CB_OK;
}

static int path_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);

	if (nlh->nlmsg_type != RTM_NEWROUTE || nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*rtm)))
		return MNL_CB_OK;
	return mnl_attr_parse(nlh, sizeof(*rtm), path_attr, data);
}

int rtnl_path_mtu(struct rtnl *r, const struct sockaddr_storage *dst, unsigned *mtu)
{
	char buf[RTNL_BUF];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct rtmsg *rtm;
	struct path_answer p = { 0 };
	bool up;
	int ret;

	/* `ip route get DST`: a lookup in the kernel's tables; nothing is sent. */
	nlh->nlmsg_type = RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = (unsigned char)dst->ss_family;
	if (dst->ss_family == AF_INET) {
		rtm->rtm_dst_len = 32;
		mnl_attr_put(nlh, RTA_DST, sizeof(struct in_addr), &((const struct sockaddr_in *)dst)->sin_addr);
	} else if (dst->ss_family == AF_INET6) {
		rtm->rtm_dst_len = 128;
		mnl_attr_put(nlh, RTA_DST, sizeof(struct in6_addr),
			     &((const struct sockaddr_in6 *)dst)->sin6_addr);
	} else {
		return -EAFNOSUPPORT;
	}
	if ((ret = talk(r, nlh, path_cb, &p)) < 0)
		return ret;
	if (p.mtu) {
		*mtu = p.mtu;
		return 0;
	}
	if (!p.oif)
		return -ENETUNREACH;
	return rtnl_link_get(r, p.oif, &up, mtu);
}
