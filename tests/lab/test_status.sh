#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The status service end to end: /status through every phase (waiting for
# the tunnel, running, degraded) with the spec's keys, /metrics, the load
# balancer checks, no secret in any answer, and a service that stays up
# and fast under malformed requests, oversized headers, 1000 idle
# connections, slowloris and a frozen Postgres. At the end, the scrapes of
# a primary (after a backup), a replica and the hub pass `promtool check
# metrics` and hold every metric deploy/monitoring/dashboard.json queries.
set -u
SUP=$1 TESTS=$2
. "$TESTS/tap.sh"
. "$TESTS/lab/helpers.sh"
export SUP LAB_DIR=/tmp/sup-lab-status
LAB="$TESTS/lab/lab.sh"
HOG=
trap '[ -n "$HOG" ] && kill $HOG 2>/dev/null; [ -n "${KEEP_LAB:-}" ] || "$LAB" down >/dev/null 2>&1' EXIT

need_root
declare -A PUBLIC=([spoke-a]=192.0.2.11 [spoke-b]=192.0.2.12 [spoke-c]=192.0.2.13)

code() { ip netns exec inet curl -s -m 3 -o /dev/null -w '%{http_code}' "${@:2}" "http://${PUBLIC[$1]}:8000"; }
status_code() { ip netns exec inet curl -s -m 3 -o /dev/null -w '%{http_code}' "http://${PUBLIC[$1]}:8000$2"; }
ALL=""
keep() { ALL+=$'\n'"$1"; } # every answer, for the secret check

# The spec's keys with their types; "never" is null, never 0.
SEED='all([isinstance(d["node"], str), isinstance(d["overlay_ip"], str),
  d["wg"]["interface"] == "wg0", isinstance(d["wg"]["peer_count"], int),
  "max_last_handshake_sec" in d["wg"], isinstance(d["disk_free_gb"], (int, float)),
  __import__("re").fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", d["time"]) is not None,
  isinstance(d["version"], str), d["overall"] in ("ok", "degraded", "critical"),
  all(k in d for k in ("tunnel", "postgres", "replication", "backup", "firewall", "reasons"))])'

# ---- phase 1: waiting for the tunnel (the hub held down) ---------------------------
LAB_SKIP=hub "$LAB" up >/dev/null || { tap_fail "lab up"; tap_done; exit 1; }
sleep 1
body=$(lab_get spoke-a /status); keep "$body"
got=$(json_eval "$body" "$SEED, d['wg']['peer_count'], d['wg']['max_last_handshake_sec'], d['postgres']['state'], d['overall']")
[ "$got" = "True 1 None waiting_for_tunnel critical" ] || [ "$got" = "True 1 None waiting_for_tunnel degraded" ] &&
	tap_ok "before any handshake: /status answers with the spec's keys, peer_count 1, max_last_handshake_sec null ($got)" ||
	tap_fail "before any handshake: /status answers with the spec's keys" "$got" "$body"
why=$(status_json spoke-a "[r for r in d['reasons'] if 'handshake' in r]")
grep -q 'waiting for a fresh hub handshake' <<<"$why" &&
	tap_ok "/status says why the node is not ready ($why)" || tap_fail "/status says why the node is not ready" "$why"
# No handshake yet: no handshake figures in /metrics (the exporters' 0 would read as 1970).
metrics=$(lab_get spoke-a /metrics)
hs=$(grep -E '^(wireguard_latest_handshake_seconds|supervisor_wireguard_handshake_age_seconds)' <<<"$metrics")
[ -z "$hs" ] && grep -q '^supervisor_wireguard_peer_fresh{interface="wg0",peer="hub"} 0' <<<"$metrics" &&
	tap_ok "before any handshake: /metrics has no handshake time or age for the hub, its fresh gauge 0" ||
	tap_fail "before any handshake: /metrics has no handshake time or age for the hub" "$hs" \
		"$(grep -m2 peer_fresh <<<"$metrics")"
[ "$(status_code spoke-a /healthz)" = 503 ] && [ "$(status_code spoke-a /primary)" = 503 ] &&
	tap_ok "/healthz and /primary answer 503 while waiting" ||
	tap_fail "/healthz and /primary answer 503 while waiting"

# ---- phase 2: running ----------------------------------------------------------------
"$LAB" start hub
streaming() { [ "$(status_json spoke-a "sum(1 for m in d['replication']['members'] if m.get('link') == 'streaming')")" = 2 ]; }
if el=$(wait_until 60000 streaming); then
	tap_ok "/status on the primary shows both replicas streaming ($el ms after the hub started)"
else
	tap_fail "/status on the primary shows both replicas streaming" "$(lab_get spoke-a /status)"
