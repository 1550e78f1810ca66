// SPDX-License-Identifier: MIT
/*
 * The etcd client's transport: one libcurl multi handle on the event loop.
 * libcurl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and
 * when to call it back (CURLMOPT_TIMERFUNCTION); we watch them with loop
 * sources and a loop timer, hand events back with curl_multi_socket_action()
 * and collect finished transfers with curl_multi_info_read(). Connections
 * are reused between requests; nothing here ever waits.
 *
 * Callbacks may free the client: while finished transfers are being
 * handed out (e->dispatching), etcd_free() only cancels and marks it, and
 * the dispatcher frees it once the last callback has returned.
 */
#include "ha/etcd.h"
#include "ha/etcd_json.h"
#include "lib/mem.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

struct etcd_req {
	struct etcd *e;
	CURL *easy;
	enum etcd_call call;
	etcd_done_fn *fn;
	void *data;
	char *body;             /* the request; libcurl reads it in place */
	char *resp;             /* the answer so far */
	size_t resp_len;
	bool too_big;
	uint64_t sent_ms;
	char curl_error[CURL_ERROR_SIZE];
	struct etcd_req *prev, *next;
};

/* A socket libcurl asked us to watch. */
struct etcd_sock {
	struct etcd *e;
	curl_socket_t fd;
	struct loop_source *src;
	struct etcd_sock *prev, *next;
};

struct etcd {
	struct loop *loop;
	CURLM *multi;
	char *base_url;
	uint32_t timeout_ms;
	struct curl_slist *headers;
	struct loop_source *timer;
	struct etcd_req *reqs;   /* in flight */
	struct etcd_sock *socks;
	size_t n_reqs;
	int dispatching;         /* depth of dispatch(): callbacks running */
	bool doomed;             /* etcd_free() called during dispatch() */
};

static void req_free(struct etcd_req *q)
{
	struct etcd *e = q->e;

	if (q->easy) {
		curl_multi_remove_handle(e->multi, q->easy);
		curl_easy_cleanup(q->easy);
	}
	if (q->prev)
		q->prev->next = q->next;
	else
		e->reqs = q->next;
	if (q->next)
		q->next->prev = q->prev;
	e->n_reqs--;
	free(q->body);
	free(q->resp);
	free(q);
}

/* libcurl's outcome as -errno. (Not a switch: -Wswitch-enum over its 100 codes.) */
static int curl_err(CURLcode cc)
{
	if (cc == CURLE_OK)
		return 0;
	if (cc == CURLE_OPERATION_TIMEDOUT)
		return -ETIMEDOUT;
	if (cc == CURLE_COULDNT_CONNECT)
		return -ECONNREFUSED;
	if (cc == CURLE_WRITE_ERROR) /* only ours: the answer is over ETCD_RESPONSE_MAX */
		return -EPROTO;
	if (cc == CURLE_GOT_NOTHING || cc == CURLE_SEND_ERROR || cc == CURLE_RECV_ERROR ||
	    cc == CURLE_PARTIAL_FILE)
		return -ECONNRESET;
	return -EIO;
}

/* One transfer is over: make its result, forget the request, call back. */
static void finish(struct etcd_req *q, CURLcode cc)
{
	struct etcd_result r = { 0 };
	etcd_done_fn *fn = q->fn;
	void *data = q->data;
	long status = 0;

	r.err = curl_err(cc);
	if (q->too_big) {
		snprintf(r.error, sizeof(r.error), "etcd's answer is over %d bytes", ETCD_RESPONSE_MAX);
	} else if (r.err) {
		const char *what = curl_easy_strerror(cc);

		/* libcurl keeps a transfer's first message: that of a resent request's first try. */
		if (!q->curl_error[0] || strstr(q->curl_error, what))
			snprintf(r.error, sizeof(r.error), "%s", q->curl_error[0] ? q->curl_error : what);
		else
			snprintf(r.error, sizeof(r.error), "%s (after: %.180s)", what, q->curl_error);
	} else {
		curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &status);
		etcd_parse(q->call, status, q->resp ? q->resp : "", q->resp_len, &r);
	}
	r.sent_ms = q->sent_ms;
	req_free(q);
	fn(data, &r);
	etcd_result_clear(&r);
}

