#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Every metric name a dashboard or an alert rules file queries must exist
in real /metrics scrapes.

  metric_names.py --scrape SCRAPE [--scrape SCRAPE...] [--allow NAME...] FILE...

FILE is a Grafana dashboard (.json: every "expr" of every target, every
query variable's query) or a Prometheus rules file (.yml: every
rule's "expr"). A name is allowed when some scrape has a sample or a
"# TYPE" line for it, or when it is named with --allow (for series a lab
cannot produce, each said in the caller). Prints "N names in M queries"
and exits 0, or prints each missing name with where it is used and exits 1.
A file that does not parse (invalid JSON or YAML), or one without a single
query, is an error too.
"""
import argparse
import json
import re
import sys

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
            "unless", "offset", "bool", "inf", "nan", "atan2", "topk", "bottomk",
            "start", "end"}
# Clauses whose parenthesised list holds label names, not metrics.
LABEL_LISTS = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def scrape_names(path):
    names = set()
    for line in open(path):
        line = line.strip()
        if line.startswith("# TYPE "):
            names.add(line.split()[2])
        elif line and not line.startswith("#"):
            names.add(IDENT.match(line).group(0))
    return names


def metric_names(expr):
    """The metric names in a PromQL expression (functions, labels,
    keywords, durations, strings and Grafana variables left out)."""
    e = re.sub(r'"(\\.|[^"\\])*"', '""', expr)       # strings
    e = re.sub(r"'(\\.|[^'\\])*'", "''", e)
    e = re.sub(r"\{[^}]*\}", "", e)                  # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)                 # ranges, subqueries
    e = LABEL_LISTS.sub("", e)
    e = re.sub(r"\$\{?[a-zA-Z_][a-zA-Z0-9_]*\}?", "", e)  # $node, ${__rate_interval}
    e = re.sub(r"\b\d+(\.\d+)?([eE][+-]?\d+)?[smhdwy]?\b", "", e)  # numbers, durations
    names = []
    for m in IDENT.finditer(e):
        rest = e[m.end():].lstrip()
        if rest.startswith("(") or m.group(0).lower() in KEYWORDS:
            continue
        names.append(m.group(0))
    return names


def dashboard_queries(doc):
    out = []

    def walk(node, where):
        if isinstance(node, dict):
            title = node.get("title", where)
            for k, v in node.items():
                if k == "expr" and isinstance(v, str):
                    out.append((title, v))
                elif k != "templating" and isinstance(v, (dict, list)):
                    walk(v, title)
        elif isinstance(node, list):
            for v in node:
                walk(v, where)

    walk(doc, "dashboard")
    # query variables: label_values(metric, label) or a PromQL query
    for var in (doc.get("templating") or {}).get("list") or []:
        q = var.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if var.get("type") == "query" and isinstance(q, str):
            m = re.match(r"\s*label_values\(\s*([^,)]+)", q)
            out.append(("variable " + var.get("name", "?"), m.group(1) if m else q))
    return out


def rules_queries(doc):
    out = []
    for g in doc.get("groups") or []:
        for r in g.get("rules") or []:
            out.append((r.get("alert") or r.get("record") or "?", r["expr"]))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scrape", action="append", required=True)
    ap.add_argument("--allow", action="append", default=[])
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    known = set(a.allow)
    for s in a.scrape:
        known |= scrape_names(s)
    if len(known - set(a.allow)) < 10:
        print(f"the scrapes {a.scrape} hold fewer than 10 metric names: not a real scrape")
        return 1
    missing, n_names, n_queries = [], set(), 0
    for f in a.files:
        try:
            if f.endswith(".json"):
                queries = dashboard_queries(json.load(open(f)))
            else:
                import yaml
                queries = rules_queries(yaml.safe_load(open(f)))
        except Exception as e:  # noqa: BLE001 -- any parse error is a failure to report
            print(f"{f}: does not parse: {e}")
            return 1
        if not queries:
            print(f"{f}: no query found")
            return 1
        n_queries += len(queries)
        for where, q in queries:
            for name in metric_names(q):
                n_names.add(name)
                if name not in known:
                    missing.append(f"{f}: {where}: {name} (in: {q.strip()})")
    if missing:
        print("\n".join(["metric names not in any scrape:"] + missing))
        return 1
    print(f"{len(n_names)} names in {n_queries} queries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
