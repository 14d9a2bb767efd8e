//! The golden corpus: `tests/scenarios/**/*.toml`, each with its recorded kernel result
//! `NAME.kernel.txt` beside it. The engine's golden test and the oracle's drift check walk it.

use std::path::{Path, PathBuf};

/// One scenario of the corpus and its golden.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoldenCase {
    /// The scenario file.
    pub toml: PathBuf,
    /// Its recorded kernel result (may be missing on disk if never recorded).
    pub golden: PathBuf,
}

impl GoldenCase {
    /// Loads the scenario and its recorded result.
    pub fn load(&self) -> Result<(crate::Scenario, crate::RunResult), String> {
        let sc = crate::file::load(&self.toml).map_err(|e| e.to_string())?;
        let text = std::fs::read_to_string(&self.golden)
            .map_err(|e| format!("{}: {e}", self.golden.display()))?;
        let r = crate::RunResult::parse(&text)
            .map_err(|e| format!("{}: {e}", self.golden.display()))?;
        Ok((sc, r))
    }

    /// Whether the scenario replays a capture that is not on this machine (from
    /// `../shared/corpus`): such a case is skipped, saying so.
    pub fn capture_absent(&self) -> bool {
        match crate::file::load(&self.toml) {
            Ok(sc) => matches!(&sc.input, crate::Input::Pcap { path, .. } if !path.exists()),
            Err(_) => false,
        }
    }

    /// The scenario's path relative to `root`, for messages.
    pub fn name(&self, root: &Path) -> String {
        self.toml
            .strip_prefix(root)
            .unwrap_or(&self.toml)
            .display()
            .to_string()
    }
}

/// The corpus folder: `$NFRS_SCENARIOS` if set, else `<workspace root>/tests/scenarios`
/// (found from this crate's manifest directory).
pub fn corpus_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("NFRS_SCENARIOS") {
        return PathBuf::from(d);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/scenarios")
        .components()
        .collect()
}

/// Every `*.toml` under `dir` (recursively), sorted by path, with its golden path.
pub fn golden_cases(dir: &Path) -> std::io::Result<Vec<GoldenCase>> {
    let mut out = Vec::new();
    walk(dir, &mut out)?;
    out.sort();
    Ok(out
        .into_iter()
        .map(|toml| GoldenCase {
            golden: crate::file::golden_path_for(&toml),
            toml,
        })
        .collect())
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let p = entry.path();
        if entry.file_type()?.is_dir() {
            walk(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "toml") {
            out.push(p);
        }
    }
    Ok(())
}

impl PartialOrd for GoldenCase {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for GoldenCase {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.toml.cmp(&other.toml)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpus_cases_all_have_goldens_and_parse() {
        let dir = corpus_dir();
        if !dir.exists() {
            eprintln!("skipped: {} absent", dir.display());
            return;
        }
        let cases = golden_cases(&dir).unwrap();
        for c in &cases {
            let sc = crate::file::load(&c.toml).unwrap_or_else(|e| panic!("{e}"));
            let packets = match &sc.input {
                crate::file::Input::Pcap { path, .. } if !path.exists() => {
                    eprintln!("skipped {}: capture absent", c.toml.display());
                    continue;
                }
                crate::file::Input::Pcap { .. } => {
                    sc.capture_frames().unwrap_or_else(|e| panic!("{e}")).len()
                }
                crate::file::Input::Lines(l) => l.len(),
            };
            let text = std::fs::read_to_string(&c.golden)
                .unwrap_or_else(|e| panic!("{}: golden missing: {e}", c.golden.display()));
            let r = crate::result::RunResult::parse(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", c.golden.display()));
            assert_eq!(r.description, sc.description, "{}", c.golden.display());
            assert_eq!(r.packets.len(), packets, "{}", c.golden.display());
            assert_eq!(
                r.to_text(),
                text,
                "{} does not print back identically",
                c.golden.display()
            );
        }
    }
}
