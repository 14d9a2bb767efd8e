//! Smoke run of `nfrs bench --quick --no-kernel`: checks the output's shape (figure names,
//! units, numbers that parse, anchors n/a with the reason), never the timings.

use nfrs_bench::run_cli;

fn run(args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_cli(&args, &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

/// Figure names and units of the quick run, in table order.
const FIGURES: [(&str, &str); 27] = [
    ("ruleset restore, 1k rules", "ms"),
    ("ruleset save, 1k rules", "ms"),
    ("ruleset rule append (-A), 1k rules loaded", "us"),
    ("ACL restore, 500 rules", "ms"),
    ("ACL save, 500 rules", "ms"),
    ("ACL rule append (-A), 500 rules loaded", "us"),
    ("conntrack bytes per entry, 10k NATed flows", "B"),
    ("conntrack new entries, 10k flows (no rules)", "M/s"),
    ("conntrack established lookups, 10k flows", "M/s"),
    (
        "established-flow pps, MASQUERADE gateway, 200 flows",
        "Mpps",
    ),
    ("new connections/s, MASQUERADE gateway, 200 flows", "M/s"),
    (
        "established-flow pps, MASQUERADE gateway, 200 flows, batches of 32",
        "Mpps",
    ),
    ("established-flow pps, MASQUERADE gateway, 1k flows", "Mpps"),
    (
        "established-flow pps, MASQUERADE gateway, 1k flows, one by one",
        "Mpps",
    ),
    (
        "established-flow pps, 500 unmatched FORWARD rules first, 100 flows",
        "Mpps",
    ),
    ("per-packet cost, 500 vs 10 unmatched FORWARD rules", "x"),
    (
        "per-packet cost, 500 vs 10 unmatched FORWARD rules, linear walk",
        "x",
    ),
    ("classifier pps, ClassBench ACL 500 rules", "Mpps"),
    ("per-packet cost, ClassBench ACL 500 vs 10 rules", "x"),
    (
        "classifier pps, ClassBench ACL 500 rules, linear walk",
        "Mpps",
    ),
    (
        "per-packet cost, ClassBench ACL 500 vs 10 rules, linear walk",
        "x",
    ),
    ("new connections/s, kube-proxy 100 services", "M/s"),
    ("per-connection cost, kube-proxy 100 vs 10 services", "x"),
    (
        "per-connection cost, kube-proxy 100 vs 10 services, linear walk",
        "x",
    ),
    (
        "established-flow pps, MASQUERADE gateway, 1 worker thread, 200 flows",
        "Mpps",
    ),
    (
        "established-flow pps, MASQUERADE gateway, 2 flow-sharded worker threads, 200 flows",
        "Mpps",
    ),
    ("multi-core scaling, 2 vs 1 worker threads, 200 flows", "x"),
];

/// Rows whose value a quick run may leave unmeasured (`n/a`): the shard group's CPU-time
/// scaling, when the threads' CPU times are too short to divide.
fn may_be_na(name: &str) -> bool {
    name.starts_with("multi-core scaling from thread CPU time, ")
}

/// Values must be finite numbers; times and rates positive. Bytes per entry come from RSS
/// growth, which other tests running in parallel can disturb, so only >= 0 is required.
fn plausible(value: f64, unit: &str) -> bool {
    value.is_finite()
        && if unit == "B" {
            value >= 0.0
        } else {
            value > 0.0
        }
}

/// The lab's rows (root only, both sides or none): `n/a` under `--quick` and `--no-kernel`.
fn is_lab(name: &str) -> bool {
    name.starts_with("forwarded pps, netns lab, ")
        || name.starts_with("forwarded packets per forwarder CPU-second, netns lab, ")
        || name.starts_with("new connections/s, netns lab, ")
}

#[test]
fn test_quick_json_shape() {
    let (code, out, err) = run(&["--quick", "--no-kernel", "--json", "--runs", "1"]);
    assert_eq!(code, 0, "stderr: {err}");
    let name = |l: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        v["name"].as_str().unwrap().to_string()
    };
    let (lab, lines): (Vec<&str>, Vec<&str>) = out
        .lines()
        .filter(|l| !may_be_na(&name(l)))
        .partition(|l| is_lab(&name(l)));
    assert_eq!(lines.len(), FIGURES.len(), "{out}");
    assert_eq!(lab.len(), 10, "{out}");
    for line in lab {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["value"].is_null() && v["ratio"].is_null(), "{line}");
        assert_eq!(v["anchor"], "n/a", "{line}");
        assert!(
            v["unit"] == "Mpps" || v["unit"] == "Mpps/CPU" || v["unit"] == "M/s",
            "{line}"
        );
    }
    assert!(err.contains("lab n/a: skipped by --quick"), "{err}");
    for (line, (name, unit)) in lines.iter().zip(FIGURES) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let o = v.as_object().unwrap();
        assert_eq!(o.len(), 6, "{line}");
        assert_eq!(o["name"], name, "{line}");
        assert_eq!(o["unit"], unit, "{line}");
        let value = o["value"].as_f64().expect("value is a number");
        assert!(plausible(value, unit), "{line}");
        assert_eq!(o["anchor"], "n/a");
        assert!(
            o["anchor_value"].is_null() && o["ratio"].is_null(),
            "{line}"
        );
    }
    assert!(err.starts_with("nfrs bench — machine: "), "{err}");
    assert!(err.contains("anchor n/a: kernel anchor not requested (--no-kernel)"));
}

