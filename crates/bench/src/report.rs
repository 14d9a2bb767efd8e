//! Figures and how they are printed: the table (machine line first) and `--json` lines.
//!
//! `ratio` always reads "how many times better nfrs is than the anchor": anchor/nfrs for
//! costs (time, bytes), nfrs/anchor for rates (packets or connections a second).

use std::fmt::Write as _;

use crate::machine::Machine;

/// Which direction of a figure is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    /// Time, bytes: smaller is better.
    Lower,
    /// Rates: larger is better.
    Higher,
}

/// One measured figure, side by side with its anchor.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// Stable short key for `--only` (e.g. `ruleset-restore`).
    pub key: &'static str,
    /// Human name with the workload size, e.g. `ruleset restore, 100k rules`.
    pub name: String,
    /// The nfrs value (NaN when it could not be measured: `n/a` in the table, `null` in JSON).
    pub value: f64,
    /// Unit of `value` and `anchor_value` (`ms`, `Mpps`, `B`...).
    pub unit: &'static str,
    pub better: Better,
    /// What the anchor is (`iptables-legacy-restore -w (netns)`), or `n/a`.
    pub anchor: String,
    /// The anchor's value in the same unit, when it ran.
    pub anchor_value: Option<f64>,
    /// How the value was summarised (`median of 5`).
    pub method: String,
    /// Why the anchor is n/a, or other remarks printed under the table.
    pub notes: Vec<String>,
}

impl Figure {
    /// How many times better nfrs is than the anchor (> 1: nfrs better); `None` without anchor.
    pub fn ratio(&self) -> Option<f64> {
        let a = self.anchor_value?;
        if !(a > 0.0 && self.value > 0.0 && a.is_finite() && self.value.is_finite()) {
            return None;
        }
        Some(match self.better {
            Better::Lower => a / self.value,
            Better::Higher => self.value / a,
        })
    }

    /// The `--json` line, fields in this order: `{"name","value","unit","anchor",
    /// "anchor_value","ratio"}` (`null` where there is no anchor).
    pub fn json(&self) -> String {
        let num = |x: Option<f64>, scale: f64| match x {
            Some(x) if x.is_finite() => serde_json::Value::from((x * scale).round() / scale),
            _ => serde_json::Value::Null,
        };
        let s = |x: &str| serde_json::Value::from(x).to_string();
        format!(
            "{{\"name\":{},\"value\":{},\"unit\":{},\"anchor\":{},\"anchor_value\":{},\"ratio\":{}}}",
            s(&self.name),
            num(Some(self.value), 1e6),
            s(self.unit),
            s(&self.anchor),
            num(self.anchor_value, 1e6),
            num(self.ratio(), 1e2)
        )
    }
}

/// A figure the plan promises but that cannot be measured yet, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub name: String,
    pub why: String,
}

/// Everything one run produced.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub figures: Vec<Figure>,
    pub pending: Vec<Pending>,
    /// Workload descriptions, printed above the table.
    pub workloads: Vec<String>,
    /// Warnings (equivalence failures, anchor errors): printed, never hidden.
    pub warnings: Vec<String>,
}

