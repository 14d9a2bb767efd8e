//! The iptables-t lines of each module through ONE restore ("fast mode" of the upstream
//! runner), compared with what iptables-legacy-save printed after the same restore
//! (tests/recorded/t-restore). Modules using an extension nfrs does not support yet are
//! reported as unsupported and must be refused.

use nfrs_rules::restore::{restore, RestoreOpts};
use nfrs_rules::save;
use nfrs_rules::Ruleset;
use std::path::PathBuf;

#[test]
fn test_t_restore_fast_mode() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/recorded/t-restore");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("skipped: tests/recorded/t-restore absent");
        return;
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    let (mut passed, mut unsupported, mut failures) = (0, Vec::new(), Vec::new());
    for name in names {
        let d = dir.join(&name);
        let (Ok(input), Ok(want)) = (
            std::fs::read_to_string(d.join("input.rules")),
            std::fs::read_to_string(d.join("save.txt")),
        ) else {
            continue;
        };
        let mut rs = Ruleset::default();
        match restore(&mut rs, &input, &RestoreOpts::default()) {
            Err(e) if e.message.contains("is not yet supported by nfrs") => {
                unsupported.push(name);
            }
            Err(e) => failures.push(format!("{name}: {}", e.message)),
            Ok(()) => {
                let got = save::save(&rs, None, false);
                if got == want {
                    passed += 1;
                } else {
                    let diff: Vec<String> = want
                        .lines()
                        .zip(got.lines())
                        .filter(|(a, b)| a != b)
                        .take(3)
                        .map(|(a, b)| format!("    want: {a}\n    got:  {b}"))
                        .collect();
                    failures.push(format!("{name}: save differs\n{}", diff.join("\n")));
                }
            }
        }
    }
    eprintln!(
        "t-restore: {passed} passed, {} failed, {} unsupported ({})",
        failures.len(),
        unsupported.len(),
        unsupported.join(" ")
    );
    for f in &failures {
        eprintln!("FAIL {f}");
    }
    assert!(failures.is_empty());
}
