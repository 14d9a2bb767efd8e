# Shared by the live tests (source it): the client -- gw -- server topology of namespaces with
# `nfrs run` owning the gateway's two interfaces (no kernel address, arp off, kernel forwarding
# off, so only nfrs answers), process and namespace clean-up on exit, and failure reporting.
#
#   live_init NAME L [path/to/nfrs] root check (prints "NAME: skipped" and exits 0 otherwise),
#                                   builds nfrs unless given; sets $nfrs, $C $G $S (namespaces
#                                   named nfrsL<pid>-c/g/s), $work (a temp dir) and $store
#   live_topology                   client 10.0.1.2/24 (default via 10.0.1.1) -- gw lan0/wan0 --
#                                   server 198.51.100.10/24 (no route back to 10.0.1.0/24)
#   live_start                      writes $work/gw.toml, starts the daemon, waits for its socket
#   live_bg CMD...                  runs CMD in the background, killed on exit; $! is its pid
#   live_wait_tcp NS ADDR PORT      waits (5 s) until ADDR:PORT accepts in namespace NS
#   live_helper_firewall H PORT    loads (through the daemon) MASQUERADE on wan0 and a FORWARD
#                                   chain that admits new connections only from lan0 to PORT
#                                   or RELATED with helper H (`-m helper --helper H`)
#   live_stop                       SIGTERM to the daemon, fails unless it exits 0
#   fail MSG                        prints MSG, the files named in $live_logs, exits 1

live_init() {
  live_name="$1"
  local tag="nfrs$2$$"
  if [ "$(id -u)" != 0 ]; then
    echo "$live_name: skipped (not root)"
    exit 0
  fi
  nfrs="${3:-}"
  if [ -z "$nfrs" ]; then
    cargo build --release -q -p nfrs-cli
    nfrs="${CARGO_TARGET_DIR:-target}/release/nfrs"
  fi
  nfrs="$(realpath "$nfrs")"
  C="$tag-c" G="$tag-g" S="$tag-s"
  work="$(mktemp -d)"
  store="$work/store"
  live_pids=()
  daemon_pid=""
  live_logs="${live_logs:-daemon.log}"
  live_started=$(date +%s)
  export NFRS_STORE="$store"
  trap live_cleanup EXIT
}

live_cleanup() {
  set +e
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  for p in "${live_pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  # Whatever still runs in the namespaces was started here (e.g. a server's session processes).
  for n in "$C" "$G" "$S"; do
    for p in $(ip netns pids "$n" 2>/dev/null); do kill "$p" 2>/dev/null; done
    ip netns del "$n" 2>/dev/null
  done
  rm -rf "$work"
}

fail() {
  echo "$live_name: FAIL: $*"
  for f in $live_logs; do
    echo "--- $f:"
    cat "$work/$f" 2>/dev/null
  done
  exit 1
}

live_topology() {
  for n in "$C" "$G" "$S"; do
    ip netns add "$n"
    ip netns exec "$n" ip link set lo up
    ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  done
  ip link add c0 netns "$C" type veth peer name lan0 netns "$G"
  ip link add s0 netns "$S" type veth peer name wan0 netns "$G"
  # AF_PACKET needs whole frames with real checksums: no offloads on the veths.
  for pair in "$C c0" "$G lan0" "$G wan0" "$S s0"; do
    set -- $pair
    ip netns exec "$1" ethtool -K "$2" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
    ip netns exec "$1" ip link set "$2" up
  done
  ip netns exec "$G" ip link set lan0 arp off
  ip netns exec "$G" ip link set wan0 arp off
  ip netns exec "$G" sysctl -qw net.ipv4.ip_forward=0
  ip netns exec "$C" ip addr add 10.0.1.2/24 dev c0
  ip netns exec "$C" ip route add default via 10.0.1.1
  ip netns exec "$S" ip addr add 198.51.100.10/24 dev s0
}

live_start() {
  cat >"$work/gw.toml" <<'TOML'
[[interface]]
name = "lan0"
address = "10.0.1.1/24"

[[interface]]
name = "wan0"
address = "198.51.100.2/24"

[sysctl]
"net.ipv4.ip_forward" = "1"

[live]
mode = "routed"
TOML
  ip netns exec "$G" "$nfrs" run --store "$store" --host "$work/gw.toml" >"$work/daemon.log" 2>&1 &
  daemon_pid=$!
  for _ in $(seq 50); do
    [ -S "$store/control.sock" ] && return 0
    sleep 0.1
  done
  fail "control socket did not appear"
}

live_bg() {
  "$@" &
  live_pids+=($!)
}

live_wait_tcp() {
  for _ in $(seq 50); do
    ip netns exec "$1" bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null && return 0
    sleep 0.1
  done
  fail "nothing listens on $2:$3 in $1"
}

live_helper_firewall() {
  "$nfrs" iptables-restore <<RULES || fail "iptables-restore via the daemon"
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -o wan0 -j MASQUERADE
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate ESTABLISHED -j ACCEPT
-A FORWARD -m conntrack --ctstate RELATED -m helper --helper $1 -j ACCEPT
-A FORWARD -i lan0 -o wan0 -p tcp --dport $2 -m conntrack --ctstate NEW -j ACCEPT
COMMIT
RULES
}

live_stop() {
  kill -TERM "$daemon_pid"
  wait "$daemon_pid" || fail "nfrs run exited non-zero on SIGTERM"
  daemon_pid=""
  echo "$live_name: ok ($(($(date +%s) - live_started)) s)"
}
