set -e
P=ctk$$
C=${P}c; R=${P}r; S=${P}s
echo $C $R $S > ${LAB:-/tmp/ctlab}/names
for n in $C $R $S; do ip netns add $n; ip netns exec $n sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; ip -n $n link set lo up; done
ip link add c0 netns $C type veth peer name r0 netns $R
ip link add s0 netns $S type veth peer name r1 netns $R
ip -n $C addr add 10.0.0.2/24 dev c0
for i in $(seq 3 20); do ip -n $C addr add 10.0.0.$i/24 dev c0; done
ip -n $R addr add 10.0.0.1/24 dev r0
ip -n $R addr add 198.51.100.254/24 dev r1
ip -n $S addr add 198.51.100.1/24 dev s0
for i in $(seq 2 9); do ip -n $S addr add 198.51.100.$i/24 dev s0; done
# server also answers for SNAT range

for n in $C $R $S; do for d in $(ip -n $n -o link | awk -F': ' '{print $2}' | cut -d@ -f1); do ip -n $n link set $d up; done; done
ip -n $C route add default via 10.0.0.1
ip netns exec $R sysctl -qw net.ipv4.ip_forward=1
ip -n $S route add 192.0.2.0/24 via 198.51.100.254
