//! Test support shared by the integration tests: word splitting of the recorded `.t`
//! arguments, random restore inputs.

/// POSIX-shell-like word splitting (quotes removed), as the recorder split the .t arguments.
#[allow(dead_code)] // Not every test crate including this module splits arguments.
pub fn shell_split(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut have = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                have = true;
                for d in chars.by_ref() {
                    if d == '\'' {
                        break;
                    }
                    cur.push(d);
                }
            }
            '"' => {
                have = true;
                while let Some(d) = chars.next() {
                    match d {
                        '"' => break,
                        '\\' if matches!(chars.peek(), Some('"' | '\\' | '$' | '`')) => {
                            cur.push(chars.next().unwrap())
                        }
                        _ => cur.push(d),
                    }
                }
            }
            '\\' => {
                have = true;
                if let Some(d) = chars.next() {
                    cur.push(d);
                }
            }
            ' ' | '\t' => {
                if have {
                    out.push(std::mem::take(&mut cur));
                    have = false;
                }
            }
            _ => {
                have = true;
                cur.push(c);
            }
        }
    }
    if have {
        out.push(cur);
    }
    out
}

/// An iptables-restore input of table blocks built from random pieces (the proptests'
/// generator): each block `(t, lines)` opens table `t` of filter, nat, mangle, raw, declares
/// `chains`, and holds `lines`, each line its pieces joined by blanks.
#[allow(dead_code)] // Not every test crate including this module generates inputs.
pub fn blocks_input(blocks: &[(usize, Vec<Vec<&str>>)], chains: &[&str]) -> String {
    const TABLES: [&str; 4] = ["filter", "nat", "mangle", "raw"];
    let mut input = String::new();
    for (t, lines) in blocks {
        input.push('*');
        input.push_str(TABLES[*t]);
        input.push('\n');
        for c in chains {
            input.push_str(&format!(":{c} - [0:0]\n"));
        }
        for l in lines {
            input.push_str(&l.join(" "));
            input.push('\n');
        }
        input.push_str("COMMIT\n");
    }
    input
}

/// The recorded rulesets as (prelude, input): each `tests/recorded/rulesets/*/input.rules`
/// with its `prelude.rules` (empty where there is none). None, with a message saying the
/// test is skipped, when that folder is absent.
#[allow(dead_code)] // Not every test crate including this module reads the rulesets.
pub fn recorded_inputs() -> Option<Vec<(String, String)>> {
    let dir =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/recorded/rulesets");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("skipped: tests/recorded/rulesets absent");
        return None;
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let read = |f: &str| std::fs::read_to_string(e.path().join(f)).ok();
        if let Some(input) = read("input.rules") {
            out.push((read("prelude.rules").unwrap_or_default(), input));
        }
    }
    Some(out)
}
