//! The inventory from a small generated capture: DHCP, mDNS, NBNS, TCP handshakes with
//! their TTLs, an HTTP request, ARP requests nobody answers, a public peer.

use super::*;
use crate::capture::FlowBuilder;
use crate::config::FlowConfig;
use crate::reader::{Packet, tcp_frame, udp_frame, with_macs};

const NAS: [u8; 6] = [0x00, 0x11, 0x32, 0x17, 0x49, 0xf0];
const ROUTER: [u8; 6] = [0x00, 0x00, 0x0c, 0x01, 0x02, 0x03];
const PHONE: [u8; 6] = [0xf0, 0x18, 0x98, 0x00, 0x00, 0x01];
const BCAST: [u8; 6] = [0xff; 6];

fn oui() -> Arc<Oui> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oui.csv");
    std::fs::write(
        &path,
        "Registry,Assignment,Organization Name,Organization Address\n\
         MA-L,001132,Synology Incorporated,x\nMA-L,00000C,\"Cisco Systems, Inc\",x\n",
    )
    .unwrap();
    Arc::new(Oui::load(&path))
}

fn dhcp_request() -> Vec<u8> {
    let mut m = vec![1, 1, 6, 0];
    m.extend([0; 24]);
    m.extend(NAS);
    m.extend([0; 10 + 64 + 128]);
    m.extend([0x63, 0x82, 0x53, 0x63]);
    for (code, v) in [
        (53u8, &[3u8][..]),
        (50, &[192, 168, 1, 20]),
        (12, b"nas1\0"),
        (55, &[1, 28, 2, 3, 15, 6, 119, 12, 44, 47, 26, 121, 42]),
    ] {
        m.push(code);
        m.push(v.len() as u8);
        m.extend(v);
    }
    m.push(255);
    m
}

fn mdns_answer(name: &str, ip: [u8; 4]) -> Vec<u8> {
    let mut m = vec![0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0];
    for l in name.split('.') {
        m.push(l.len() as u8);
        m.extend(l.as_bytes());
    }
    m.push(0);
    m.extend([0, 1, 0x80, 1, 0, 0, 0, 120, 0, 4]);
    m.extend(ip);
    m
}

fn nbns_registration(name: &str, ip: [u8; 4]) -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x29, 0x10, 0, 1, 0, 0, 0, 0, 0, 1, 0x20];
    let mut enc = Vec::new();
    for c in format!("{name:<15}").bytes().chain([0u8]) {
        enc.push(b'A' + (c >> 4));
        enc.push(b'A' + (c & 15));
    }
    m.extend(&enc);
    m.extend([0, 0, 0x20, 0, 1]);
    m.extend([0xc0, 12, 0, 0x20, 0, 1, 0, 0, 0, 60, 0, 6, 0, 0]);
    m.extend(ip);
    m
}

