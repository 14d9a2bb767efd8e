//! Reads `<anything> <dev> <frame hex>` lines (as `tests/data/kernel-answers.txt` holds them) on
//! stdin and prints each frame's canonical text after its first two fields.

use std::io::BufRead;

fn main() {
    for l in std::io::stdin().lock().lines() {
        let l = l.expect("read stdin");
        let f: Vec<&str> = l.split_whitespace().collect();
        let [a, dev, hex] = f.as_slice() else {
            continue;
        };
        let Some(bytes) = (0..hex.len())
            .step_by(2)
            .map(|i| {
                hex.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
        else {
            continue;
        };
        println!("{a} {dev} {}", nfrs_wire::print::frame_to_string(&bytes));
    }
}
