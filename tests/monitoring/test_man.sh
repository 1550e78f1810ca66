#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# supervisor(8), as meson built it from doc/supervisor.8.scd: it renders
# without a warning, has the sections a man page needs, and names every
# command of the CLI's table (cli/cli.c) and every ctl command (cli/cmd_ctl.c).
# With BUILD_ROOT, also that meson installs it into man8, and the bash
# completion where bash-completion looks.
#   test_man.sh BUILT_PAGE SOURCE_ROOT [BUILD_ROOT]
set -u
PAGE=$1 ROOT=$2 BUILD=${3:-}
. "$ROOT/tests/tap.sh"
# fail NAME TEXT...: tap_fail, each line of TEXT a TAP comment line
fail() { local n=$1 l lines=(); shift; while IFS= read -r l; do lines+=("$l"); done < <(printf '%s\n' "$@"); tap_fail "$n" "${lines[@]}"; }
. "$ROOT/tests/monitoring/cli_tables.sh"

if [ ! -s "$PAGE" ]; then
	fail "the man page was built" "no $PAGE: meson builds it with scdoc (scripts/setup installs it; -Dman=enabled makes it required)"
	tap_done; exit 1
fi
tap_ok "the man page was built ($(wc -c < "$PAGE") bytes of roff)"
if ! command -v man >/dev/null || ! command -v groff >/dev/null; then
	fail "man and groff are here to render it" "install man-db and groff-base"
	tap_done; exit 1
fi
text=$(MANWIDTH=100 LC_ALL=C.UTF-8 man -l "$PAGE" 2>"${TMPDIR:-/tmp}/man-warn.$$")
warn=$(cat "${TMPDIR:-/tmp}/man-warn.$$"; rm -f "${TMPDIR:-/tmp}/man-warn.$$")
warn2=$(groff -man -Tutf8 -ww -z "$PAGE" 2>&1)
[ -n "$text" ] && [ -z "$warn" ] && [ -z "$warn2" ] &&
	tap_ok "man -l renders it ($(wc -l <<<"$text") lines), groff -ww has no warning" ||
	fail "man -l renders it without a warning" "man: $warn" "groff: $warn2"

missing=""
for s in NAME SYNOPSIS DESCRIPTION COMMANDS OPTIONS FILES ENVIRONMENT "EXIT STATUS" SIGNALS "SEE ALSO"; do
	grep -q "^$s\$" <<<"$text" || missing+=" [$s]"
done
[ -z "$missing" ] && tap_ok "sections: NAME, SYNOPSIS, DESCRIPTION, COMMANDS, OPTIONS, FILES, ENVIRONMENT, EXIT STATUS, SIGNALS, SEE ALSO" ||
	fail "every section is there" "missing:$missing"

cmds=$(cli_commands "$ROOT")
n=$(wc -w <<<"$cmds")
missing=""
# Each command is a paragraph of COMMANDS (a line "       NAME ...") and in SYNOPSIS ("supervisor NAME").
commands_section=$(sed -n '/^COMMANDS$/,/^OPTIONS$/p' <<<"$text")
for c in $cmds; do
	grep -qE "^       $c( |\$)" <<<"$commands_section" && grep -qE "^       supervisor $c( |\$)" <<<"$text" || missing+=" $c"
done
[ "$n" -ge 8 ] && [ -z "$missing" ] && tap_ok "every one of the $n commands of cli/cli.c is in SYNOPSIS and COMMANDS ($(tr '\n' ' ' <<<"$cmds"))" ||
	fail "every command of cli/cli.c is in SYNOPSIS and COMMANDS" "table: $(tr '\n' ' ' <<<"$cmds")" "missing:$missing"

ctl=$(ctl_commands "$ROOT")
n=$(wc -w <<<"$ctl")
missing=""
for c in $ctl; do grep -qE "^           $c( |\$)" <<<"$commands_section" || missing+=" $c"; done
[ "$n" -ge 6 ] && [ -z "$missing" ] && tap_ok "every one of the $n ctl commands of cli/cmd_ctl.c is described under ctl" ||
	fail "every ctl command is described" "table: $(tr '\n' ' ' <<<"$ctl")" "missing:$missing"

missing=""
for v in SUPERVISOR_CONFIG SUPERVISOR_NODE SIGTERM SIGHUP /etc/supervisor/cluster.conf /run/supervisor/ctl.sock; do
	grep -qF "$v" <<<"$text" || missing+=" $v"
done
codes=$(sed -n '/^EXIT STATUS$/,/^SIGNALS$/p' <<<"$text" | grep -oE '^       [0-9]+$' | tr -d ' ' | tr '\n' ' ')
[ -z "$missing" ] && [ "$codes" = "0 1 2 3 64 69 73 75 78 " ] &&
	tap_ok "environment, signals, files, and exit statuses ($codes) are documented" ||
	fail "environment, signals, files and exit statuses" "missing:$missing" "codes: $codes"
if [ -n "$BUILD" ]; then
	inst=$(meson introspect --installed "$BUILD" 2>&1)
	grep -q '/man8/supervisor\.8"' <<<"$inst" && grep -q '/bash-completion/completions/supervisor"' <<<"$inst" &&
		tap_ok "meson installs the page into man8 and the completion into bash-completion/completions" ||
		fail "meson installs the page and the completion" "$inst"
fi
tap_done
