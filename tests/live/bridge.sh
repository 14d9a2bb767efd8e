#!/usr/bin/env bash
# Live test of `nfrs run` in bridge mode (root only): two hosts on one /24, A (10.0.0.2) and
# B (10.0.0.3), each on a veth whose other end (p1, p2) sits in the gw namespace, where
# `nfrs run` bridges p1 and p2 as br0 (10.0.0.1/24) with the kernel quiet (no address, arp off,
# no forwarding, no kernel bridge). Checks: ARP and ping across the bridge and to the bridge's
# address; curl across it both ways; `-m physdev --physdev-in p2 -p tcp --dport 8080 -j DROP`
# blocks B -> A only and counts; a LOG line shows IN=br0 OUT=br0 PHYSIN=p1 PHYSOUT=p2; the
# ports are promiscuous while nfrs runs; SIGTERM stops it cleanly; then the same bridge built
# in the kernel (br_netfilter) logs the same line for the same ping. Everything it started goes
# on exit.
# Usage: tests/live/bridge.sh [path/to/nfrs]   (default: builds it in $CARGO_TARGET_DIR)
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/live/lib.sh
live_init "live bridge" b "${1:-}"
for t in ip ethtool curl ping python3; do
  command -v "$t" >/dev/null || fail "$t missing"
done

# $C is host A, $S is host B, $G holds the bridge.
live_namespaces
live_veth "$C" a0 p1
live_veth "$S" b0 p2
ip netns exec "$G" sysctl -qw net.ipv4.ip_forward=0
ip netns exec "$C" ip addr add 10.0.0.2/24 dev a0
ip netns exec "$S" ip addr add 10.0.0.3/24 dev b0

cat >"$work/br.toml" <<'TOML'
[[interface]]
name = "p1"

[[interface]]
name = "p2"

[[bridge]]
name = "br0"
ports = ["p1", "p2"]
address = "10.0.0.1/24"

[live]
mode = "bridge"
TOML
live_daemon "$store" "$work/br.toml"
live_wait_socket "$store"
grep -q "bridge br0 .*ports p1, p2 (promiscuous)" "$work/daemon.log" || fail "no bridge in the startup report"
grep -q "warning" "$work/daemon.log" && fail "warnings about the kernel interfaces"
for p in p1 p2; do
  ip netns exec "$G" ip -d link show "$p" | grep -q "promiscuity 1" || fail "$p is not promiscuous"
done

# -i/-o are the bridge (a rule without target counts); conntrack follows bridged flows.
"$nfrs" iptables -A FORWARD -i br0 -o br0 -p icmp || fail "iptables -A counter"
"$nfrs" iptables -A FORWARD -m conntrack --ctstate ESTABLISHED -j ACCEPT || fail "iptables -A ctstate"
"$nfrs" iptables -A FORWARD -m physdev --physdev-in p1 --physdev-out p2 -p icmp -j LOG --log-prefix "br$$ " \
  || fail "iptables -A LOG via the daemon"
"$nfrs" iptables -A FORWARD -m physdev --physdev-in p2 -p tcp --dport 8080 -j DROP \
  || fail "iptables -A DROP via the daemon"
"$nfrs" iptables -A FORWARD -m physdev --physdev-is-bridged -j ACCEPT || fail "iptables -A ACCEPT"

ip netns exec "$C" ping -c 2 -W 2 10.0.0.3 >"$work/ping.txt" \
  || { cat "$work/ping.txt"; fail "ping A -> B across the bridge"; }
ip netns exec "$S" ping -c 1 -W 2 10.0.0.2 >/dev/null || fail "ping B -> A across the bridge"
ip netns exec "$C" ping -c 1 -W 2 10.0.0.1 >/dev/null || fail "ping the bridge's own address"
echo "live bridge: ping across the bridge and to br0 ok"
# 2 requests and 2 replies A <-> B, 1 and 1 B <-> A; the ping to br0 itself is not forwarded.
n="$("$nfrs" iptables-save -c | sed -n 's/^\[\([0-9]*\):[0-9]*\] -A FORWARD -i br0 -o br0 -p icmp$/\1/p')"
[ "$n" = 6 ] || fail "-i br0 -o br0 counted '$n' ICMP packets, not 6"

nfrs_log="$(grep -m1 -o "br$$ IN=br0 OUT=br0 PHYSIN=p1 PHYSOUT=p2 MAC=.* SRC=10.0.0.2 DST=10.0.0.3 .*PROTO=ICMP TYPE=8 .*SEQ=1 *$" \
  "$work/daemon.log")" || fail "no LOG line with PHYSIN=p1 PHYSOUT=p2"
grep -q "br$$ .*SRC=10.0.0.3" "$work/daemon.log" && fail "LOG matched B -> A (physdev-in p1 only)"
echo "live bridge: LOG: $nfrs_log"

# HTTP both ways: A -> B passes (its SYN enters by p1), B -> A is dropped (enters by p2).
mkdir -p "$work/www"
echo "hello through br0" >"$work/www/index.html"
live_bg ip netns exec "$S" python3 -m http.server 8080 --bind 10.0.0.3 --directory "$work/www" >/dev/null 2>&1
live_bg ip netns exec "$C" python3 -m http.server 8080 --bind 10.0.0.2 --directory "$work/www" >/dev/null 2>&1
live_wait_tcp "$S" 10.0.0.3 8080
live_wait_tcp "$C" 10.0.0.2 8080
body="$(ip netns exec "$C" curl -s -m 5 http://10.0.0.3:8080/index.html)" || fail "curl A -> B across the bridge"
[ "$body" = "hello through br0" ] || fail "curl A -> B: got '$body'"
"$nfrs" conntrack -L -p tcp --dport 8080 2>/dev/null | grep -q "src=10.0.0.2 dst=10.0.0.3 .*dport=8080 .*src=10.0.0.3 dst=10.0.0.2" \
  || fail "conntrack -L does not show the bridged connection"
