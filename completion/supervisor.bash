# SPDX-License-Identifier: MIT
# bash completion for supervisor(8): commands, `ctl` and `cluster` and
# `backup` subcommands, options, and node names read from the cluster file
# (-c FILE on the command line, else $SUPERVISOR_CONFIG, else
# /etc/supervisor/cluster.conf). Needs nothing but bash (no bash-completion
# helpers). Installed by meson as share/bash-completion/completions/supervisor.

# The commands of cli/cli.c and the ctl commands of cli/cmd_ctl.c; the
# monitoring test suite checks these lists against those tables.
_supervisor_commands="run check-config ctl cluster backup restore genkey pubkey version help"
_supervisor_ctl_commands="status replication tunnel firewall backups backup-now reinit reload ha switchover failover"

# _supervisor_nodes FILE: the names of the hub and the spokes (the groups
# that have an overlay_ip; children's names are not nodes).
_supervisor_nodes() {
	[ -r "$1" ] || return 0
	awk '
	{
		line = " " $0
		while (match(line, /[^a-zA-Z0-9_]name[ \t]*=[ \t]*"[^"]*"|[^a-zA-Z0-9_]overlay_ip[ \t]*=|"[^"]*"|[{}]|#|\/\//)) {
			tok = substr(line, RSTART, RLENGTH)
			line = substr(line, RSTART + RLENGTH)
			if (tok == "#" || tok == "//") break  # a comment (outside strings) to the end of the line
			else if (tok == "{") { depth++; name[depth] = ""; ip[depth] = 0 }
			else if (tok == "}") {
				if (depth > 0 && ip[depth] && name[depth] != "") print name[depth]
				if (depth > 0) depth--
			} else if (tok ~ /name[ \t]*=/) { sub(/^[^"]*"/, "", tok); sub(/"$/, "", tok); name[depth] = tok }
			else if (tok ~ /overlay_ip/) ip[depth] = 1
		}
	}' "$1" 2>/dev/null
}

_supervisor() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=""
	local cmd="" sub="" conf=${SUPERVISOR_CONFIG:-/etc/supervisor/cluster.conf} i w
	[ "$COMP_CWORD" -gt 0 ] && prev=${COMP_WORDS[COMP_CWORD-1]}
	COMPREPLY=()

	# the command, its subcommand and -c FILE from the words before the cursor
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		case $w in
		-c|--config) conf=${COMP_WORDS[i+1]:-$conf}; i=$((i + 1)); continue ;;
		--config=*) conf=${w#--config=}; continue ;;
		-s|--socket|-n|--node|--to|--target|--backup|--endpoint|--network|--hub-key|--bundle|--pubkey|--upstream|--ssh-from|--spokes|--run-id)
			i=$((i + 1)); continue ;;
		-*) continue ;;
		esac
		if [ -z "$cmd" ]; then cmd=$w
		elif [ -z "$sub" ]; then sub=$w
		fi
	done

	case $prev in
	-c|--config|-s|--socket|--hub-key|--bundle)
		mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return 0 ;;
	-n|--node|--upstream|--to)
		mapfile -t COMPREPLY < <(compgen -W "$(_supervisor_nodes "$conf")" -- "$cur"); return 0 ;;
	--target|--backup|--endpoint|--network|--pubkey|--ssh-from|--spokes|--run-id)
		return 0 ;;
	esac

	local words=""
	case $cmd in
	"") words="$_supervisor_commands --help" ;;
	help) [ -z "$sub" ] && words=$_supervisor_commands ;;
	run) words="-c --config -n --node -v --verbose" ;;
	check-config) words="-c --config -n --node" ;;
	ctl)
		if [ -z "$sub" ]; then words="$_supervisor_ctl_commands -s --socket -c --config -n --node --json"
		elif [ "$sub" = reinit ]; then words="--json --no-wait"
		elif [ "$sub" = switchover ]; then words="--to --dry-run --json --no-wait"
		elif [ "$sub" = failover ]; then words="--to --allow-data-loss --json --no-wait"
		else words="--json"
		fi ;;
	cluster)
		case $sub in
		"") words="init add-spoke remove-spoke rotate-key -c --config" ;;
		init) words="--endpoint --spokes --ssh-from --network --hub-key --bundle -c --config" ;;
		add-spoke) words="--upstream --primary --pubkey --bundle -c --config" ;;
		remove-spoke|rotate-key)
			# the node's name first, then options
			local named=0
			for ((i = 1; i < COMP_CWORD; i++)); do
				[ "${COMP_WORDS[i]}" = "$sub" ] && [ -n "${COMP_WORDS[i+1]:-}" ] && [ $((i + 1)) -lt "$COMP_CWORD" ] &&
					case ${COMP_WORDS[i+1]} in -*) ;; *) named=1 ;; esac
			done
			if [ $named = 0 ] && [[ $cur != -* ]]; then
				words=$(_supervisor_nodes "$conf")
			else
				words="--bundle -c --config"
				[ "$sub" = rotate-key ] && words="$words --pubkey"
			fi ;;
		esac ;;
	backup)
		if [ -z "$sub" ]; then words="run verify list -c --config -n --node"
		else words="-c --config -n --node --no-precheck --allow-lag --json"
		fi ;;
	restore) words="--target --backup -c --config -n --node" ;;
	genkey|pubkey|version) words="" ;;
	esac
	mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
	return 0
}
complete -F _supervisor supervisor