#[test]
fn test_quick_table_shape() {
    let (code, out, err) = run(&["--quick", "--no-kernel", "--runs", "1"]);
    assert_eq!(code, 0, "stderr: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("nfrs bench — machine: "), "{out}");
    assert!(lines[0].contains(" cores, Linux "), "{}", lines[0]);
    assert!(lines[1].starts_with("workload: kube-proxy shape, 100 services: "));
    let header = lines.iter().position(|l| l.starts_with("figure")).unwrap();
    let rows: Vec<&str> = lines[header + 1..]
        .iter()
        .copied()
        .take_while(|l| !l.starts_with("(ratio: "))
        .filter(|l| !is_lab(l) && !may_be_na(l))
        .collect();
    assert_eq!(rows.len(), FIGURES.len(), "{out}");
    for (row, (name, unit)) in rows.iter().zip(FIGURES) {
        let rest = row.strip_prefix(name).unwrap_or_else(|| panic!("{row}"));
        let cells: Vec<&str> = rest.split_whitespace().collect();
        // value unit anchor anchor-value ratio method...
        let value: f64 = cells[0].parse().unwrap_or_else(|_| panic!("{row}"));
        assert!(plausible(value, unit), "{row}");
        assert_eq!(cells[1], unit, "{row}");
        assert_eq!(&cells[2..5], ["n/a", "n/a", "n/a"], "{row}");
        assert!(rest.ends_with("median of 1"), "{row}");
    }
    let na = lines.iter().filter(|l| may_be_na(l)).count();
    assert!(lines[header + 1 + FIGURES.len() + 10 + na].starts_with("(ratio: "));
    for l in lines.iter().filter(|l| is_lab(l)) {
        let c: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(
            c[c.len() - 6..],
            ["n/a", "n/a", "n/a", "n/a", "not", "measured"],
            "{l}"
        );
    }
    // The lab carries the gateway figures' kernel anchors (existing flows, new connections).
    assert!(!out.contains("pending: kernel anchors"), "{out}");
    assert!(!out.contains("WARNING"), "{out}");
    // The kube group measures (statistic random replayed as nth).
    assert!(
        !out.contains("pending: new connections/s through the kube-proxy ruleset"),
        "{out}"
    );
}

#[test]
fn test_only_and_bad_args() {
    let (code, out, _) = run(&[
        "--quick",
        "--no-kernel",
        "--json",
        "--only",
        "acl",
        "--runs",
        "1",
    ]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 3);
    assert!(out.lines().all(|l| l.contains("\"ACL ")));
    let (code, _, err) = run(&["--only", "nothing-like-this"]);
    assert_eq!(code, 2);
    assert!(err.contains("no figure group matches"), "{err}");
    let (code, _, err) = run(&["--bogus"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown option `--bogus`"), "{err}");
    let (code, _, err) = run(&["--runs", "0"]);
    assert_eq!(code, 2);
    assert!(err.contains("--runs needs a positive number"), "{err}");
}

#[test]
fn test_emit_is_restore_input() {
    let (code, out, _) = run(&["--emit", "kube-proxy", "3"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("*filter\n") && out.ends_with("COMMIT\n"));
    assert!(out.contains("*nat\n"));
    let (code, out, _) = run(&["--emit", "acl", "5"]);
    assert_eq!(code, 0);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("-A FORWARD")).count(),
        5
    );
}
