#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# completion/supervisor.bash, driven as bash drives it (COMP_WORDS,
# COMP_CWORD, then the function `complete` names): its candidates for
# commands, ctl commands (the CLI's own tables, read from the source),
# options, and node names from the cluster file (-c, $SUPERVISOR_CONFIG),
# never a child's name.
#   test_completion.sh SOURCE_ROOT
set -u
ROOT=$1
. "$ROOT/tests/tap.sh"
# fail NAME TEXT...: tap_fail, each line of TEXT a TAP comment line
fail() { local n=$1 l lines=(); shift; while IFS= read -r l; do lines+=("$l"); done < <(printf '%s\n' "$@"); tap_fail "$n" "${lines[@]}"; }
. "$ROOT/tests/monitoring/cli_tables.sh"
COMP=$ROOT/completion/supervisor.bash

# complete_words WORD...: the candidates for the last word, sorted, on one line
# (a bash of its own, without any rc file: nothing but our file defines them).
complete_words() {
	env -u SUPERVISOR_CONFIG ${CONF_ENV:+SUPERVISOR_CONFIG=$CONF_ENV} bash --norc --noprofile -c '
		. "$1" || exit 9
		fn=$(complete -p supervisor | sed -n "s/.*-F \([^ ]*\) supervisor$/\1/p")
		[ -n "$fn" ] || { echo "no completion registered for supervisor"; exit 8; }
		shift
		COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
		"$fn" supervisor "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
		[ ${#COMPREPLY[@]} -eq 0 ] || printf "%s\n" "${COMPREPLY[@]}" | LC_ALL=C sort | tr "\n" " "' _ "$COMP" "$@"
}
sorted() { tr ' ' '\n' <<<"$*" | grep -v '^$' | LC_ALL=C sort | tr '\n' ' '; }
# expect NAME WANT WORD...
expect() {
	local name=$1 want got; want=$(sorted "$2"); shift 2
	got=$(complete_words "$@")
	[ "$got" = "$want" ] && tap_ok "$name: [$*] -> $got" || fail "$name" "words: $*" "want: $want" "got:  $got"
}

out=$(bash -n "$COMP" 2>&1 && shellcheck -s bash -S warning "$COMP" 2>&1) && tap_ok "completion/supervisor.bash: bash -n and shellcheck clean" ||
	fail "completion/supervisor.bash: bash -n and shellcheck clean" "$out"
cmds=$(cli_commands "$ROOT" | tr '\n' ' ')
ctl=$(ctl_commands "$ROOT" | tr '\n' ' ')
[ "$(wc -w <<<"$cmds")" -ge 8 ] && [ "$(wc -w <<<"$ctl")" -ge 6 ] ||
	fail "the CLI's tables read from cli/cli.c and cli/cmd_ctl.c" "commands: $cmds" "ctl: $ctl"
expect "every command of cli/cli.c" "$cmds --help" supervisor ""
expect "a prefix" "check-config ctl cluster" supervisor c
expect "every ctl command of cli/cmd_ctl.c, and ctl's options" "$ctl -s --socket -c --config -n --node --json" supervisor ctl ""
expect "after a ctl command" "--json" supervisor ctl status ""
expect "ctl reinit" "--json --no-wait" supervisor ctl reinit --
expect "ctl switchover" "--dry-run --json --no-wait --to" supervisor ctl switchover --
expect "ctl failover" "--allow-data-loss --json --no-wait --to" supervisor ctl failover --
expect "cluster subcommands" "add-spoke" supervisor cluster a
expect "backup subcommands" "run" supervisor backup r

EX=$ROOT/deploy/examples/cluster.conf
CH=$ROOT/tests/conf/valid/children.conf
expect "node names from -c FILE" "hub spoke-a spoke-b spoke-c" supervisor ctl -c "$EX" -n ""
expect "node names from --config=FILE, a prefix" "spoke-a spoke-b spoke-c" supervisor check-config --config="$EX" --node spo
expect "cluster rotate-key NAME: nodes" "hub spoke-a spoke-b spoke-c" supervisor cluster -c "$EX" rotate-key ""
expect "cluster rotate-key NAME: then options" "--bundle --config --pubkey -c" supervisor cluster -c "$EX" rotate-key spoke-b ""
expect "add-spoke --upstream: nodes" "spoke-a spoke-b spoke-c" supervisor cluster -c "$EX" add-spoke spoke-d --upstream s
expect "ctl failover --to: nodes, then its options" "--allow-data-loss --json --no-wait --to" supervisor ctl -c "$EX" failover --to spoke-b --
expect "ctl switchover --to: nodes" "spoke-a spoke-b spoke-c" supervisor ctl -c "$EX" switchover --to s
expect "children are not nodes (children.conf has db and app)" "hub spoke-a" supervisor run -c "$CH" -n ""
CONF_ENV=$EX expect "node names from \$SUPERVISOR_CONFIG" "spoke-a spoke-b spoke-c" supervisor backup run -n spoke
# Base64 keys hold "//"; # and // start comments only outside strings.
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/c.conf" <<'CONF'
hub = { name = "hub"; # name = "commented-out"
  overlay_ip = "10.88.0.1"; public_key = "ab//cd+ef="; };
spokes = ( { name = "s1"; overlay_ip = "10.88.0.11"; public_key = "x//y"; }, // { name = "gone"; overlay_ip = "1"; }
  { name = "s2";
    overlay_ip = "10.88.0.12"; } );
CONF
expect "comments and keys with //" "hub s1 s2" supervisor ctl -c "$tmp/c.conf" -n ""
expect "no cluster file: no names, no error" "" supervisor ctl -c "$tmp/none.conf" -n ""
tap_done
