//! `nfrs run --store DIR --host HOST.toml [--metrics ADDR:PORT]`: the live gateway (see
//! crates/dataplane/README.md).

const USAGE: &str = "usage: nfrs run [--store DIR] --host HOST.toml [--metrics ADDR:PORT]";

/// Entry point.
pub fn main(args: &[String]) -> i32 {
    let (store, args) = crate::ctl::take_store(args);
    let mut host = None;
    let mut metrics = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--host" => match it.next() {
                Some(h) => host = Some(h.clone()),
                None => {
                    eprintln!("nfrs run: --host needs a file\n{USAGE}");
                    return 2;
                }
            },
            "--metrics" => match it.next() {
                Some(m) => metrics = Some(m.clone()),
                None => {
                    eprintln!("nfrs run: --metrics needs ADDR:PORT (e.g. 127.0.0.1:9100)\n{USAGE}");
                    return 2;
                }
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return 0;
            }
            other => {
                eprintln!("nfrs run: unknown argument `{other}`\n{USAGE}");
                return 2;
            }
        }
    }
    let Some(host) = host else {
        eprintln!("{USAGE}");
        return 2;
    };
    let cfg = nfrs_dataplane::daemon::Config {
        store: nfrs_rules::store::Store::locate(store.as_deref()).dir,
        host_file: host.into(),
        metrics,
    };
    match nfrs_dataplane::daemon::run(&cfg) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("nfrs run: {e}");
            1
        }
    }
}
