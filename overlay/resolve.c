// SPDX-License-Identifier: MIT
/*
 * The hub's endpoint, when the cluster file gives a host name: resolved in
 * the background with getaddrinfo_a(3) (glibc runs the lookup in a thread
 * of its own, with NSS as getaddrinfo would: /etc/hosts, DNS), and the
 * answer collected by polling from the reconcile pass, so the loop never
 * waits on a resolver. Asked again on a period the caller chooses (often
 * while the hub peer is not fresh, rarely otherwise), so a hub whose
 * address moves with its name is followed without a reload, as wg-quick
 * users do with reresolve-dns.sh. A failed lookup keeps the last address.
 */
#include "overlay/overlay_internal.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/mem.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One lookup's memory: glibc writes into it until the lookup is over. */
struct lookup {
	struct gaicb cb;
	struct addrinfo hints;
	char name[256];
	char service[8];
};

static bool literal(const char *host, uint16_t port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		return true;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		return true;
	}
	return false;
}

/* Stop a lookup in flight; one glibc cannot cancel is waited for (briefly). */
static void drop_lookup(struct hub_endpoint *e)
{
	struct lookup *l = e->lookup;

	if (!l)
		return;
	e->lookup = NULL;
	if (gai_cancel(&l->cb) == EAI_NOTCANCELED) {
		const struct gaicb *list[] = { &l->cb };
		struct timespec ts = { .tv_sec = 2 };

		if (gai_suspend(list, 1, &ts) != 0 && gai_error(&l->cb) == EAI_INPROGRESS) {
			/* Still writing into it: leave it to glibc rather than free it under its feet. */
			log_warnx("overlay", "a hub endpoint lookup did not stop; leaving it host=%s", l->name);
			return;
		}
	}
	freeaddrinfo(l->cb.ar_result);
	free(l);
}

void hub_endpoint_set(struct hub_endpoint *e, const struct conf_hostport *hp)
{
	if (e->configured && !strcmp(e->host, hp->host) && e->port == hp->port)
		return;
	drop_lookup(e);
	memset(e, 0, sizeof(*e));
	e->configured = true;
	snprintf(e->host, sizeof(e->host), "%s", hp->host);
	e->port = hp->port;
	e->literal = literal(hp->host, hp->port, &e->addr);
	e->have = e->literal;
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	char x[80], y[80];

	return !strcmp(wg_endpoint_str(a, x, sizeof(x)), wg_endpoint_str(b, y, sizeof(y)));
}

/* A finished lookup: take its first address. Return: true when the address changed. */
static bool collect(struct hub_endpoint *e, int rc)
{
	struct lookup *l = e->lookup;
	const struct addrinfo *ai = l->cb.ar_result;
	struct timespec ts;
	bool changed = false;
	char was[80], now[80];

	e->lookup = NULL;
	e->answered_ms = now_ms();
	if (rc != 0 || !ai || ai->ai_addrlen > sizeof(e->addr)) {
		/* Keep what we had: a resolver hiccup must not take the tunnel down. */
		snprintf(e->error, sizeof(e->error), "%s", rc ? gai_strerror(rc) : "no address");
		if (!e->failures++)
			log_warnx("overlay", "cannot resolve the hub endpoint host=%s error=\"%s\"%s", e->host,
				  e->error, e->have ? " keeping=last-address" : "");
	} else {
		struct sockaddr_storage ss = { 0 };

		memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
		changed = !e->have || !same_addr(&ss, &e->addr);
		if (changed)
			log_info("overlay", "hub endpoint resolved host=%s address=%s was=%s", e->host,
				 wg_endpoint_str(&ss, now, sizeof(now)),
				 e->have ? wg_endpoint_str(&e->addr, was, sizeof(was)) : "none");
		e->addr = ss;
		e->have = true;
		e->error[0] = '\0';
		e->failures = 0;
		clock_gettime(CLOCK_REALTIME, &ts);
		e->resolved_at = ts.tv_sec;
	}
	freeaddrinfo(l->cb.ar_result);
	free(l);
	return changed;
}

static void ask(struct hub_endpoint *e)
{
	struct lookup *l = xcalloc(1, sizeof(*l));
	struct gaicb *list[] = { &l->cb };
	struct sigevent sev = { .sigev_notify = SIGEV_NONE }; /* polled, see above */
	int rc;

	snprintf(l->name, sizeof(l->name), "%s", e->host);
	snprintf(l->service, sizeof(l->service), "%u", e->port);
	l->hints.ai_family = AF_UNSPEC;
	l->hints.ai_socktype = SOCK_DGRAM;
	l->cb.ar_name = l->name;
	l->cb.ar_service = l->service;
	l->cb.ar_request = &l->hints;
	e->asked_ms = now_ms();
	rc = getaddrinfo_a(GAI_NOWAIT, list, 1, &sev);
	if (rc != 0) {
		snprintf(e->error, sizeof(e->error), "%s", gai_strerror(rc));
		free(l);
		return;
	}
	e->lookup = l;
}

bool hub_endpoint_poll(struct hub_endpoint *e, uint64_t every_ms)
{
	int rc;

	if (e->literal || !e->configured)
		return false;
	if (e->lookup) {
		rc = gai_error(&e->lookup->cb);
		return rc == EAI_INPROGRESS ? false : collect(e, rc);
	}
	if (!e->asked_ms || now_ms() - e->asked_ms >= every_ms)
		ask(e);
	return false;
}

void hub_endpoint_clear(struct hub_endpoint *e)
{
	drop_lookup(e);
	memset(e, 0, sizeof(*e));
}
