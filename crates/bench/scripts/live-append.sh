#!/usr/bin/env bash
# One rule command through `nfrs run`'s control socket with a big ruleset loaded, timed end
# to end (root; not a test). A namespace with two veth interfaces for the daemon, the store
# restored from RULES first, then ROUNDS times `nfrs iptables -t nat -A KUBE-SERVICES ...`
# as a client sends it (the daemon applies it to the ruleset it keeps and patches it into the
# engine in force; the store is written behind the answer), with the daemon's own time from
# request to answer (NFRS_RUN_TIMES); then listings and iptables-save -c through the daemon.
# Usage: crates/bench/scripts/live-append.sh NFRS RULES [ROUNDS]
#   (RULES e.g. from `nfrs bench --emit kube-proxy 10000`)
set -euo pipefail
nfrs=$1 rules=$2 rounds=${3:-5}
tag="nfrsap$$"
G="$tag-g" P="$tag-p"
work=$(mktemp -d)
pid=""
cleanup() {
  set +e
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  ip netns del "$G" 2>/dev/null
  ip netns del "$P" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$G"
ip netns add "$P"
ip link add lan0 netns "$G" type veth peer name p0 netns "$P"
ip link add wan0 netns "$G" type veth peer name p1 netns "$P"
for d in lan0 wan0; do
  ip -n "$G" link set "$d" arp off
  ip -n "$G" link set "$d" up
done
printf '[[interface]]\nname = "lan0"\naddress = "10.0.1.1/24"\n\n[[interface]]\nname = "wan0"\naddress = "198.51.100.2/24"\n\n[live]\nmode = "routed"\n' >"$work/gw.toml"
NFRS_NO_DAEMON=1 "$nfrs" iptables-restore --store "$work/store" <"$rules"
t0=$(date +%s%N)
NFRS_RUN_TIMES=1 ip netns exec "$G" "$nfrs" run --store "$work/store" --host "$work/gw.toml" >"$work/daemon.log" 2>&1 &
pid=$!
# Commands given before the daemon's socket is up act on the store directly: wait for it.
for _ in $(seq 600); do
  grep -qs "control socket" "$work/daemon.log" && [ -S "$work/store/control.sock" ] && break
  sleep 0.1
done
[ -S "$work/store/control.sock" ] || { cat "$work/daemon.log"; exit 1; }
echo "daemon serving after $((($(date +%s%N) - t0) / 1000000)) ms, $(grep VmRSS /proc/$pid/status | tr -s ' ')"
for i in $(seq "$rounds"); do
  t0=$(date +%s%N)
  NFRS_STORE="$work/store" "$nfrs" iptables -t nat -A KUBE-SERVICES -d "172.31.254.$i/32" \
    -p tcp -m tcp --dport 80 -j KUBE-MARK-MASQ
  t1=$(date +%s%N)
  inside=$(grep -o "KUBE-MARK-MASQ [a-z]*.* in [0-9.]* ms" "$work/daemon.log" | tail -1 | sed 's/.*KUBE-MARK-MASQ //' || true)
  echo "-A round $i: $(((t1 - t0) / 1000)) us end to end, in the daemon: $inside (load $(cut -d' ' -f1 /proc/loadavg))"
done
# The store follows behind the answers: wait (at most 10 s) until it holds the last rule.
for _ in $(seq 100); do
  grep -qs "172.31.254.$rounds/32" "$work/store/ruleset.rules" && break
  sleep 0.1
done
NFRS_STORE="$work/store" "$nfrs" iptables -t nat -S KUBE-SERVICES | grep -c "172.31.254" | sed "s/^/appended rules the daemon lists: /"
grep -c "172.31.254" "$work/store/ruleset.rules" | sed "s/^/in the store file: /"
for i in 1 2 3; do t0=$(date +%s%N); NFRS_STORE="$work/store" "$nfrs" iptables -t nat -S KUBE-MARK-MASQ >/dev/null; echo "-S (listing through the daemon): $((($(date +%s%N) - t0) / 1000000)) ms"; done
for i in 1 2 3; do t0=$(date +%s%N); NFRS_STORE="$work/store" "$nfrs" iptables-save -c >/dev/null; echo "iptables-save -c (whole ruleset through the daemon): $((($(date +%s%N) - t0) / 1000000)) ms"; done
