use super::*;
use std::path::Path;

const EXAMPLE: &str = r#"description = "SNAT keeps the port"

rules = '''
*nat
-A POSTROUTING -o wan0 -j SNAT --to-source 192.0.2.10-192.0.2.12
COMMIT
'''

packets = '''
# time  dev   proto  src              dst                fields
0.000   lan0  tcp    10.0.0.2:40000 > 198.51.100.7:80    flags=S seq=1000 win=64240 mss=1460

0.010   wan0  tcp    198.51.100.7:80 > 192.0.2.10:40000  flags=SA seq=5000 ack=1001   # reply
'''

[[interface]]
name = "lan0"
address = "10.0.0.1/24"

[[interface]]
name = "wan0"
addresses = ["192.0.2.1/24", "192.0.2.10/24"]
mtu = 1400

[[route]]
to = "default"
via = "192.0.2.254"
dev = "wan0"

[[neighbour]]
address = "10.0.0.9"
mac = "02:aa:00:00:00:09"
dev = "lan0"

[[listen]]
proto = "udp"
port = 514

[sysctl]
"net.ipv4.ip_forward" = 1
"#;

fn p(s: &str) -> Result<Scenario, ScenarioError> {
    parse(s, Path::new("t.toml"))
}

#[test]
fn parses_the_example() {
    let s = p(EXAMPLE).unwrap();
    assert_eq!(s.description, "SNAT keeps the port");
    assert!(s.rules.starts_with("*nat\n-A POSTROUTING"));
    let lines = s.packet_lines();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].line, 11);
    assert_eq!(lines[1].line, 13);
    assert_eq!(
        lines[1].text,
        "0.010   wan0  tcp    198.51.100.7:80 > 192.0.2.10:40000  flags=SA seq=5000 ack=1001"
    );
    assert_eq!(lines[1].parsed.time_us, 10_000);
    let h = &s.host;
    assert_eq!(h.interfaces[0].mac, [2, 0, 0, 0, 0, 1]);
    assert_eq!(h.interfaces[1].mac, [2, 0, 0, 0, 0, 2]);
    assert_eq!(h.interfaces[0].mtu, 1500);
    assert_eq!(h.interfaces[1].mtu, 1400);
    assert_eq!(h.interfaces[1].addresses.len(), 2);
    assert_eq!(h.interface_index("wan0"), Some(2));
    assert_eq!(h.routes[0].to, None);
    assert_eq!(h.routes[0].via, Some("192.0.2.254".parse().unwrap()));
    assert_eq!(
        h.neighbour_mac("lan0", "10.0.0.9".parse().unwrap()),
        Some([2, 0xaa, 0, 0, 0, 9])
    );
    assert_eq!(
        h.neighbour_mac("wan0", "192.0.2.254".parse().unwrap()),
        Some([2, 0, 0, 0, 1, 2])
    );
    assert_eq!(h.sysctl("net.ipv4.ip_forward"), Some("1"));
    assert_eq!(h.sysctl("net.ipv4.conf.all.rp_filter"), Some("0"));
    assert_eq!(h.listen[0].port, 514);
    assert!(!s.exclusive);
    assert!(h.is_local_address("192.0.2.10".parse().unwrap()));
    assert_eq!(
        h.connected_interface("192.0.2.99".parse().unwrap())
            .unwrap()
            .name,
        "wan0"
    );
}

#[test]
fn unknown_top_level_key_is_refused_with_line() {
    let e = p("description = \"x\"\nfoo = 1\n").unwrap_err();
    assert_eq!(e.line, Some(2));
    assert!(e.msg.contains("unknown field `foo`"), "{e}");
    assert!(e.to_string().starts_with("t.toml:2:"), "{e}");
}

#[test]
fn unknown_interface_key_is_refused() {
    let e = p("description = \"x\"\n[[interface]]\nname = \"a\"\nspeed = 10\n").unwrap_err();
    assert!(e.msg.contains("unknown field `speed`"), "{e}");
}

#[test]
fn missing_description() {
    let e = p("rules = ''\n").unwrap_err();
    assert!(e.msg.contains("description"), "{e}");
}

#[test]
fn bad_packet_line_names_its_file_line() {
    let e = p("description = \"x\"\n[[interface]]\nname = \"lan0\"\n")
        .and_then(|_| {
            p("description = \"x\"\npackets = '''\n0.0 lan0 tcp 1.1.1.1:1 > 2.2.2.2:2\n0.1 eth9 tcp 1.1.1.1:1 > 2.2.2.2:2\n'''\n[[interface]]\nname = \"lan0\"\n")
        })
        .unwrap_err();
    assert_eq!(e.line, Some(4), "{e}");
    assert!(e.msg.contains("eth9"), "{e}");
}

#[test]
fn times_never_decrease() {
    let e = p("description = \"x\"\npackets = '''\n0.5 lan0 udp 1.1.1.1:1 > 2.2.2.2:2\n0.1 lan0 udp 1.1.1.1:1 > 2.2.2.2:2\n'''\n[[interface]]\nname = \"lan0\"\n")
        .unwrap_err();
    assert_eq!(e.line, Some(4), "{e}");
}

#[test]
fn bad_values_are_refused() {
    let base = "description = \"x\"\n[[interface]]\nname = \"lan0\"\n";
    assert!(p(&format!("{base}address = \"10.0.0.1/40\"\n")).is_err());
    assert!(p(&format!("{base}mac = \"zz\"\n")).is_err());
    let e = p(&format!(
        "{base}[[route]]\nto = \"default\"\ndev = \"wan9\"\n"
    ))
    .unwrap_err();
    assert!(e.msg.contains("wan9"), "{e}");
    assert!(p(&format!("{base}[[listen]]\nproto = \"sctp\"\nport = 1\n")).is_err());
    assert!(p("description = \"x\"\nrules = 'a'\nrules_file = 'b'\n").is_err());
    assert!(
        p("description = \"x\"\n[[interface]]\nname = \"a\"\n[[interface]]\nname = \"a\"\n")
            .is_err()
    );
}