fi
sleep 1.2 # one more snapshot, so every node has seen its replica streaming
for n in spoke-a spoke-b spoke-c; do
	body=$(lab_get "$n" /status); keep "$body"
	got=$(json_eval "$body" "$SEED, d['tunnel']['state'], isinstance(d['wg']['max_last_handshake_sec'], int), d['postgres']['state'], d['firewall']['state'], d['overall']")
	[ "$got" = "True fresh True running applied ok" ] && tap_ok "$n running: /status complete and ok ($got)" ||
		tap_fail "$n running: /status complete and ok" "$got" "$body"
done
body=$(lab_get hub /status); keep "$body"
got=$(json_eval "$body" "$SEED, d['role'], d['wg']['peer_count'], d['wg']['fresh_peer_count'], d['postgres']['state']")
[ "$got" = "True hub 3 3 none" ] && tap_ok "hub: /status lists its 3 spokes, all fresh, no database ($got)" ||
	tap_fail "hub: /status lists its 3 spokes" "$got"
# The lag in bytes is unknown (so not "within") until the receiver's first report.
lag_known() { [ "$(status_code spoke-b '/replica?max_lag_bytes=16777216')" = 200 ]; }
wait_until 10000 lag_known >/dev/null
checks="$(status_code spoke-a /healthz) $(status_code spoke-a /primary) $(status_code spoke-a /replica) $(status_code spoke-b /primary) $(status_code spoke-b /replica) $(status_code spoke-b '/replica?max_lag_bytes=16777216') $(status_code spoke-b '/replica?max_lag_bytes=abc')"
[ "$checks" = "200 200 503 503 200 200 400" ] &&
	tap_ok "load balancer checks: primary 200 only on spoke-a, replica 200 only on spoke-b, a bad max_lag_bytes 400" ||
	tap_fail "load balancer checks" "healthz-a primary-a replica-a primary-b replica-b replica-b?lag replica-b?bad = $checks"
metrics=$(lab_get spoke-a /metrics); keep "$metrics"
bad=$(python3 - "$metrics" <<-'EOF'
	import re, sys
	line = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? -?[0-9.eE+-]+$')
	bad = [l for l in sys.argv[1].splitlines() if l and not l.startswith("# ") and not line.match(l)]
	print(len(bad), bad[:3])
	EOF
)
hub_key=$(python3 -c "import sys; print(open(sys.argv[1]).read().strip())" "$LAB_DIR/hub/pub")
if [ "${bad%% *}" = 0 ] && grep -q "^wireguard_latest_handshake_seconds{interface=\"wg0\",public_key=\"$hub_key\",peer=\"hub\"} [1-9]" <<<"$metrics" &&
   grep -q '^supervisor_postgres_up 1' <<<"$metrics" &&
   grep -q '^supervisor_replication_lag_bytes{member="spoke-b",link="streaming"} [0-9]' <<<"$metrics" &&
   grep -q '^supervisor_firewall_applied 1' <<<"$metrics" && grep -q '^supervisor_child_restarts_total{child="postgres"} 0' <<<"$metrics"; then
	tap_ok "/metrics parses as Prometheus text: handshake (exporter names), postgres, lag, firewall, restarts ($(grep -vc '^#' <<<"$metrics") samples)"
else
	tap_fail "/metrics parses as Prometheus text with the expected samples" "bad: $bad" "$(head -30 <<<"$metrics")"
fi

# ---- methods and paths -------------------------------------------------------------------
heads=$(ip netns exec inet curl -s -m 3 -I "http://192.0.2.11:8000/status")
methods="$(code spoke-a -X POST -d x) $(code spoke-a -X PUT -d x) $(code spoke-a -X DELETE) $(status_code spoke-a /nope) $(status_code spoke-a /status/)"
allow=$(ip netns exec inet curl -s -m 3 -i -X POST "http://192.0.2.11:8000/status" | grep -i '^Allow:' | tr -d '\r')
if grep -q '^HTTP/1.1 200' <<<"$heads" && grep -qi '^content-length: [1-9]' <<<"$heads" &&
   [ "$methods" = "405 405 405 404 404" ] && [ "$allow" = "Allow: GET, HEAD" ]; then
	tap_ok "HEAD answers headers only; POST/PUT/DELETE 405 with Allow: GET, HEAD; other paths 404"
else
	tap_fail "HEAD, 405 and 404" "methods=$methods allow=$allow" "$heads"
fi