/// A number with three significant figures at most (`152`, `15.2`, `1.52`, `0.152`).
pub fn fmt_num(x: f64) -> String {
    let a = x.abs();
    if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

impl Report {
    /// The human table: machine line, workloads, one row a figure, notes, pending, warnings.
    pub fn table(&self, machine: &Machine) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "nfrs bench — machine: {machine}");
        for w in &self.workloads {
            let _ = writeln!(out, "workload: {w}");
        }
        out.push('\n');
        let head = [
            "figure",
            "nfrs",
            "anchor",
            "anchor value",
            "ratio",
            "method",
        ];
        let rows: Vec<[String; 6]> = self
            .figures
            .iter()
            .map(|f| {
                [
                    f.name.clone(),
                    if f.value.is_finite() {
                        format!("{} {}", fmt_num(f.value), f.unit)
                    } else {
                        "n/a".into()
                    },
                    f.anchor.clone(),
                    f.anchor_value
                        .map(|a| format!("{} {}", fmt_num(a), f.unit))
                        .unwrap_or_else(|| "n/a".into()),
                    f.ratio()
                        .map(|r| format!("{}x", fmt_num(r)))
                        .unwrap_or_else(|| "n/a".into()),
                    f.method.clone(),
                ]
            })
            .collect();
        let mut width = head.map(|h| h.chars().count());
        for r in &rows {
            for (w, c) in width.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut line = |cells: &[String]| {
            let mut l = String::new();
            for (i, c) in cells.iter().enumerate() {
                let pad = width[i] - c.chars().count();
                // Numbers right-aligned, words left-aligned.
                if matches!(i, 1 | 3 | 4) {
                    l.push_str(&" ".repeat(pad));
                    l.push_str(c);
                } else {
                    l.push_str(c);
                    if i + 1 < cells.len() {
                        l.push_str(&" ".repeat(pad));
                    }
                }
                if i + 1 < cells.len() {
                    l.push_str("  ");
                }
            }
            let _ = writeln!(out, "{}", l.trim_end());
        };
        line(&head.map(String::from));
        for r in &rows {
            line(r);
        }
        let _ = writeln!(
            out,
            "(ratio: how many times better nfrs is — anchor/nfrs for times and sizes, nfrs/anchor for rates)"
        );
        for f in &self.figures {
            for n in &f.notes {
                let _ = writeln!(out, "note [{}]: {n}", f.key);
            }
        }
        for p in &self.pending {
            let _ = writeln!(out, "pending: {} — {}", p.name, p.why);
        }
        for w in &self.warnings {
            let _ = writeln!(out, "WARNING: {w}");
        }
        out
    }

    /// The `--json` output: one line a figure.
    pub fn json_lines(&self) -> String {
        let mut out = String::new();
        for f in &self.figures {
            out.push_str(&f.json());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fig(value: f64, anchor_value: Option<f64>, better: Better) -> Figure {
        Figure {
            key: "k",
            name: "ruleset restore, 1k rules".into(),
            value,
            unit: "ms",
            better,
            anchor: "tool".into(),
            anchor_value,
            method: "median of 3".into(),
            notes: vec!["a note".into()],
        }
    }

    #[test]
    fn test_ratio_direction() {
        assert_eq!(fig(2.0, Some(50.0), Better::Lower).ratio(), Some(25.0));
        assert_eq!(fig(50.0, Some(2.0), Better::Higher).ratio(), Some(25.0));
        assert_eq!(fig(2.0, None, Better::Lower).ratio(), None);
        assert_eq!(fig(0.0, Some(1.0), Better::Lower).ratio(), None);
    }

    #[test]
    fn test_json_line_fields() {
        let line = fig(2.0, Some(50.0), Better::Lower).json();
        assert_eq!(
            line,
            r#"{"name":"ruleset restore, 1k rules","value":2.0,"unit":"ms","anchor":"tool","anchor_value":50.0,"ratio":25.0}"#
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let o = v.as_object().unwrap();
        let keys: Vec<&str> = o.keys().map(|k| k.as_str()).collect();
        assert_eq!(keys.len(), 6);
        for k in ["name", "value", "unit", "anchor", "anchor_value", "ratio"] {
            assert!(o.contains_key(k), "{k}");
        }
        assert_eq!(o["ratio"], 25.0);
        let v: serde_json::Value =
            serde_json::from_str(&fig(2.0, None, Better::Lower).json()).unwrap();
        assert!(v["anchor_value"].is_null() && v["ratio"].is_null());
    }

    #[test]
    fn test_table_layout() {
        let r = Report {
            figures: vec![fig(1.5, Some(30.0), Better::Lower)],
            pending: vec![Pending {
                name: "p".into(),
                why: "w".into(),
            }],
            workloads: vec!["wl".into()],
            warnings: vec!["differs".into()],
        };
        let m = Machine {
            cpu: "CPU".into(),
            cores: 2,
            kernel: "6.1".into(),
            memory: 1 << 30,
            load1: 0.5,
        };
        let t = r.table(&m);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("nfrs bench — machine: CPU, 2 cores, Linux 6.1"));
        assert_eq!(lines[1], "workload: wl");
        assert!(lines[3].starts_with("figure"));
        assert!(lines[4].starts_with("ruleset restore, 1k rules"));
        assert!(lines[4].contains("1.50 ms") && lines[4].contains("30.0 ms"));
        assert!(lines[4].contains("20.0x") && lines[4].ends_with("median of 3"));
        assert!(t.contains("note [k]: a note\n"));
        assert!(t.contains("pending: p — w\n"));
        assert!(t.contains("WARNING: differs\n"));
    }

    #[test]
    fn test_unmeasured_value_is_na() {
        let f = fig(f64::NAN, Some(3.0), Better::Higher);
        assert_eq!(f.ratio(), None);
        let v: serde_json::Value = serde_json::from_str(&f.json()).unwrap();
        assert!(v["value"].is_null() && v["ratio"].is_null());
        assert_eq!(v["anchor_value"], 3.0);
        let r = Report {
            figures: vec![f],
            ..Report::default()
        };
        let m = Machine {
            cpu: "CPU".into(),
            cores: 2,
            kernel: "6.1".into(),
            memory: 1 << 30,
            load1: 0.5,
        };
        let t = r.table(&m);
        let row = t
            .lines()
            .find(|l| l.starts_with("ruleset restore"))
            .unwrap();
        let cells: Vec<&str> = row["ruleset restore, 1k rules".len()..]
            .split_whitespace()
            .collect();
        assert_eq!(cells[..4], ["n/a", "tool", "3.00", "ms"], "{row}");
        assert_eq!(cells[4], "n/a", "{row}");
    }

    #[test]
    fn test_fmt_num() {
        assert_eq!(fmt_num(152.34), "152");
        assert_eq!(fmt_num(15.234), "15.2");
        assert_eq!(fmt_num(1.5234), "1.52");
        assert_eq!(fmt_num(0.15234), "0.152");
    }
}
