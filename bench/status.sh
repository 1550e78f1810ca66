#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Status service benchmark in the lab (needs root): wrk at 32 connections
# against /status on spoke-a, side by side in the same run with the spec's
# Go status server (Appendix A: it runs `wg show wg0 latest-handshakes` per
# request), built here with Debian's golang-go (installed if missing; the
# binary lives in a temporary directory and is never committed). Both run
# in spoke-a's namespaces and are measured from there over loopback.
# Reports req/s, p50/p99 latency, the ratio, and the supervisor's RSS
# before and after. Target (design.md §6 / issue): >= 40x its req/s, p99 <= 2 ms.
# Environment: DURATION (s, default 10), ROUNDS (default 3, alternating),
# THREADS (wrk's, default 1: on 2 cores, 2 wrk threads starve the server
# under test of CPU and the tail latency measures the scheduler).
set -eu
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-1} # wrk threads: 1 leaves the second core to the servers
LAB=tests/lab/lab.sh
export LAB_DIR=/tmp/sup-lab-bench SUP=${SUP:-$PWD/build/supervisor}
work=$(mktemp -d /tmp/sup-statusbench.XXXXXX)
trap '"$LAB" down >/dev/null 2>&1; rm -rf "$work"' EXIT
[ "$(id -u)" -eq 0 ] || { echo "bench/status.sh: needs root" >&2; exit 1; }
for p in wrk golang-go; do
	dpkg -s "$p" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "$p" >/dev/null; }
done

# Appendix A as printed, but for one fix and one change: the spec's "\n"
# in strings.Split lost its backslash in print (it would not compile), and
# the port is 8001 so it can run beside ours.
cat > "$work/status.go" <<'EOF'
package main
import (
  "encoding/json"
  "net"
  "net/http"
  "os"
  "os/exec"
  "strconv"
  "strings"
  "syscall"
  "time"
)

type Status struct {
  Node       string  `json:"node"`
  OverlayIP  string  `json:"overlay_ip"`
  WG         WGInfo  `json:"wg"`
  DiskFreeGB float64 `json:"disk_free_gb"`
  Time       string  `json:"time"`
}

type WGInfo struct {
  Interface   string `json:"interface"`
  PeerCount   int    `json:"peer_count"`
  MaxHandshakeAgeSec int64 `json:"max_last_handshake_sec"`
}

func overlayIP(iface string) string {
  i, err := net.InterfaceByName(iface)
  if err != nil { return "" }
  addrs, _ := i.Addrs()
  for _, a := range addrs {
    if ipnet, ok := a.(*net.IPNet); ok && ipnet.IP.To4() != nil {
      return ipnet.IP.String()
    }
  }
  return ""
}

func wgInfo() WGInfo {
  out, err := exec.Command("wg", "show", "wg0", "latest-handshakes").Output()
  info := WGInfo{Interface: "wg0"}
  if err != nil { return info }
  lines := strings.Split(strings.TrimSpace(string(out)), "\n")
  now := time.Now().Unix()
  maxAge := int64(0)
  for _, ln := range lines {
    f := strings.Fields(ln)
    if len(f) < 2 { continue }
    t, _ := strconv.ParseInt(f[len(f)-1], 10, 64)
    if t == 0 { continue }
    age := now - t
    if age > maxAge { maxAge = age }
    info.PeerCount++
  }
  info.MaxHandshakeAgeSec = maxAge
  return info
}

func diskFreeGiB(path string) float64 {
  var st syscall.Statfs_t
  if err := syscall.Statfs(path, &st); err != nil { return 0 }
  free := float64(st.Bavail) * float64(st.Bsize) / (1024*1024*1024)
  return float64(int(free*10)) / 10.0
}