echo "live bridge: curl A -> B ok, tracked"
if ip netns exec "$S" curl -s -m 2 http://10.0.0.2:8080/index.html >/dev/null; then
  fail "curl B -> A passed the physdev DROP"
fi
line="$("$nfrs" iptables-save -c | grep -- "--physdev-in p2 -m tcp --dport 8080 -j DROP")" \
  || fail "the DROP rule is not listed"
pk="$(echo "$line" | sed -n 's/^\[\([0-9]*\):.*/\1/p')"
[ "${pk:-0}" -ge 1 ] || fail "the DROP rule did not count: $line"
echo "live bridge: physdev DROP blocks B -> A ($line)"
# REJECT with tcp-reset in bridged FORWARD: the reset goes back out of p2 from A's MAC to B's
# (A listens on 8080, so "refused" can only come from the rule).
"$nfrs" iptables -I FORWARD -m physdev --physdev-in p2 -p tcp --dport 8080 -j REJECT --reject-with tcp-reset \
  || fail "iptables -I REJECT"
rc=0
ip netns exec "$S" curl -s -m 3 http://10.0.0.2:8080/index.html >/dev/null || rc=$?
[ "$rc" = 7 ] || fail "curl B -> A under REJECT: exit $rc, not 7 (connection refused)"
"$nfrs" iptables -D FORWARD -m physdev --physdev-in p2 -p tcp --dport 8080 -j REJECT --reject-with tcp-reset \
  || fail "iptables -D REJECT"
echo "live bridge: REJECT --reject-with tcp-reset refuses B -> A"
# nfrs check: what a bridged SYN would meet now, by the port it enters.
amac="$(ip netns exec "$C" cat /sys/class/net/a0/address)"
bmac="$(ip netns exec "$S" cat /sys/class/net/b0/address)"
"$nfrs" check p2 tcp 10.0.0.3:40000 '>' 10.0.0.2:8080 flags=S dmac="$amac" >"$work/check.txt" \
  || fail "nfrs check p2"
grep -q "verdict: dropped (dropped by filter/FORWARD rule 4)" "$work/check.txt" \
  || { cat "$work/check.txt"; fail "nfrs check: B -> A SYN not dropped by rule 4"; }
"$nfrs" check p1 tcp 10.0.0.2:40000 '>' 10.0.0.3:8080 flags=S dmac="$bmac" >"$work/check.txt" \
  || fail "nfrs check p1"
grep -q "verdict: forwarded out p2" "$work/check.txt" \
  || { cat "$work/check.txt"; fail "nfrs check: A -> B SYN not bridged out of p2"; }
echo "live bridge: nfrs check agrees"
# bridge-nf-call-iptables=0: bridged IPv4 no longer meets iptables, so B -> A passes.
[ "$("$nfrs" sysctl -n net.bridge.bridge-nf-call-iptables)" = 1 ] || fail "bridge-nf-call-iptables is not 1"
"$nfrs" sysctl -w net.bridge.bridge-nf-call-iptables=0 >/dev/null || fail "sysctl -w bridge-nf-call-iptables=0"
ip netns exec "$S" curl -s -m 5 http://10.0.0.2:8080/index.html >/dev/null \
  || fail "curl B -> A blocked with bridge-nf-call-iptables=0"
"$nfrs" sysctl -w net.bridge.bridge-nf-call-iptables=1 >/dev/null || fail "sysctl -w bridge-nf-call-iptables=1"
echo "live bridge: bridge-nf-call-iptables=0 bridges unfiltered"

live_term
for p in p1 p2; do
  ip netns exec "$G" ip -d link show "$p" | grep -q "promiscuity 0" || fail "$p still promiscuous after nfrs stopped"
done

# The same bridge in the kernel (br_netfilter, bridge-nf-call-iptables=1): its LOG line for
# the same first ping must be nfrs's, IP and ICMP ids aside.
if ip netns exec "$G" ip link add br0 type bridge 2>/dev/null && [ -e /proc/sys/net/bridge ]; then
  ip netns exec "$G" ip link set p1 master br0
  ip netns exec "$G" ip link set p2 master br0
  ip netns exec "$G" ip link set br0 up
  ip netns exec "$G" iptables-legacy -A FORWARD -m physdev --physdev-in p1 --physdev-out p2 -p icmp \
    -j LOG --log-prefix "br$$ "
  ip netns exec "$C" ping -c 1 -W 2 10.0.0.3 >/dev/null || fail "ping A -> B through the kernel bridge"
  kern_log=""
  for _ in $(seq 20); do
    kern_log="$(timeout 0.5 cat /dev/kmsg 2>/dev/null | grep -o "br$$ IN=.*" | tail -1 || true)"
    [ -n "$kern_log" ] && break
    sleep 0.1
  done
  [ -n "$kern_log" ] || fail "no kernel LOG line in /dev/kmsg"
  mask() { echo "$1" | sed -E 's/ID=[0-9]+/ID=*/g; s/ +$//'; }
  [ "$(mask "$nfrs_log")" = "$(mask "$kern_log")" ] \
    || fail "LOG lines differ: nfrs '$nfrs_log' kernel '$kern_log'"
  echo "live bridge: the kernel bridge logs the same line"
else
  echo "live bridge: no kernel bridge here, LOG line not compared"
fi
echo "$live_name: ok ($(($(date +%s) - live_started)) s)"
