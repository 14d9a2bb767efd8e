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
#   live_stop                       live_term, then prints "NAME: ok (N s)"
#   fail MSG                        prints MSG, the files named in $live_logs, exits 1
#
# Pieces the scripts with their own set-up and clean-up (routed, faults, flood) share too:
#   live_root NAME                  prints "NAME: skipped (not root)" and exits 0 unless root
#   live_tools NAME TOOL...         prints "NAME: FAIL: TOOL missing" and exits 1 for a missing one
#   live_build [path/to/nfrs]       sets $nfrs (absolute), building it unless given
#   live_namespaces                 $C $G $S: loopback up, IPv6 off
#   live_veth NS IF GWIF            veth NS:IF -- $G:GWIF, offloads off, both up, arp off on GWIF
#   live_gw_toml [SYSCTL [LIVE]]    prints the routed gateway's host file (lan0, wan0, forwarding
#                                   on), extra lines SYSCTL in [sysctl] and LIVE in [live]
#   live_daemon STORE HOST [ARG...] starts `nfrs run` in $G, output appended to $work/daemon.log;
#                                   sets $daemon_pid
#   live_wait_socket STORE          waits (5 s) for STORE/control.sock
#   live_wait_ready                 waits (10 s) until the daemon started last printed its banner
#                                   and answers `iptables -S`; fails if it exits
#   live_term                       SIGTERM to the daemon, fails unless it exits 0
#   live_tcp_py FILE                writes a python TCP tool to FILE: `server` (echo on
#                                   198.51.100.10:9000), `hold K GOFILE` (K connections, a round
#                                   trip each, "ready", another once GOFILE exists, "ok"),
#                                   `stream STOPFILE` (1 KiB round trips every 10 ms until
#                                   STOPFILE exists, then "done N SLOWEST"); more modes may be
#                                   appended as `elif mode == ...:`
#   live_rss                        the daemon's resident memory (KiB, VmRSS)
#   live_names L                    sets $C $G $S (namespaces nfrsL<pid>-c/g/s) and $work
#   live_tcp_traffic K MSG          with $work/tcp.py (live_tcp_py): the echo server in $S, then
#                                   from $C K held connections (fails with MSG unless all are up;
#                                   $hold_pid) and a stream ($stream_pid); all added to $bg_pids

live_init() {
  live_name="$1"
  live_root "$live_name"
  live_build "${3:-}"
  live_names "$2"
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

live_names() {
  local tag="nfrs$1$$"
  C="$tag-c" G="$tag-g" S="$tag-s"
  work="$(mktemp -d)"
}

live_tcp_traffic() {
  ip netns exec "$S" python3 "$work/tcp.py" server >/dev/null 2>&1 &
  bg_pids+=($!)
  live_wait_tcp "$S" 198.51.100.10 9000
  ip netns exec "$C" python3 "$work/tcp.py" hold "$1" "$work/go" >"$work/hold.out" 2>&1 &
  hold_pid=$!
  bg_pids+=($hold_pid)
  for _ in $(seq 200); do grep -qs ready "$work/hold.out" && break; sleep 0.05; done
  grep -qs ready "$work/hold.out" || { cat "$work/hold.out"; fail "$2"; }
  ip netns exec "$C" python3 "$work/tcp.py" stream "$work/stop" >"$work/stream.out" 2>&1 &
  stream_pid=$!
  bg_pids+=($stream_pid)
  for _ in $(seq 100); do grep -qs streaming "$work/stream.out" && break; sleep 0.05; done
}

live_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "$1: skipped (not root)"
    exit 0
  fi
}

live_tools() {
  local name="$1" t
  shift
  for t in "$@"; do
    command -v "$t" >/dev/null || { echo "$name: FAIL: $t missing"; exit 1; }
  done
}

live_build() {
  nfrs="${1:-}"
  if [ -z "$nfrs" ]; then
    cargo build --release -q -p nfrs-cli
    nfrs="${CARGO_TARGET_DIR:-target}/release/nfrs"
  fi
  nfrs="$(realpath "$nfrs")"
}

live_namespaces() {
  local n
  for n in "$C" "$G" "$S"; do
    ip netns add "$n"
    ip netns exec "$n" ip link set lo up
    ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  done
}

