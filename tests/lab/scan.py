#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Which ports of HOST answer? For the lab's firewall tests (no nmap here).

  scan.py tcp HOST [FIRST LAST]   every TCP port: print those that answered
                                  (accepted, or refused with a RST)
  scan.py udp HOST PORT...        the given UDP ports: print those that
                                  answered (data back, or ICMP unreachable)

A dropped probe gets nothing back; the lab is local, so whatever answers
does so within milliseconds, and a short timeout tells the two apart.
"""
import errno
import resource
import select
import socket
import sys
import time

BATCH = 8000
WAIT = 0.5


def scan_tcp(host, first, last):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, BATCH + 100)), hard))
    answered = []
    for start in range(first, last + 1, BATCH):
        pending = {}
        for port in range(start, min(start + BATCH, last + 1)):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            err = s.connect_ex((host, port))
            if err not in (0, errno.EINPROGRESS):
                answered.append(port)
                s.close()
                continue
            pending[s.fileno()] = (s, port)
        deadline = time.monotonic() + WAIT
        poller = select.poll()
        for fd in pending:
            poller.register(fd, select.POLLOUT | select.POLLERR | select.POLLHUP)
        while pending and time.monotonic() < deadline:
            for fd, _ in poller.poll(max(1, int((deadline - time.monotonic()) * 1000))):
                if fd in pending:
                    s, port = pending.pop(fd)
                    poller.unregister(fd)
                    answered.append(port)  # connected or refused: either way it answered
                    s.close()
        for s, _ in pending.values():
            s.close()
    return sorted(answered)


def scan_udp(host, ports):
    answered = []
    socks = []
    for port in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect((host, port))
        s.setblocking(False)
        s.send(b"probe")
        socks.append((s, port))
    time.sleep(WAIT)
    for s, port in socks:
        try:
            s.recv(64)
            answered.append(port)
        except BlockingIOError:
            pass
        except ConnectionRefusedError:  # ICMP port unreachable came back
            answered.append(port)
        s.close()
    return sorted(answered)


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "tcp":
        first, last = (int(sys.argv[3]), int(sys.argv[4])) if len(sys.argv) == 5 else (1, 65535)
        print(" ".join(map(str, scan_tcp(sys.argv[2], first, last))))
    elif len(sys.argv) >= 4 and sys.argv[1] == "udp":
        print(" ".join(map(str, scan_udp(sys.argv[2], [int(p) for p in sys.argv[3:]]))))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
