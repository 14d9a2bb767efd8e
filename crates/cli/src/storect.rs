//! The conntrack state a store keeps while no daemon runs (`STORE/conntrack.state`, written by
//! `nfrs replay --store` and by a stopping `nfrs run`): loaded for the listing commands
//! (`conntrack -L`, `proc net/nf_conntrack`, `nfrs check --store`), written back after
//! `conntrack -D/-F`. Timeouts are kept relative: the table is seen at time 0.

use nfrs_conntrack::ConnTable;
use nfrs_dataplane::ctsave::{self, Restored};
use nfrs_rules::store::{write_atomic, Store};

/// The store's saved table (empty when there is none). Lines that cannot be restored are
/// reported on stderr.
pub fn load(store: &Store) -> Result<(ConnTable, Restored), String> {
    let path = store.dir.join(ctsave::FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(ctsave::load_table("# nfrs conntrack snapshot v2\n", 0))
        }
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let (ct, r) = ctsave::load_table(&text, 0);
    for e in r.errs.iter().take(5) {
        eprintln!("nfrs: {}: {e}", path.display());
    }
    Ok((ct, r))
}

/// Writes `ct` back as the store's saved table (counters from `saved` kept).
pub fn save(store: &Store, ct: &ConnTable, saved: &Restored) -> Result<(), String> {
    let (text, _) = ctsave::save_with(ct, 0, Some(saved));
    write_atomic(&store.dir, ctsave::FILE, text.as_bytes()).map_err(|e| e.to_string())
}
