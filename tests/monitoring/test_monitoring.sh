#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The monitoring kit (deploy/monitoring) against real scrapes of the lab's
# /metrics (fixtures/, recorded by tests/lab with LAB_RECORD_DIR; see
# fixtures/README): the scrapes pass `promtool check metrics`; the alert
# rules pass `promtool check rules` and their unit tests (`promtool test
# rules`: alerts_test.yml, whose every input series is a sample of those
# scrapes, and a generated one where a healthy lab raises nothing); the
# dashboard is valid JSON and every metric the dashboard and the rules
# query is in the scrapes; deploy/monitoring/plot.sh draws the README's
# picture from the recorded outage. No root, no lab: a few seconds.
#   test_monitoring.sh SOURCE_ROOT
set -u
ROOT=$1
. "$ROOT/tests/tap.sh"
# fail NAME TEXT...: tap_fail, each line of TEXT a TAP comment line
fail() { local n=$1 l lines=(); shift; while IFS= read -r l; do lines+=("$l"); done < <(printf '%s\n' "$@"); tap_fail "$n" "${lines[@]}"; }
MON=$ROOT/tests/monitoring FIX=$ROOT/tests/monitoring/fixtures
RULES=$ROOT/deploy/monitoring/alerts.yml DASH=$ROOT/deploy/monitoring/dashboard.json
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

if ! command -v promtool >/dev/null; then
	fail "promtool is installed" "promtool is missing: scripts/setup installs Debian's prometheus package, which has it"
	tap_done; exit 1
fi
python3 -c 'import yaml' 2>/dev/null || fail "python3-yaml is installed" "run scripts/setup"

fixtures=("$FIX"/*.metrics)
[ ${#fixtures[@]} -ge 3 ] && [ -s "${fixtures[0]}" ] && tap_ok "${#fixtures[@]} recorded lab scrapes in tests/monitoring/fixtures" ||
	fail "recorded lab scrapes in tests/monitoring/fixtures" "${fixtures[*]}"
for f in "${fixtures[@]}"; do
	out=$(promtool check metrics < "$f" 2>&1); rc=$?
	[ $rc = 0 ] && [ -z "$out" ] && tap_ok "promtool check metrics: $(basename "$f") ($(grep -vc '^#' "$f") samples) has no problem" ||
		fail "promtool check metrics: $(basename "$f")" "exit $rc" "$out"
done

out=$(promtool check rules "$RULES" 2>&1); rc=$?
[ $rc = 0 ] && grep -q SUCCESS <<<"$out" && tap_ok "promtool check rules deploy/monitoring/alerts.yml: $(grep -o '[0-9]* rules found' <<<"$out")" ||
	fail "promtool check rules deploy/monitoring/alerts.yml" "$out"

out=$(python3 "$MON/check_series.py" check "$FIX" "$MON/alerts_test.yml" "$RULES" 2>&1) &&
	tap_ok "alerts_test.yml: $out" || fail "alerts_test.yml's series are the lab's and every alert is tested" "$out"
out=$(cd "$MON" && promtool test rules alerts_test.yml 2>&1); rc=$?
cases=$(grep -c 'eval_time:' "$MON/alerts_test.yml")
[ $rc = 0 ] && grep -q SUCCESS <<<"$out" &&
	tap_ok "promtool test rules alerts_test.yml: $(grep -c '^  - name:' "$MON/alerts_test.yml") scenarios, $cases evaluations, each firing or silent as expected" ||
	fail "promtool test rules alerts_test.yml" "$out"

if gen=$(python3 "$MON/check_series.py" healthy "$FIX" "$RULES" "$tmp/healthy_test.yml" 2>&1); then
	out=$(promtool test rules "$tmp/healthy_test.yml" 2>&1); rc=$?
	[ $rc = 0 ] && grep -q SUCCESS <<<"$out" && tap_ok "a healthy lab raises no alert for 3 hours ($gen)" ||
		fail "a healthy lab raises no alert" "$gen" "$(head -40 <<<"$out")"
else
	fail "a healthy lab raises no alert (generating the test)" "$gen"
fi

scrapes=()
for f in "${fixtures[@]}"; do scrapes+=(--scrape "$f"); done
out=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d.get("uid") and d.get("title"), "no uid or title"
panels = [p for p in d["panels"] if p.get("type") != "row"]
ids = [p["id"] for p in d["panels"]]
assert len(ids) == len(set(ids)), "panel ids repeat"
assert all(p.get("targets") for p in panels), "a panel without a query"
print(len(panels), "panels")' "$DASH" 2>&1) && tap_ok "dashboard.json is valid JSON: a uid, $out, each with a query, unique ids" ||
	fail "dashboard.json is valid JSON with panels and queries" "$out"
for t in "handshake age" "replay lag" "backup" "firewall drops" "child restarts"; do
	grep -qi "\"title\": \"[^\"]*$t" "$DASH" || fail "the dashboard has a panel on $t"
done
out=$(python3 "$MON/metric_names.py" "${scrapes[@]}" "$DASH" 2>&1) &&
	tap_ok "every metric the dashboard queries is in the lab's scrapes ($out)" ||
	fail "every metric the dashboard queries is in the lab's scrapes" "$out"
# up is Prometheus' own; everything else the rules read must be scraped
out=$(python3 "$MON/metric_names.py" "${scrapes[@]}" --allow up "$RULES" 2>&1) &&
	tap_ok "every metric the alert rules query is in the lab's scrapes ($out)" ||
	fail "every metric the alert rules query is in the lab's scrapes" "$out"
# the README's picture: plot.sh still draws it from the committed series
PLOT=$ROOT/deploy/monitoring/plot.sh
out=$(shellcheck -S warning "$PLOT" 2>&1 && "$PLOT" "$ROOT/deploy/monitoring/lab/hub-outage.tsv" \
	"$ROOT/deploy/monitoring/lab/hub-outage.events" "$tmp/hub-outage.png" 2>&1) &&
	[ "$(head -c 4 "$tmp/hub-outage.png" | od -An -c | tr -d ' ')" = '211PNG' ] &&
	tap_ok "deploy/monitoring/plot.sh (shellcheck clean) draws a PNG from deploy/monitoring/lab/ ($out)" ||
	fail "deploy/monitoring/plot.sh draws a PNG from deploy/monitoring/lab/" "$out"
tap_done
