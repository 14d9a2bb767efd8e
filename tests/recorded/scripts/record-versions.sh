#!/bin/bash
# Write ../versions.txt: the exact tool and kernel versions the recordings were made with.
set -u
OUT="$(cd "$(dirname "$0")/.." && pwd)/versions.txt"
{
    echo "iptables-legacy --version: $(iptables-legacy --version)"
    echo "iptables-legacy-save --version: $(iptables-legacy-save --version)"
    echo "iptables-legacy-restore --version: $(iptables-legacy-restore --version)"
    echo "uname -r: $(uname -r)"
    dpkg-query -W -f='dpkg ${Package} ${Version}\n' iptables netbase libxtables12 2>/dev/null
    echo "os: $(. /etc/os-release && echo "$PRETTY_NAME")"
} > "$OUT"
cat "$OUT"