static void really_free(struct etcd *e)
{
	etcd_cancel_all(e);
	/* Still calls on_socket() to remove the sockets it closes: e is whole. */
	curl_multi_cleanup(e->multi);
	while (e->socks) {
		struct etcd_sock *s = e->socks;

		e->socks = s->next;
		loop_remove(s->src);
		free(s);
	}
	loop_remove(e->timer);
	curl_slist_free_all(e->headers);
	free(e->base_url);
	free(e);
}

/* Hand out every finished transfer. Last thing its caller does: e may be gone after. */
static void dispatch(struct etcd *e)
{
	CURLMsg *m;
	int left;

	e->dispatching++;
	while (!e->doomed && (m = curl_multi_info_read(e->multi, &left))) {
		char *q = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &q);
		finish((struct etcd_req *)q, m->data.result);
	}
	if (--e->dispatching == 0 && e->doomed)
		really_free(e);
}

static void on_fd(struct loop_source *src, int fd, uint32_t events, void *data)
{
	struct etcd *e = data;
	int mask = 0, running;

	(void)src;
	if (events & EPOLLIN)
		mask |= CURL_CSELECT_IN;
	if (events & EPOLLOUT)
		mask |= CURL_CSELECT_OUT;
	if (events & (EPOLLERR | EPOLLHUP))
		mask |= CURL_CSELECT_ERR;
	curl_multi_socket_action(e->multi, fd, mask, &running);
	dispatch(e);
}

static void on_timer(struct loop_source *src, void *data)
{
	struct etcd *e = data;
	int running;

	(void)src;
	curl_multi_socket_action(e->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	dispatch(e);
}

static void sock_forget(struct etcd_sock *s)
{
	struct etcd *e = s->e;

	if (s->prev)
		s->prev->next = s->next;
	else
		e->socks = s->next;
	if (s->next)
		s->next->prev = s->prev;
	loop_remove(s->src);
	free(s);
}

/* CURLMOPT_SOCKETFUNCTION: libcurl may not be called back from here. */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct etcd *e = userp;
	struct etcd_sock *s = socketp;
	uint32_t events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s) {
			curl_multi_assign(e->multi, fd, NULL);
			sock_forget(s);
		}
		return 0;
	}
	if (s)
		return loop_fd_events(s->src, events) < 0 ? -1 : 0;
	s = xcalloc(1, sizeof(*s));
	*s = (struct etcd_sock){ .e = e, .fd = fd, .next = e->socks };
	if (loop_add_fd(e->loop, fd, events, on_fd, e, &s->src) < 0) {
		free(s);
		return -1; /* libcurl fails the transfers on it */
	}
	if (e->socks)
		e->socks->prev = s;
	e->socks = s;
	curl_multi_assign(e->multi, fd, s);
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: -1 disarms; 0 is "as soon as you can", next loop round. */
static int on_timeout(CURLM *multi, long timeout_ms, void *userp)
{
	struct etcd *e = userp;

	(void)multi;
	if (timeout_ms < 0)
		loop_timer_disarm(e->timer);
	else
		loop_timer_arm(e->timer, (uint64_t)timeout_ms, 0);
	return 0;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct etcd_req *q = userdata;
	size_t n = size * nmemb; /* size is 1: no overflow */

	if (q->resp_len + n > ETCD_RESPONSE_MAX) {
		q->too_big = true;
		return 0; /* fails the transfer: CURLE_WRITE_ERROR */
	}
	q->resp = xrealloc(q->resp, q->resp_len + n + 1);
	memcpy(q->resp + q->resp_len, ptr, n);
	q->resp_len += n;
	return n;
}

static bool curl_ready(void)
{
	static int state; /* 0 unknown, 1 ok, -1 failed */

	if (!state)
		state = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 1 : -1;
	return state > 0;
}

int etcd_new(struct loop *loop, const char *base_url, uint32_t timeout_ms, struct etcd **out)
{
	struct etcd *e;
	int r;

	if (!base_url || !*base_url || !timeout_ms)
		return -EINVAL;
	if (!curl_ready())
		return -EIO;
	e = xcalloc(1, sizeof(*e));
	e->loop = loop;
	e->timeout_ms = timeout_ms;
	e->base_url = xstrdup(base_url);
	if (e->base_url[strlen(e->base_url) - 1] == '/')
		e->base_url[strlen(e->base_url) - 1] = '\0';
	/* No "Expect: 100-continue" round trip before a body. */
	e->headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (e->headers)
		e->headers = curl_slist_append(e->headers, "Expect:");
	e->multi = curl_multi_init();
	if (!e->headers || !e->multi) {
		r = -EIO;
		goto fail;
	}
	if ((r = loop_add_timer(loop, on_timer, e, &e->timer)) < 0)
		goto fail;
	curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e);
	curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, on_timeout);
	curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e);
	*out = e;
	return 0;