func main() {
  http.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
    host, _ := os.Hostname()
    s := Status{
      Node: host,
      OverlayIP: overlayIP("wg0"),
      WG: wgInfo(),
      DiskFreeGB: diskFreeGiB("/"),
      Time: time.Now().UTC().Format(time.RFC3339),
    }
    w.Header().Set("Content-Type", "application/json")
    json.NewEncoder(w).Encode(s)
  })
  srv := &http.Server{ Addr: ":8001", ReadHeaderTimeout: 3 * time.Second }
  if err := srv.ListenAndServe(); err != nil { panic(err) }
}
EOF
(cd "$work" && HOME=$work GOCACHE=$work/cache GOPATH=$work/gopath CGO_ENABLED=0 go build -trimpath -o dstack-status status.go)

"$LAB" up >/dev/null
# Measure a settled cluster: both replicas streaming, bootstrap done.
for _ in $(seq 120); do
	[ "$("$LAB" exec spoke-a curl -s -m 1 http://127.0.0.1:8000/status | grep -o '"link":"streaming"' | wc -l)" = 2 ] && break
	sleep 0.5
done
sleep 2
"$LAB" exec spoke-a sh -c "$work/dstack-status >/dev/null 2>&1 &"
sleep 0.5
"$LAB" exec spoke-a curl -s -m 2 http://127.0.0.1:8001/status | grep -q '"interface":"wg0"' ||
	{ echo "the Go server did not answer" >&2; exit 1; }
sup=$("$LAB" pid spoke-a)
# VmRSS, and of it the private (anonymous) part: most of VmRSS is shared
# library pages (Debian's libmicrohttpd brings gnutls, libpq brings libcrypto).
rss() { awk '/VmRSS/ { v = $2 } /RssAnon/ { a = $2 } END { printf "%s KiB (%s KiB anonymous)", v, a }' "/proc/$sup/status"; }
rss0=$(rss)

# run PORT: one wrk round; prints "req/s p50_ms p99_ms"
run() {
	"$LAB" exec spoke-a wrk -t"$THREADS" -c32 -d"${DURATION}s" --latency "http://127.0.0.1:$1/status" > "$work/wrk" 2>&1
	python3 - "$work/wrk" <<-'EOF'
	import re, sys
	t = open(sys.argv[1]).read()
	def ms(tag):
	    m = re.search(r"^\s*%s%%\s+([\d.]+)(us|ms|s)" % tag, t, re.M)
	    v, u = float(m.group(1)), m.group(2)
	    return v / 1000 if u == "us" else v * 1000 if u == "s" else v
	rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
	print("%.0f %.3f %.3f" % (rps, ms("50"), ms("99")))
	EOF
}
echo "== /status under wrk -t$THREADS -c32, ${DURATION}s per run, $ROUNDS alternating rounds, on spoke-a over loopback"
printf '%-6s %-28s %12s %9s %9s\n' round server req/s p50_ms p99_ms
ours=() go=()
for r in $(seq "$ROUNDS"); do
	o=$(run 8000); g=$(run 8001)
	ours+=("$o"); go+=("$g")
	printf '%-6s %-28s %12s %9s %9s\n' "$r" "supervisor (libmicrohttpd)" $o
	printf '%-6s %-28s %12s %9s %9s\n' "$r" "spec Go server (wg show)" $g
done
med() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
o_rps=$(med $(printf '%s\n' "${ours[@]}" | cut -d' ' -f1))
g_rps=$(med $(printf '%s\n' "${go[@]}" | cut -d' ' -f1))
o_p99=$(med $(printf '%s\n' "${ours[@]}" | cut -d' ' -f3))
g_p99=$(med $(printf '%s\n' "${go[@]}" | cut -d' ' -f3))
rss1=$(rss)
echo
printf 'median req/s: supervisor %s, Go %s: ratio %.1fx (target >= 40x)\n' "$o_rps" "$g_rps" "$(echo "$o_rps / $g_rps" | bc -l)"
printf 'median p99: supervisor %s ms (target <= 2 ms), Go %s ms\n' "$o_p99" "$g_p99"
printf 'supervisor RSS: %s before, %s after\n' "$rss0" "$rss1"
