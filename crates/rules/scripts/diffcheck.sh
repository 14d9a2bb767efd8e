#!/bin/bash
# Differential check (root): each line of stdin is the rule part of `-A CHAIN ...`; it is run
# through iptables-legacy in a throwaway namespace and through nfrs on a temporary store, and
# the outputs of -A, -L, -L -n, -L -v -x, -S and -D are compared. NFRS_BIN = the nfrs binary.
# usage: diffcheck.sh TABLE CHAIN < rules (one arg string per line)
T=$1; C=$2; S=$(mktemp -d); N=${NFRS_BIN:?set NFRS_BIN to the nfrs binary}; NS=nfrs-diff-$$; ip netns add $NS; trap "ip netns del $NS; rm -rf $S" EXIT
while IFS= read -r line; do
  eval "set -- $line"
  r=$(ip netns exec $NS iptables-legacy -t $T -A $C "$@" 2>&1; echo "rc=$?"; for o in "-L $C" "-L $C -n" "-L $C -v -x" "-S $C"; do ip netns exec $NS iptables-legacy -t $T $o 2>&1; done; ip netns exec $NS iptables-legacy -t $T -D $C "$@" 2>&1; echo "drc=$?"; ip netns exec $NS iptables-legacy -t $T -F $C)
  m=$(NFRS_STORE=$S $N iptables -t $T -A $C "$@" 2>&1; echo "rc=$?"; for o in "-L $C" "-L $C -n" "-L $C -v -x" "-S $C"; do NFRS_STORE=$S $N iptables -t $T $o 2>&1; done; NFRS_STORE=$S $N iptables -t $T -D $C "$@" 2>&1; echo "drc=$?"; NFRS_STORE=$S $N iptables -t $T -F $C)
  if [ "$r" != "$m" ]; then echo "DIFF: $line"; diff <(echo "$r") <(echo "$m") | head -6; fi
done

