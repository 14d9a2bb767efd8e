#!/bin/bash
# Record what iptables-legacy 1.8.9 prints for every IPv4 ruleset of the shared corpus.
# Output: ../rulesets/<name>/... and ../rulesets/index.tsv (see ../README.md).
source "$(dirname "$0")/lib.sh"
OUT="$REC_ROOT/rulesets"
rm -rf "$OUT"; mkdir -p "$OUT"
INDEX="$OUT/index.tsv"
printf 'name\tcorpus_path\tprelude\tflags\trestore_rc\n' > "$INDEX"

# record <name> <corpus-relative path or "-"> <input file> <prelude file or ""> <extra flags>
record() {
    local name="$1" src="$2" input="$3" prelude="$4" extra="$5"
    local d="$OUT/$name" flags rc t
    rm -rf "$d"; mkdir -p "$d"
    cp "$input" "$d/input.rules"
    flags="$extra"
    # Counters: only when a [packets:bytes] with a non-zero value is present.
    if grep -Eq '\[[0-9]*[1-9][0-9]*:[0-9]+\]|\[[0-9]+:[0-9]*[1-9][0-9]*\]' "$input"; then
        flags="${flags:+$flags }-c"
    fi
    printf '%s\n' "$flags" > "$d/flags"
    ns_new
    if [ -n "$prelude" ]; then
        cp "$prelude" "$d/prelude.rules"
        inns iptables-legacy-restore < "$prelude" || echo "prelude failed for $name" >&2
    fi
    # shellcheck disable=SC2086
    inns iptables-legacy-restore $flags < "$d/input.rules" > "$d/restore.out" 2> "$d/restore.err"
    rc=$?
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$src" "${prelude:+prelude.rules}" "$flags" "$rc" >> "$INDEX"
    if [ "$rc" -ne 0 ]; then
        echo "$rc" > "$d/restore.rc"
        [ -s "$d/restore.out" ] || rm -f "$d/restore.out"
        ns_del
        return
    fi
    rm -f "$d/restore.err" "$d/restore.out"
    inns iptables-legacy-save | strip_stamps > "$d/save.txt"
    inns iptables-legacy-save -c | strip_stamps > "$d/save-c.txt"
    inns cat /proc/net/ip_tables_names > "$d/ip_tables_names.txt"
    for t in $(sed -n 's/^\*\([a-z]*\).*/\1/p' "$d/input.rules" | awk '!seen[$0]++'); do
        inns iptables-legacy -t "$t" -S > "$d/$t.S.txt"
        inns iptables-legacy -t "$t" -L -n > "$d/$t.L-n.txt"
        inns iptables-legacy -t "$t" -L -n -v > "$d/$t.L-nv.txt"
        inns iptables-legacy -t "$t" -L -n -v -x --line-numbers > "$d/$t.L-nvx-lines.txt"
    done
    ns_del
}

# docker-moby golden files (IPv4 only)
for f in "$CORPUS"/rulesets/docker-moby/iptabler-golden/*__iptables.golden; do
    b="$(basename "$f" __iptables.golden)"
    name="docker-$(printf '%s' "$b" | tr '=,' '-_')"
    record "$name" "${f#"$CORPUS"/}" "$f" "" ""
done

# kube-proxy
for f in "$CORPUS"/rulesets/kube-proxy/*.rules; do
    name="kube-$(basename "$f" .rules)"
    record "$name" "${f#"$CORPUS"/}" "$f" "" ""
done

# Variants of kube-proxy inputs that the real tool refuses as-is (documented in README.md):
# - without the nfacct matches (their accounting objects do not exist in a fresh namespace);
# - with the unquoted multi-word comments put in double quotes.
KP="$CORPUS/rulesets/kube-proxy"
VT="$(mktemp -d)"
sed 's/ -m nfacct --nfacct-name [^ ]*//' "$KP/TestOverallIPTablesRules.expected.rules" > "$VT/overall"
record "kube-TestOverallIPTablesRules.expected.no-nfacct" \
    "rulesets/kube-proxy/TestOverallIPTablesRules.expected.rules" "$VT/overall" "" ""
sed -E 's/--comment ([^-" ][^ ]*( [^- ][^ ]*)+) -/--comment "\1" -/' "$KP/TestTracePacket.rules" > "$VT/trace"
record "kube-TestTracePacket.quoted" "rulesets/kube-proxy/TestTracePacket.rules" "$VT/trace" "" ""
rm -rf "$VT"

# ufw: each file alone as-is (these fail: they jump to chains ufw makes elsewhere),
# then each file with a prelude declaring the chains it needs, restored with --noflush,
# then before+user+after together the way ufw stacks them.
TMP="$(mktemp -d)"
trap 'ns_cleanup_all; rm -rf "$TMP"' EXIT
U="$CORPUS/rulesets/ufw-conf"
for b in before after user; do
    record "ufw-$b-alone" "rulesets/ufw-conf/$b.rules" "$U/$b.rules" "" ""
done
# Chains referenced by -j but declared in none of the three files: these ufw makes itself.
cat > "$TMP/prelude-all" <<'P'
*filter
:ufw-logging-deny - [0:0]
:ufw-skip-to-policy-input - [0:0]
COMMIT
P
printf '*filter\n:ufw-logging-deny - [0:0]\nCOMMIT\n' > "$TMP/prelude-before"
printf '*filter\n:ufw-skip-to-policy-input - [0:0]\nCOMMIT\n' > "$TMP/prelude-after"
record "ufw-before" "rulesets/ufw-conf/before.rules" "$U/before.rules" "$TMP/prelude-before" "--noflush"
record "ufw-after" "rulesets/ufw-conf/after.rules" "$U/after.rules" "$TMP/prelude-after" "--noflush"
record "ufw-user" "rulesets/ufw-conf/user.rules" "$U/user.rules" "" ""
cat "$U/before.rules" "$U/user.rules" "$U/after.rules" > "$TMP/combined"
record "ufw-before+user+after" "rulesets/ufw-conf/before.rules+user.rules+after.rules" "$TMP/combined" "$TMP/prelude-all" "--noflush"
echo "recorded $(($(wc -l < "$INDEX") - 1)) rulesets into $OUT"