#[test]
fn machine_wide_sysctl_needs_exclusive() {
    let e =
        p("description = \"x\"\n[sysctl]\n\"net.netfilter.nf_conntrack_max\" = 4\n").unwrap_err();
    assert!(e.msg.contains("exclusive"), "{e}");
    let s = p(
        "description = \"x\"\nexclusive = true\n[sysctl]\n\"net.netfilter.nf_conntrack_max\" = 4\n",
    )
    .unwrap();
    assert!(s.exclusive);
}

#[test]
fn unquoted_sysctl_names_are_flattened() {
    let s = p("description = \"x\"\n[sysctl]\nnet.ipv4.ip_forward = 1\n").unwrap();
    assert_eq!(s.host.sysctl("net.ipv4.ip_forward"), Some("1"));
}

#[test]
fn rules_file_is_read_relative_to_the_scenario() {
    let dir = std::env::temp_dir().join(format!("nfrs-scn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("r.rules"), "*filter\nCOMMIT\n").unwrap();
    let path = dir.join("s.toml");
    std::fs::write(&path, "description = \"x\"\nrules_file = \"r.rules\"\n").unwrap();
    let s = load(&path).unwrap();
    assert_eq!(s.rules, "*filter\nCOMMIT\n");
    assert_eq!(s.golden_path(), dir.join("s.kernel.txt"));
    std::fs::write(
        &path,
        "description = \"x\"\nrules_file = \"missing.rules\"\n",
    )
    .unwrap();
    assert!(load(&path).unwrap_err().msg.contains("missing.rules"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bridges_parse_with_defaults_and_checks() {
    let base =
        "description = \"x\"\n[[interface]]\nname = \"lan0\"\n[[interface]]\nname = \"lan1\"\n";
    let s = p(&format!(
        "{base}[[bridge]]\nname = \"br0\"\nports = [\"lan0\", \"lan1\"]\naddress = \"10.0.0.1/24\"\n[[route]]\nto = \"10.9.0.0/16\"\nvia = \"10.0.0.254\"\ndev = \"br0\"\n"
    ))
    .unwrap();
    let h = &s.host;
    let b = h.bridge("br0").unwrap();
    assert_eq!(b.mac, [2, 0, 0, 0, 2, 1]);
    assert_eq!(h.bridge_of("lan1").unwrap().name, "br0");
    assert_eq!(h.connected_device("10.0.0.7".parse().unwrap()), Some("br0"));
    assert!(h.is_local_address("10.0.0.1".parse().unwrap()));
    assert_eq!(
        h.neighbour_mac("br0", "10.0.0.7".parse().unwrap()),
        Some([2, 0, 0, 0, 1, 1])
    );
    let e = p(&format!(
        "{base}[[bridge]]\nname = \"br0\"\nports = [\"eth9\"]\n"
    ))
    .unwrap_err();
    assert!(e.msg.contains("eth9"), "{e}");
    let e = p(&format!(
        "{base}[[bridge]]\nname = \"br0\"\nports = [\"lan0\"]\n[[bridge]]\nname = \"br1\"\nports = [\"lan0\"]\n"
    ))
    .unwrap_err();
    assert!(e.msg.contains("two bridges"), "{e}");
    let e = p(&format!("{base}[[bridge]]\nname = \"lan0\"\nports = []\n")).unwrap_err();
    assert!(e.msg.contains("taken"), "{e}");
    assert_eq!(b.ageing_time, 300);
    let s = p(&format!(
        "{base}[[bridge]]\nname = \"br0\"\nports = [\"lan0\"]\nageing_time = 2\n"
    ))
    .unwrap();
    assert_eq!(s.host.bridge("br0").unwrap().ageing_time, 2);
    for bad in ["0", "-1", "1000001", "\"5\""] {
        let e = p(&format!(
            "{base}[[bridge]]\nname = \"br0\"\nports = [\"lan0\"]\nageing_time = {bad}\n"
        ))
        .unwrap_err();
        assert!(
            e.msg.contains("ageing_time") || e.msg.contains("invalid"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn pcap_keys_are_checked() {
    let base = "description = \"x\"\n[[interface]]\nname = \"lan0\"\n";
    let s = p(&format!(
        "{base}pcap = \"x.pcap\"\npcap_dev = \"lan0\"\n[[pcap_ingress]]\nsrc = \"10.0.0.0/8\"\ndev = \"lan0\"\n"
    ));
    // Top-level keys after a table belong to that table in TOML: write them first.
    assert!(s.is_err());
    let s = p(
        "description = \"x\"\npcap = \"x.pcap\"\npcap_dev = \"lan0\"\n[[pcap_ingress]]\nsrc = \"10.0.0.0/8\"\ndev = \"lan0\"\n[[interface]]\nname = \"lan0\"\n"
    )
    .unwrap();
    match &s.input {
        Input::Pcap { dev, ingress, .. } => {
            assert_eq!(dev.as_deref(), Some("lan0"));
            assert_eq!(ingress.len(), 1);
        }
        _ => panic!("not a pcap input"),
    }
    assert!(s.capture_frames().unwrap_err().msg.contains("x.pcap"));
    let e = p("description = \"x\"\npcap_dev = \"lan0\"\n[[interface]]\nname = \"lan0\"\n")
        .unwrap_err();
    assert!(e.msg.contains("without `pcap`"), "{e}");
}
