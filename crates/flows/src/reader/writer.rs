//! A minimal classic-pcap writer (microseconds, little-endian), so tools and tests can
//! produce captures the reader reads back (e.g. a generated scan for the black-box tests
//! or a replayed capture for the benchmark).

use std::io::Write;

/// Writes Ethernet (or any single link type) packets as a pcap stream.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header for `link_type` (1 = Ethernet).
    pub fn new(mut out: W, link_type: u32) -> std::io::Result<Self> {
        out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&[0; 8])?;
        out.write_all(&262_144u32.to_le_bytes())?;
        out.write_all(&link_type.to_le_bytes())?;
        Ok(PcapWriter { out })
    }

    /// Appends one packet captured at `ts_us` (µs since the epoch).
    pub fn packet(&mut self, ts_us: i64, data: &[u8]) -> std::io::Result<()> {
        let secs = u32::try_from(ts_us.div_euclid(1_000_000)).unwrap_or(0);
        let frac = u32::try_from(ts_us.rem_euclid(1_000_000)).unwrap_or(0);
        let len =
            u32::try_from(data.len()).map_err(|_| std::io::Error::other("packet too large"))?;
        self.out.write_all(&secs.to_le_bytes())?;
        self.out.write_all(&frac.to_le_bytes())?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(data)
    }

    /// Flushes and returns the output.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Builds an Ethernet + IPv4 + TCP frame (no options, checksums zero).
pub fn tcp_frame(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
    let total = u16::try_from(40 + payload.len()).unwrap_or(u16::MAX);
    f.extend([0x45, 0]);
    f.extend(total.to_be_bytes());
    f.extend([0, 1, 0x40, 0, 64, 6, 0, 0]);
    f.extend(src);
    f.extend(dst);
    f.extend(sport.to_be_bytes());
    f.extend(dport.to_be_bytes());
    f.extend([0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    f.extend(payload);
    f
}

/// Builds an Ethernet + IPv4 + UDP frame (checksums zero).
pub fn udp_frame(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
    let total = u16::try_from(28 + payload.len()).unwrap_or(u16::MAX);
    f.extend([0x45, 0]);
    f.extend(total.to_be_bytes());
    f.extend([0, 1, 0x40, 0, 64, 17, 0, 0]);
    f.extend(src);
    f.extend(dst);
    f.extend(sport.to_be_bytes());
    f.extend(dport.to_be_bytes());
    f.extend(
        u16::try_from(8 + payload.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    f.extend([0, 0]);
    f.extend(payload);
    f
}

/// The same Ethernet frame with other source and destination MACs (and, for IPv4, the
/// TTL), for tests that tell hosts apart by their MAC.
pub fn with_macs(mut frame: Vec<u8>, src: [u8; 6], dst: [u8; 6], ttl: u8) -> Vec<u8> {
    if let Some(d) = frame.get_mut(0..6) {
        d.copy_from_slice(&dst);
    }
    if let Some(s) = frame.get_mut(6..12) {
        s.copy_from_slice(&src);
    }
    if frame.get(12..14) == Some(&[0x08, 0x00])
        && let Some(t) = frame.get_mut(22)
    {
        *t = ttl;
    }
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_captures_read_back() {
        let mut w = PcapWriter::new(Vec::new(), 1).unwrap();
        w.packet(
            1_700_000_000_123_456,
            &tcp_frame([1, 1, 1, 1], [2, 2, 2, 2], 5, 80, 2, b""),
        )
        .unwrap();
        let bytes = w.finish().unwrap();
        let mut r =
            super::super::CaptureReader::new(Box::new(std::io::Cursor::new(bytes))).unwrap();
        let p = r.next_packet().unwrap().unwrap();
        assert_eq!(p.ts_us, 1_700_000_000_123_456);
        assert_eq!(p.data.len(), 54);
        assert!(r.next_packet().unwrap().is_none());
    }
}
