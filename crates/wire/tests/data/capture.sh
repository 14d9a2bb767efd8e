#!/bin/sh
# Records tests/data/kernel-answers.txt from the running kernel (root; iproute2, iptables-legacy,
# ethtool, python3). Usage: sh capture.sh <packets file> > kernel-answers.txt
set -eu
here=$(cd "$(dirname "$0")" && pwd)
p="wcap$$"
dut="$p-dut"; wire="$p-wire"
cleanup() { ip netns del "$dut" 2>/dev/null || true; ip netns del "$wire" 2>/dev/null || true; }
trap cleanup EXIT
ip netns add "$dut"; ip netns add "$wire"
for ns in "$dut" "$wire"; do
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
ip link add lan0 netns "$dut" address 02:00:00:00:00:01 type veth peer name wlan netns "$wire" address 02:00:00:00:01:01
ip link add wan0 netns "$dut" address 02:00:00:00:00:02 type veth peer name wwan netns "$wire" address 02:00:00:00:01:02
D="ip netns exec $dut"; W="ip netns exec $wire"
$D sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
  net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0 net.ipv4.icmp_ratemask=0
$D ip addr add 10.0.0.1/24 dev lan0
$D ip addr add 192.0.2.1/24 dev wan0
for i in lan0 wan0; do $D ethtool -K $i rx off tx off sg off tso off gso off gro off >/dev/null 2>&1 || true; $D ip link set $i up; done
$D ip link set lo up
$D ip link set wan0 mtu 1400; $W ip link set wwan mtu 1400
$D ip route add default via 192.0.2.254 dev wan0
$D ip neigh replace 10.0.0.2 lladdr 02:00:00:00:01:01 dev lan0 nud permanent
$D ip neigh replace 192.0.2.254 lladdr 02:00:00:00:01:02 dev wan0 nud permanent
for i in wlan wwan; do $W ip link set $i arp off; $W ip link set $i up; done
$D iptables-legacy -w -A INPUT -p tcp --dport 23 -j REJECT --reject-with tcp-reset
$D iptables-legacy -w -A INPUT -p udp --dport 69 -j REJECT
$D iptables-legacy -w -A INPUT -p udp --dport 70 -j REJECT --reject-with icmp-host-prohibited
$D iptables-legacy -w -A FORWARD -p udp --dport 71 -j REJECT --reject-with icmp-net-unreachable
$D iptables-legacy -w -A FORWARD -p tcp --dport 24 -j REJECT --reject-with tcp-reset
sleep 1
cargo run -q -p nfrs-wire --example frames < "$1" | $W python3 "$here/capture.py"
