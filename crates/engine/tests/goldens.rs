//! The golden test: every shared example (`../shared/examples/*.toml`), the engine's own
//! scenarios (`crates/engine/tests/scenarios/*.toml`, recorded with `nfrs kernel-run`) and every
//! scenario of the corpus (`tests/scenarios/**/*.toml`) with its recorded kernel result, replayed and
//! compared with nfrs-scenario's comparison. Prints "N/M agree"; fails on any disagreement
//! except the scenarios listed in `known-divergent.txt`, and fails when a listed one agrees
//! (so the list only shrinks).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn shared() -> Option<PathBuf> {
    let p = match std::env::var_os("NFRS_SHARED") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    p.join("examples").is_dir().then_some(p)
}

fn known_divergent() -> BTreeSet<String> {
    let f = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/known-divergent.txt");
    std::fs::read_to_string(f)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Replays one case; Err(report) when it disagrees with its golden.
fn check(toml: &Path, golden: &Path) -> Result<(), String> {
    let sc = nfrs_scenario::load(toml).map_err(|e| e.to_string())?;
    let expected = std::fs::read_to_string(golden).map_err(|e| format!("golden: {e}"))?;
    let rep = nfrs_engine::replay::run(&sc, false)?;
    nfrs_scenario::compare_text(&expected, &rep.result.to_text()).map_err(|m| m.report)
}

/// The shared examples are the first acceptance test: byte for byte, not just equivalent.
#[test]
fn shared_examples_byte_for_byte() {
    let Some(s) = shared() else {
        println!("skipped: ../shared/examples absent");
        return;
    };
    for name in ["host-answers", "nat-gateway", "port-clash"] {
        let toml = s.join(format!("examples/{name}.toml"));
        let sc = nfrs_scenario::load(&toml).unwrap();
        let want = std::fs::read_to_string(s.join(format!("examples/{name}.kernel.txt"))).unwrap();
        let got = nfrs_engine::replay::run(&sc, false)
            .unwrap()
            .result
            .to_text();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn replay_agrees_with_the_kernel() {
    let mut cases: Vec<(String, PathBuf, PathBuf)> = Vec::new();
    match shared() {
        Some(s) => {
            let mut ex: Vec<PathBuf> = std::fs::read_dir(s.join("examples"))
                .unwrap()
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect();
            ex.sort();
            for t in ex {
                let name = format!(
                    "shared/examples/{}",
                    t.file_name().unwrap().to_string_lossy()
                );
                let g = nfrs_scenario::file::golden_path_for(&t);
                cases.push((name, t, g));
            }
        }
        None => println!("skipped: ../shared/examples absent"),
    }
    // The README's bundled examples (recorded with `nfrs kernel-run` on Linux 6.18).
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for c in nfrs_scenario::corpus::golden_cases(&bundled).unwrap() {
        if c.golden.exists() {
            cases.push((format!("examples/{}", c.name(&bundled)), c.toml, c.golden));
        }
    }
    // The engine's own scenarios (recorded with `nfrs kernel-run` on Linux 6.18).
    let own = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    if own.is_dir() {
        for c in nfrs_scenario::corpus::golden_cases(&own).unwrap() {
            if c.golden.exists() {
                cases.push((format!("engine/{}", c.name(&own)), c.toml, c.golden));
            }
        }
    }
    let dir = nfrs_scenario::corpus::corpus_dir();
    if dir.is_dir() {
        for c in nfrs_scenario::corpus::golden_cases(&dir).unwrap() {
            if c.golden.exists() {
                cases.push((c.name(&dir), c.toml, c.golden));
            }
        }
    }
    let listed = known_divergent();
    let mut agree = 0;
    let mut unexpected = Vec::new();
    let mut fixed = Vec::new();
    for (name, toml, golden) in &cases {
        let r = check(toml, golden);
        let is_listed = listed.contains(name);
        match (&r, is_listed) {
            (Ok(()), false) => agree += 1,
            (Ok(()), true) => {
                agree += 1;
                fixed.push(name.clone());
            }
            (Err(_), true) => {}
            (Err(e), false) => unexpected.push(format!("{name}:\n{e}")),
        }
    }
    println!(
        "{agree}/{} agree; known-divergent.txt lists {}",
        cases.len(),
        listed.len()
    );
    for u in &unexpected {
        println!("DISAGREES (not listed) {u}");
    }
    for f in &fixed {
        println!("AGREES NOW (remove from known-divergent.txt): {f}");
    }
    assert!(
        unexpected.is_empty() && fixed.is_empty(),
        "{} unexpected disagreements, {} listed scenarios now agree",
        unexpected.len(),
        fixed.len()
    );
}
