//! Root only: the kernel oracle reproduces the real kernel results of ../shared/examples byte
//! for byte (they were recorded independently of this code), and the golden corpus round-trips.

use std::path::PathBuf;

fn shared() -> PathBuf {
    match std::env::var_os("NFRS_SHARED") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

// One test, so that no other run of this process is in flight while namespaces are counted.
#[test]
fn kernel_oracle() {
    reproduces_the_shared_examples_exactly();
    leaves_no_namespace_behind();
}

fn reproduces_the_shared_examples_exactly() {
    if !is_root() {
        eprintln!("skipped: not root");
        return;
    }
    let dir = shared().join("examples");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        eprintln!("skipped: ../shared/examples absent");
        return;
    };
    let mut tomls: Vec<PathBuf> = rd
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    tomls.sort();
    assert!(tomls.len() >= 3);
    for t in tomls {
        let sc = nfrs_scenario::load(&t).unwrap();
        let got = nfrs_oracle::run(&sc, &nfrs_oracle::Options::default())
            .unwrap_or_else(|e| panic!("{}: {e}", t.display()))
            .to_text();
        let want = std::fs::read_to_string(sc.golden_path()).unwrap();
        assert_eq!(got, want, "{}", t.display());
    }
}

fn leaves_no_namespace_behind() {
    if !is_root() {
        eprintln!("skipped: not root");
        return;
    }
    let sc = nfrs_scenario::parse(
        "description = \"x\"\n[[interface]]\nname = \"lan0\"\naddress = \"10.0.0.1/24\"\n",
        std::path::Path::new("x.toml"),
    )
    .unwrap();
    nfrs_oracle::run(&sc, &nfrs_oracle::Options::default()).unwrap();
    let mine = format!("nfrs{}x", std::process::id());
    let left: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&mine))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
    // An error after the namespaces exist (bad rules) cleans up too.
    let bad = nfrs_scenario::parse(
        "description = \"x\"\nrules = '''\n*filter\n-A INPUT -j NOSUCHTARGET\nCOMMIT\n'''\n[[interface]]\nname = \"lan0\"\naddress = \"10.0.0.1/24\"\n",
        std::path::Path::new("x.toml"),
    )
    .unwrap();
    let e = nfrs_oracle::run(&bad, &nfrs_oracle::Options::default()).unwrap_err();
    assert!(e.contains("iptables-legacy-restore"), "{e}");
    let left = std::fs::read_dir("/run/netns")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&mine))
        .count();
    assert_eq!(left, 0);
}