fail:
	if (e->multi)
		curl_multi_cleanup(e->multi);
	curl_slist_free_all(e->headers);
	free(e->base_url);
	free(e);
	return r;
}

void etcd_cancel_all(struct etcd *e)
{
	while (e->reqs)
		req_free(e->reqs);
}

size_t etcd_in_flight(const struct etcd *e)
{
	return e->n_reqs;
}

struct etcd *etcd_free(struct etcd *e)
{
	if (!e)
		return NULL;
	if (e->dispatching) {
		etcd_cancel_all(e);
		e->doomed = true;
	} else {
		really_free(e);
	}
	return NULL;
}

/* Send @body (taken) to @call's path. */
static int submit(struct etcd *e, enum etcd_call call, char *body, etcd_done_fn *fn, void *data)
{
	_cleanup_free_ char *url = NULL;
	struct etcd_req *q;
	CURL *h;

	if (!body || !fn) {
		free(body);
		return -EINVAL;
	}
	if (!(h = curl_easy_init())) {
		free(body);
		return -EIO;
	}
	q = xcalloc(1, sizeof(*q));
	*q = (struct etcd_req){ .e = e, .easy = h, .call = call, .fn = fn, .data = data, .body = body };
	url = xasprintf("%s%s", e->base_url, etcd_call_path(call));
	curl_easy_setopt(h, CURLOPT_URL, url); /* copied by libcurl */
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_PROXY, ""); /* never through $http_proxy */
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, q->body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(q->body));
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, e->headers);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)e->timeout_ms);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, q);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, q->curl_error);
	curl_easy_setopt(h, CURLOPT_PRIVATE, q);
	/*
	 * libcurl sends it from the timer it sets to 0 now, in the next loop
	 * round: taking the time before is on the safe side of the lease rule.
	 */
	q->sent_ms = now_ms();
	if (curl_multi_add_handle(e->multi, h) != CURLM_OK) {
		curl_easy_cleanup(h);
		free(q->body);
		free(q);
		return -EIO;
	}
	q->next = e->reqs;
	if (e->reqs)
		e->reqs->prev = q;
	e->reqs = q;
	e->n_reqs++;
	return 0;
}

int etcd_lease_grant(struct etcd *e, int64_t ttl_s, etcd_done_fn *fn, void *data)
{
	if (ttl_s <= 0)
		return -EINVAL;
	return submit(e, ETCD_CALL_GRANT, etcd_json_grant(ttl_s), fn, data);
}

int etcd_lease_keepalive(struct etcd *e, int64_t lease_id, etcd_done_fn *fn, void *data)
{
	return submit(e, ETCD_CALL_KEEPALIVE, etcd_json_lease(lease_id), fn, data);
}

int etcd_lease_revoke(struct etcd *e, int64_t lease_id, etcd_done_fn *fn, void *data)
{
	return submit(e, ETCD_CALL_REVOKE, etcd_json_lease(lease_id), fn, data);
}

int etcd_range(struct etcd *e, const char *key, bool prefix, etcd_done_fn *fn, void *data)
{
	return submit(e, ETCD_CALL_RANGE, etcd_json_range(key, prefix), fn, data);
}

int etcd_put(struct etcd *e, const char *key, const char *value, int64_t lease_id,
	     etcd_done_fn *fn, void *data)
{
	return submit(e, ETCD_CALL_PUT, etcd_json_put(key, value, lease_id), fn, data);
}

int etcd_delete(struct etcd *e, const char *key, bool prefix, etcd_done_fn *fn, void *data)
{
	return submit(e, ETCD_CALL_DELETE, etcd_json_delete(key, prefix), fn, data);
}

int etcd_txn(struct etcd *e, const struct etcd_cmp *cmp, size_t n_cmp,
	     const struct etcd_op *success, size_t n_success,
	     const struct etcd_op *failure, size_t n_failure, etcd_done_fn *fn, void *data)
{
	return submit(e, ETCD_CALL_TXN,
		      etcd_json_txn(cmp, n_cmp, success, n_success, failure, n_failure), fn, data);
}
