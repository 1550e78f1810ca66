#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The alert tests' input series against the lab's real scrapes.

  check_series.py check FIXTURES TEST_YML RULES_YML
      Every input series of TEST_YML (promtool's test format) is a sample
      of a scrape: its name and labels, less the job and instance labels a
      Prometheus scrape adds, are those of a sample in FIXTURES/NODE*.metrics,
      where NODE is the instance's host (instance="spoke-a:8000": spoke-a).
      Only `up` is exempt (Prometheus makes it). And every alert of
      RULES_YML is expected to fire somewhere in TEST_YML.

  check_series.py healthy FIXTURES RULES_YML OUT_YML
      Writes a promtool test: every sample of every fixture whose node was
      ok (supervisor_health{state="ok"} 1), held for 3 hours (counters
      constant), scraped as job "supervisor" with up 1; no alert of
      RULES_YML may fire at 10 minutes, 1 hour or 3 hours.
"""
import glob
import os
import re
import sys

import yaml

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def samples(path):
    """(name, frozenset of labels, value) for every sample line of a scrape."""
    out = []
    for line in open(path):
        line = line.rstrip("\n")
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            raise ValueError(f"{path}: not a sample line: {line}")
        out.append((m.group(1), frozenset(LABEL.findall(m.group(3) or "")), m.group(4)))
    return out


def parse_series(text):
    m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?$', text.strip())
    if not m:
        raise ValueError(f"cannot parse series {text}")
    return m.group(1), dict(LABEL.findall(m.group(3) or ""))


def check(fixtures, test_yml, rules_yml):
    doc = yaml.safe_load(open(test_yml))
    known, bad, n = {}, [], 0
    for t in doc["tests"]:
        for s in t.get("input_series", []):
            name, labels = parse_series(s["series"])
            n += 1
            if name == "up":
                continue
            inst = labels.pop("instance", None)
            job = labels.pop("job", None)
            if not inst or job != "supervisor":
                bad.append(f"{t['name']}: {s['series']}: no instance, or job is not \"supervisor\"")
                continue
            node = inst.split(":")[0]
            if node not in known:
                files = sorted(glob.glob(os.path.join(fixtures, node + "*.metrics")))
                known[node] = {(nm, lb) for f in files for nm, lb, _ in samples(f)}
                if not files:
                    bad.append(f"no fixture scrape of {node} in {fixtures}")
            if (name, frozenset(labels.items())) not in known[node]:
                bad.append(f"{t['name']}: {s['series']}: no such sample in {node}'s scrapes")
    fired = {a["alertname"] for t in doc["tests"] for a in t.get("alert_rule_test", []) if a.get("exp_alerts")}
    rules = {r["alert"] for g in yaml.safe_load(open(rules_yml))["groups"] for r in g["rules"] if "alert" in r}
    for a in sorted(rules - fired):
        bad.append(f"alert {a} of {rules_yml} is never expected to fire in {test_yml}")
    if bad:
        print("\n".join(bad))
        return 1
    print(f"{n} input series, each a sample of the lab's scrapes ({', '.join(sorted(known))}); "
          f"all {len(rules)} alerts fire in some test")
    return 0


def healthy(fixtures, rules_yml, out_yml):
    series, nodes = [], []
    for f in sorted(glob.glob(os.path.join(fixtures, "*.metrics"))):
        ss = samples(f)
        if ("supervisor_health", frozenset({("state", "ok")}), "1") not in ss:
            continue
        node = os.path.basename(f)[:-len(".metrics")]
        nodes.append(node)
        inst = node + ":8000"
        series.append({"series": f'up{{job="supervisor",instance="{inst}"}}', "values": "1x180"})
        for name, labels, value in ss:
            lb = ",".join([f'job="supervisor"', f'instance="{inst}"'] +
                          [f'{k}="{v}"' for k, v in sorted(labels)])
            series.append({"series": f"{name}{{{lb}}}", "values": f"{value}x180"})
    if len(nodes) < 2:
        print(f"fewer than 2 healthy scrapes in {fixtures}: {nodes}")
        return 1
    rules = [r["alert"] for g in yaml.safe_load(open(rules_yml))["groups"] for r in g["rules"] if "alert" in r]
    doc = {"rule_files": [os.path.abspath(rules_yml)], "evaluation_interval": "1m",
           "tests": [{"name": "a healthy lab (" + ", ".join(nodes) + "): no alert", "interval": "1m",
                      "input_series": series,
                      "alert_rule_test": [{"eval_time": t, "alertname": a, "exp_alerts": []}
                                          for t in ("10m", "1h", "3h") for a in rules]}]}
    with open(out_yml, "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False, width=1000)
    print(f"{len(series)} series of {', '.join(nodes)}, {len(rules)} alerts at 10m, 1h, 3h")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "check":
        sys.exit(check(*sys.argv[2:]))
    if len(sys.argv) == 5 and sys.argv[1] == "healthy":
        sys.exit(healthy(*sys.argv[2:]))
    print(__doc__)
    sys.exit(64)