fn arp_request(sender_mac: [u8; 6], sender: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut f = BCAST.to_vec();
    f.extend(sender_mac);
    f.extend([0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend(sender_mac);
    f.extend(sender);
    f.extend([0; 6]);
    f.extend(target);
    f
}

#[test]
fn devices_from_dhcp_mdns_nbns_handshakes_and_flows() {
    let nas_ip = [192, 168, 1, 20];
    let router_ip = [192, 168, 1, 1];
    let frames: Vec<Vec<u8>> = vec![
        with_macs(
            udp_frame([0, 0, 0, 0], [255; 4], 68, 67, &dhcp_request()),
            NAS,
            BCAST,
            64,
        ),
        with_macs(
            udp_frame(
                [192, 168, 1, 30],
                [224, 0, 0, 251],
                5353,
                5353,
                &mdns_answer("iphone.local", [192, 168, 1, 30]),
            ),
            PHONE,
            [0x01, 0x00, 0x5e, 0, 0, 0xfb],
            255,
        ),
        with_macs(
            udp_frame(
                nas_ip,
                [192, 168, 1, 255],
                137,
                137,
                &nbns_registration("NAS1", nas_ip),
            ),
            NAS,
            BCAST,
            64,
        ),
        // NAS → router ssh: SYN (TTL 64), SYN-ACK (TTL 255), ACK, banner.
        with_macs(
            tcp_frame(nas_ip, router_ip, 40_000, 22, 0x02, b""),
            NAS,
            ROUTER,
            64,
        ),
        with_macs(
            tcp_frame(router_ip, nas_ip, 22, 40_000, 0x12, b""),
            ROUTER,
            NAS,
            255,
        ),
        with_macs(
            tcp_frame(nas_ip, router_ip, 40_000, 22, 0x10, b""),
            NAS,
            ROUTER,
            64,
        ),
        // NAS → a public web server (through the router's MAC): HTTP with a UA.
        with_macs(
            tcp_frame(nas_ip, [203, 0, 113, 5], 40_001, 80, 0x02, b""),
            NAS,
            ROUTER,
            64,
        ),
        with_macs(
            tcp_frame([203, 0, 113, 5], nas_ip, 80, 40_001, 0x12, b""),
            ROUTER,
            NAS,
            50,
        ),
        with_macs(
            tcp_frame(
                nas_ip,
                [203, 0, 113, 5],
                40_001,
                80,
                0x18,
                b"GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: synoupdate/7\r\n\r\n",
            ),
            NAS,
            ROUTER,
            64,
        ),
        // ARP requests nobody answers: no phantom devices.
        arp_request(NAS, nas_ip, [192, 168, 1, 100]),
        arp_request(NAS, nas_ip, [192, 168, 1, 101]),
    ];
    let mut b = FlowBuilder::new(FlowConfig::default()).with_devices(DeviceTable::new(oui(), 100));
    for (i, data) in frames.iter().enumerate() {
        b.add(&Packet {
            ts_us: 1_000_000 * i as i64,
            link_type: 1,
            orig_len: data.len() as u32,
            data,
        });
    }
    b.finish();
    b.take_finished();
    let devices = b.take_devices();
    let keys: Vec<&str> = devices.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(
        keys,
        vec![
            "mac:00:00:0c:01:02:03",
            "mac:00:11:32:17:49:f0",
            "mac:f0:18:98:00:00:01"
        ],
        "the NAS, the router and the phone; no public host, no ARP-swept address"
    );
    let nas = &devices[1];
    assert_eq!(nas.vendor.as_deref(), Some("Synology Incorporated"));
    assert_eq!(nas.mac.as_deref(), Some("00:11:32:17:49:f0"));
    assert_eq!(nas.ips, vec!["192.168.1.20".parse::<IpAddr>().unwrap()]);
    assert_eq!(nas.hostnames, vec!["nas1".to_string(), "NAS1".to_string()]);
    assert_eq!(
        nas.os_guess.as_deref(),
        Some("Linux"),
        "DHCP option 55 of dhclient"
    );
    assert!(
        nas.os_hints
            .iter()
            .any(|h| h.starts_with("dhcp-params:1,28,2"))
    );
    assert!(nas.os_hints.contains(&"ttl:64".to_string()));
    assert_eq!(nas.user_agents, vec!["synoupdate/7".to_string()]);
    assert_eq!(nas.first_seen, Timestamp(0));
    assert_eq!(nas.flows, 3, "NBNS, SSH and HTTP (ARP is not counted)");
    let router = &devices[0];
    assert_eq!(router.vendor.as_deref(), Some("Cisco Systems, Inc"));
    assert_eq!(router.services, vec!["tcp/22 ssh".to_string()]);
    assert_eq!(
        router.os_guess.as_deref(),
        Some("network device (Cisco/Solaris)")
    );
    let phone = &devices[2];
    assert_eq!(phone.hostnames, vec!["iphone.local".to_string()]);
    assert_eq!(phone.vendor, None, "prefix not in this registry");
    // Taken: the next batch starts empty, but remembers which MAC an address has.
    assert!(b.take_devices().is_empty());
}

#[test]
fn a_full_table_counts_what_it_drops() {
    let mut t = DeviceTable::new(oui(), 2);
    for i in 1..=5u8 {
        t.arp(
            0,
            [0, 0x11, 0x32, 0, 0, i],
            IpAddr::V4([10, 0, 0, i].into()),
        );
    }
    assert_eq!(t.take().len(), 2);
    assert_eq!(t.dropped(), 3);
    assert!(is_local("fe80::1".parse().unwrap()));
    assert!(is_local("fd00::1".parse().unwrap()));
    assert!(is_local("100.64.0.1".parse().unwrap()));
    assert!(!is_local("8.8.8.8".parse().unwrap()));
    assert!(!is_local("0.0.0.0".parse().unwrap()));
    assert_eq!(parse_mac("00:11:32:17:49:f0"), Some(NAS));
    assert_eq!(parse_mac("00:11:32:17:49"), None);
}