live_veth() {
  ip link add "$2" netns "$1" type veth peer name "$3" netns "$G"
  # AF_PACKET needs whole frames with real checksums: no offloads on the veths.
  ip netns exec "$1" ethtool -K "$2" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
  ip netns exec "$G" ethtool -K "$3" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
  ip netns exec "$1" ip link set "$2" up
  ip netns exec "$G" ip link set "$3" up
  ip netns exec "$G" ip link set "$3" arp off
}

live_topology() {
  live_namespaces
  live_veth "$C" c0 lan0
  live_veth "$S" s0 wan0
  ip netns exec "$G" sysctl -qw net.ipv4.ip_forward=0
  ip netns exec "$C" ip addr add 10.0.1.2/24 dev c0
  ip netns exec "$C" ip route add default via 10.0.1.1
  ip netns exec "$S" ip addr add 198.51.100.10/24 dev s0
}

live_gw_toml() {
  printf '[[interface]]\nname = "lan0"\naddress = "10.0.1.1/24"\n\n'
  printf '[[interface]]\nname = "wan0"\naddress = "198.51.100.2/24"\n\n'
  printf '[sysctl]\n"net.ipv4.ip_forward" = "1"\n'
  [ -n "${1:-}" ] && printf '%s\n' "$1"
  printf '\n[live]\nmode = "routed"\n'
  [ -n "${2:-}" ] && printf '%s\n' "$2"
  return 0
}

live_daemon() {
  local st="$1" host="$2"
  shift 2
  live_banners=$(grep -c "mode; control socket" "$work/daemon.log" 2>/dev/null || true)
  ip netns exec "$G" "$nfrs" run --store "$st" --host "$host" "$@" >>"$work/daemon.log" 2>&1 &
  daemon_pid=$!
}

live_wait_socket() {
  for _ in $(seq 50); do
    [ -S "$1/control.sock" ] && return 0
    sleep 0.1
  done
  fail "control socket did not appear"
}

live_wait_ready() {
  # Ready once it has printed its banner (after binding the socket) and answers.
  for _ in $(seq 200); do
    if [ "$(grep -c "mode; control socket" "$work/daemon.log")" -gt "${live_banners:-0}" ] \
      && "$nfrs" iptables -S INPUT >/dev/null 2>&1; then
      return 0
    fi
    kill -0 "$daemon_pid" 2>/dev/null || fail "nfrs run exited at start"
    sleep 0.05
  done
  fail "the daemon did not answer"
}

live_term() {
  kill -TERM "$daemon_pid"
  wait "$daemon_pid" || fail "nfrs run exited non-zero on SIGTERM"
  daemon_pid=""
}

live_rss() { awk '/^VmRSS:/ {print $2}' "/proc/$daemon_pid/status"; }

live_tcp_py() {
  cat >"$1" <<'PY'
import os, socket, sys, threading, time
mode = sys.argv[1]
if mode == "server":
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("198.51.100.10", 9000))
    s.listen(256)
    def echo(c):
        while True:
            d = c.recv(65536)
            if not d:
                break
            c.sendall(d)
        c.close()
    while True:
        c, _ = s.accept()
        threading.Thread(target=echo, args=(c,), daemon=True).start()

def rtt(c, n):
    msg = os.urandom(n)
    c.sendall(msg)
    got = b""
    while len(got) < n:
        d = c.recv(n - len(got))
        if not d:
            raise SystemExit("connection closed")
        got += d
    if got != msg:
        raise SystemExit("echo differs")

if mode == "hold":
    k, go = int(sys.argv[2]), sys.argv[3]
    conns = [socket.create_connection(("198.51.100.10", 9000), timeout=5) for _ in range(k)]
    for c in conns:
        rtt(c, 100)
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.05)
    for c in conns:
        c.settimeout(5)
        rtt(c, 100)
    print("ok", flush=True)
elif mode == "stream":
    # Any reset or timeout (3 s) ends it with an error.
    stop = sys.argv[2]
    c = socket.create_connection(("198.51.100.10", 9000), timeout=3)
    n, worst = 0, 0.0
    print("streaming", flush=True)
    while not os.path.exists(stop):
        t = time.monotonic()
        rtt(c, 1024)
        worst = max(worst, time.monotonic() - t)
        n += 1
        time.sleep(0.01)
    print(f"done {n} {worst:.3f}", flush=True)
PY
}

live_start() {
  live_gw_toml >"$work/gw.toml"
  live_daemon "$store" "$work/gw.toml"
  live_wait_socket "$store"
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
  live_term
  echo "$live_name: ok ($(($(date +%s) - live_started)) s)"
}