# ---- phase 3: degraded --------------------------------------------------------------------
"$LAB" stop spoke-c
absent() { [ "$(status_json spoke-a "[m['link'] for m in d['replication']['members'] if m['name'] == 'spoke-c'][0]")" = absent ]; }
if el=$(wait_until 30000 absent); then
	body=$(lab_get spoke-a /status); keep "$body"
	got=$(json_eval "$body" "d['overall'], [r for r in d['reasons'] if 'spoke-c' in r]")
	[ "$(status_code spoke-a /healthz)" = 503 ] && grep -q "^degraded .*spoke-c is absent" <<<"$got" &&
		tap_ok "a replica gone: the primary's /status is degraded and says which ($got), /healthz 503" ||
		tap_fail "a replica gone: degraded and says which" "$got"
else
	tap_fail "a replica gone: the primary shows it absent" "$(lab_get spoke-a /status)"
fi
"$LAB" start spoke-c

# ---- no secret in any answer ---------------------------------------------------------------
for n in spoke-a spoke-b spoke-c; do
	for p in /status /metrics /healthz /primary /replica /nope; do keep "$(lab_get "$n" "$p")"; done
done
for p in /status /metrics; do keep "$(lab_get hub "$p")"; done
leaks=""
for n in hub spoke-a spoke-b spoke-c; do
	k=$(tr -d '\n' < "$LAB_DIR/$n/etc/wg.key")
	grep -qF "$k" <<<"$ALL" && leaks+=" $n-private-key"
