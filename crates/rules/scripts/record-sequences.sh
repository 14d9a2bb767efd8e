#!/bin/bash
# Records crates/cli/tests/data/sequences.tsv from the real iptables-legacy (root): every line
# of sequences.txt runs, in order, in ONE throwaway namespace; columns: args, rc, output
# (stdout then stderr), with `\` `\t` `\n` escaped as \\ \t \n. Then `iptables-legacy-save -c`
# (stamp lines removed) is appended as a final row with args `SAVE`.
set -eu
cd "$(dirname "$0")/../../cli/tests/data"
NS=nfrs-rec-seq-$$
ip netns add $NS
trap "ip netns del $NS" EXIT
esc() { python3 -c 'import sys; s=sys.stdin.read(); print(s.replace("\\","\\\\").replace("\t","\\t").replace("\n","\\n"), end="")'; }
{
  printf 'args\trc\toutput\n'
  while IFS= read -r line; do
    case "$line" in ''|'#'*) continue;; esac
    eval "set -- $line"
    set +e
    out=$(ip netns exec $NS iptables-legacy "$@" 2>&1; echo "rc=$?")
    set -e
    rc=${out##*rc=}
    out=${out%rc=*}
    printf '%s\t%s\t%s\n' "$line" "$rc" "$(printf '%s' "$out" | esc)"
  done < sequences.txt
  save=$(ip netns exec $NS iptables-legacy-save -c | grep -v '^# ')
  printf 'SAVE\t0\t%s\n' "$(printf '%s\n' "$save" | esc)"
} > sequences.tsv
