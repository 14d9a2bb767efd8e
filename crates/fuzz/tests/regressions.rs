//! Every input the fuzzer once found crashing or hanging (`crates/fuzz/regressions/`, named
//! `<target>-...`) now runs through its target without a panic and within the hang limit.

use nfrs_fuzz::driver::{exec_caught, show_input};
use nfrs_fuzz::targets::State;
use nfrs_fuzz::Target;
use std::time::Instant;

#[test]
fn fixed_findings_stay_fixed() {
    let dir = nfrs_fuzz::crate_dir().join("regressions");
    let st = State::new();
    let mut n = 0;
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("crates/fuzz/regressions")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    for p in paths {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let t = name
            .split('-')
            .next()
            .and_then(Target::from_name)
            .unwrap_or_else(|| panic!("{name}: no target prefix"));
        let input = std::fs::read(&p).unwrap();
        let t0 = Instant::now();
        let r = exec_caught(t, &st, &input);
        let took = t0.elapsed();
        assert!(
            r.is_ok(),
            "{name}: {}\ninput: {}",
            r.unwrap_err(),
            show_input(t, &input)
        );
        assert!(took < t.hang_limit(), "{name}: took {took:?}");
        n += 1;
    }
    assert!(n >= 1);
}