done
pass=$(tr -d '\n' < "$LAB_DIR/spoke-a/etc/replication.pass")
grep -qF "$pass" <<<"$ALL" && leaks+=" replication-password"
grep -qi 'password=' <<<"$ALL" && leaks+=" conninfo-password"
[ -z "$leaks" ] && [ ${#ALL} -gt 10000 ] &&
	tap_ok "no private key, password or conninfo in ${#ALL} bytes of answers from every node and path" ||
	tap_fail "no secret in any answer" "found:$leaks (${#ALL} bytes checked)"

# ---- robustness ------------------------------------------------------------------------------
fast() { # fast: a normal client (from the hub's public address) gets /status quickly
	local t
	t=$("$LAB" exec hub curl -s -m 2 -o /dev/null -w '%{http_code} %{time_total}' "http://192.0.2.11:8000/status")
	[ "${t%% *}" = 200 ] && echo "${t#* }"
}
bad=$(ip netns exec inet python3 - <<-'EOF'
	import socket
	cases = [b"GARBAGE\r\n\r\n", b"GET /status HTTP/9.9\r\n\r\n", b"GET /status HTTP/1.1\r\nno colon here\r\n\r\n",
	         b"GET /st\x00atus HTTP/1.1\r\nHost: x\r\n\r\n", b"\xff\xfe\xfd\r\n\r\n",
	         b"GET /status HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n",
	         b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n",
	         b"GET /status HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
	         b"GET /status HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"]
	out = []
	for c in cases:
	    s = socket.create_connection(("192.0.2.11", 8000), timeout=3)
	    try:
	        s.sendall(c)
	        r = s.recv(64)
	        out.append(r.split(b"\r\n")[0].decode(errors="replace") or "closed")
	    except Exception as e:
	        out.append(type(e).__name__)
	    s.close()
	print("; ".join(out))
	EOF
)
if t=$(fast) && ! grep -q 'HTTP/1.1 200' <<<"$bad"; then
	tap_ok "9 malformed or oversized requests get 4xx or a close, none a 200; then a normal client is served in ${t}s ($bad)"
else
	tap_fail "malformed and oversized requests are rejected and the service stays up" "$bad"
fi
ip netns exec inet python3 - <<-'EOF' &
	import socket, time, resource
	resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
	idle = []
	for i in range(1000):
	    try:
	        idle.append(socket.create_connection(("192.0.2.11", 8000), timeout=1))
	    except Exception:
	        pass
	slow = []
	for i in range(50):
	    try:
	        s = socket.create_connection(("192.0.2.11", 8000), timeout=1)
	        s.send(b"GET /status HTTP/1.1\r\n")
	        slow.append(s)
	    except Exception:
	        pass
	for _ in range(30):  # slowloris: a header byte a second
	    for s in slow:
	        try:
	            s.send(b"X")
	        except Exception:
	            pass
	    time.sleep(1)
	EOF
HOG=$!
sleep 3
t1=$(fast); r1=$?
estab=$("$LAB" exec spoke-a ss -Htn state established '( sport = :8000 )' | wc -l)
sleep 10
t2=$(fast); r2=$?
estab2=$("$LAB" exec spoke-a ss -Htn state established '( sport = :8000 )' | wc -l)
if [ $r1 = 0 ] && [ $r2 = 0 ] && [ "$estab" -le 80 ] && [ "$estab2" -lt "$estab" ]; then
	tap_ok "1000 idle connections and 50 slowloris clients: a normal client is served (${t1}s, ${t2}s); at most $estab held, idle ones cut after 10 s ($estab2 left)"
else
	tap_fail "1000 idle connections and slowloris: the service stays up" "r1=$r1 t1=$t1 r2=$r2 t2=$t2 held=$estab later=$estab2"
fi
kill $HOG 2>/dev/null; HOG=

# ---- a frozen Postgres never slows /status -----------------------------------------------------
pm=$("$LAB" exec spoke-a pgrep -o -x postgres)
"$LAB" exec spoke-a kill -STOP "$pm"
unresponsive() { [ "$(status_json spoke-a "d['postgres']['state']")" = unresponsive ]; }
wait_until 10000 unresponsive >/dev/null # the next probe times out (2 s + 1.5 s), then a snapshot
times=$(for _ in $(seq 20); do ip netns exec inet curl -s -m 2 -o /dev/null -w '%{time_total}\n' "http://192.0.2.11:8000/status"; done | sort -n)
state=$(status_json spoke-a "d['postgres']['state']")
"$LAB" exec spoke-a kill -CONT "$pm"
max=$(tail -1 <<<"$times")
if [ "$state" = unresponsive ] && python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 0.010 else 1)" "$max"; then
	tap_ok "Postgres frozen (SIGSTOP, state $state): 20 /status requests, slowest $(python3 -c "print(round(float('$max')*1000, 2))") ms (limit 10)"
else
	tap_fail "Postgres frozen: /status still answers in < 10 ms" "state=$state times=$(tr '\n' ' ' <<<"$times")"
fi

# ---- monitoring: real scrapes pass promtool check metrics; the dashboard uses only their names ----
# One backup on the primary first, so the scrape has the backup figures too.
# LAB_RECORD_DIR=DIR keeps the scrapes (DIR/status/NODE.metrics): the fixtures
# of tests/monitoring come from there.
mon_t0=$(ms)
ROOT=$(cd "$TESTS/.." && pwd)
pg_running() { [ "$(sj spoke-a "d['postgres']['state']")" = running ]; }
wait_until 15000 pg_running >/dev/null
"$LAB" ctl spoke-a backup-now >/dev/null 2>&1
backed_up() { lab_get spoke-a /metrics | grep -q '^supervisor_backup_age_seconds [0-9]'; }
wait_until 30000 backed_up >/dev/null || tap_fail "a backup on spoke-a for the monitoring scrape" "$("$LAB" ctl spoke-a backups 2>&1 | head -5)"
sleep 1.2 # one more snapshot after the run ended
scrapes=$(mktemp -d)
for n in spoke-a spoke-b hub; do lab_get "$n" /metrics > "$scrapes/$n.metrics"; done
if ! command -v promtool >/dev/null; then
	tap_fail "promtool check metrics on the lab's scrapes" "promtool is missing: scripts/setup installs Debian's prometheus package"
else
	for n in spoke-a spoke-b hub; do
		out=$(promtool check metrics < "$scrapes/$n.metrics" 2>&1); rc=$?
		samples=$(grep -vc '^#' "$scrapes/$n.metrics")
		[ $rc = 0 ] && [ -z "$out" ] && [ "$samples" -gt 10 ] &&
			tap_ok "promtool check metrics: $n's /metrics ($samples samples) has no problem (names, types, HELP, units)" ||
			tap_fail "promtool check metrics on $n's /metrics" "exit $rc, $samples samples: $(tr '\n' ';' <<<"$out")"
	done
fi
out=$(python3 "$TESTS/monitoring/metric_names.py" --scrape "$scrapes/spoke-a.metrics" --scrape "$scrapes/spoke-b.metrics" \
	--scrape "$scrapes/hub.metrics" "$ROOT/deploy/monitoring/dashboard.json" 2>&1) &&
	tap_ok "every metric the dashboard's queries use is in this run's scrapes ($out)" ||
	tap_fail "every metric the dashboard's queries use is in this run's scrapes" "$(tr '\n' ';' <<<"$out")"
if [ -n "${LAB_RECORD_DIR:-}" ]; then
	mkdir -p "$LAB_RECORD_DIR/status"
	cp "$scrapes"/*.metrics "$LAB_RECORD_DIR/status/"
	echo "# recorded the scrapes into $LAB_RECORD_DIR/status"
fi
rm -rf "$scrapes"
echo "# monitoring checks took $(( $(ms) - mon_t0 )) ms"

for n in hub spoke-a spoke-b spoke-c; do "$LAB" stop "$n"; done
no_sanitizer_reports
tap_done
