//! A whole capture file through palisade-flows: the pcap/pcapng reader, the decoders,
//! the flow table and the application parsers. Errors are fine; panics are not, and
//! every packet read must be accounted for in the statistics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_flows::reader::CaptureReader;
use palisade_flows::{FlowBuilder, FlowConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = CaptureReader::new(Box::new(std::io::Cursor::new(data.to_vec()))) else {
        return;
    };
    let mut builder = FlowBuilder::new(FlowConfig { max_flows: 16, ..FlowConfig::default() });
    while let Ok(Some(p)) = reader.next_packet() {
        builder.add(&p);
    }
    let stats = builder.finish();
    let flows = builder.take_finished();
    let in_flows: u64 = flows.iter().map(|f| f.orig.packets + f.resp.packets).sum();
    // Every IP packet lands in exactly one flow; ARP requests and replies do too.
    assert!(in_flows >= stats.ip_packets && in_flows <= stats.ip_packets + stats.arp);
    assert_eq!(stats.table.flows_started, stats.table.flows_finished);
});
