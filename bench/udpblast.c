// SPDX-License-Identifier: MIT
/*
 * udpblast: a UDP packet-rate probe for bench/firewall.sh.
 *
 *   udpblast send IP PORT SECONDS   send 64-byte datagrams as fast as one
 *                                   core can (sendmmsg, 64 at a time)
 *   udpblast recv PORT SECONDS      count what arrives; print packets/s
 *
 * The receiver's rate is what went through the receiving host's input
 * chain, so the same sender against different rulesets compares their
 * per-packet cost.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int blast(const char *ip, int port, double secs)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	static char payload[64];
	struct mmsghdr msgs[BATCH];
	struct iovec iov = { payload, sizeof(payload) };
	unsigned long long sent = 0;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	double end;

	if (fd < 0 || inet_pton(AF_INET, ip, &to.sin_addr) != 1 ||
	    connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0) {
		perror("udpblast send");
		return 1;
	}
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < BATCH; i++) {
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	end = now() + secs;
	while (now() < end) {
		int n = sendmmsg(fd, msgs, BATCH, 0);

		if (n > 0)
			sent += (unsigned long long)n;
	}
	printf("sent=%llu pps=%.0f\n", sent, (double)sent / secs);
	return 0;
}

static int count(int port, double secs)
{
	struct sockaddr_in me = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	static char bufs[BATCH][128];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	struct timeval tv = { 0, 100000 };
	unsigned long long got = 0;
	int fd = socket(AF_INET, SOCK_DGRAM, 0), big = 8 << 20;
	double start = 0, last = 0, end;

	if (fd < 0 || bind(fd, (struct sockaddr *)&me, sizeof(me)) < 0) {
		perror("udpblast recv");
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < BATCH; i++) {
		iov[i] = (struct iovec){ bufs[i], sizeof(bufs[i]) };
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	end = now() + secs + 5; /* the sender starts a moment later */
	while (now() < end) {
		int n = recvmmsg(fd, msgs, BATCH, 0, NULL);

		if (n <= 0) {
			if (got && now() - last > 0.3)
				break; /* the sender stopped */
			continue;
		}
		if (!got)
			start = now();
		got += (unsigned long long)n;
		last = now();
	}
	printf("received=%llu pps=%.0f\n", got, got && last > start ? (double)got / (last - start) : 0.0);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "send") == 0)
		return blast(argv[2], atoi(argv[3]), atof(argv[4]));
	if (argc == 4 && strcmp(argv[1], "recv") == 0)
		return count(atoi(argv[2]), atof(argv[3]));
	fprintf(stderr, "usage: udpblast send IP PORT SECONDS | recv PORT SECONDS\n");
	return 64;
}
