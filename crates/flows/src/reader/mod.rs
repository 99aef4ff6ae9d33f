//! Capture files: pcap and pcapng, chosen by their magic, optionally gzip-compressed.
//!
//! Both readers hand out one [`Packet`] at a time borrowing the reader's buffer, so
//! reading a file allocates once per size class, not once per packet. Record lengths are
//! bounded ([`MAX_RECORD`]) so a corrupt length cannot make us allocate gigabytes.

mod pcap;
mod pcapng;
mod writer;

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use crate::error::CaptureError;

pub use pcap::PcapReader;
pub use pcapng::PcapngReader;
pub use writer::{PcapWriter, tcp_frame, udp_frame, with_macs};

/// Largest record or block we accept (256 KiB snap length plus headers, and then some).
pub const MAX_RECORD: usize = 1 << 20;

/// Link-layer type numbers (LINKTYPE_*) we decode.
pub mod linktype {
    /// BSD loopback (4-byte address family header).
    pub const NULL: u32 = 0;
    /// Ethernet II (with 802.1Q/802.1ad tags).
    pub const ETHERNET: u32 = 1;
    /// Raw IP, version from the first nibble.
    pub const RAW: u32 = 101;
    /// Linux "cooked" capture v1 (SLL).
    pub const LINUX_SLL: u32 = 113;
    /// Raw IPv4.
    pub const IPV4: u32 = 228;
    /// Raw IPv6.
    pub const IPV6: u32 = 229;
    /// Linux "cooked" capture v2 (SLL2).
    pub const LINUX_SLL2: u32 = 276;
    /// OpenBSD loopback (same header as NULL, big-endian family).
    pub const LOOP: u32 = 108;
}

/// One captured packet.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// Capture time in microseconds since the Unix epoch.
    pub ts_us: i64,
    /// The link type of the interface it was captured on.
    pub link_type: u32,
    /// Length of the packet on the wire (may exceed `data.len()` when snapped).
    pub orig_len: u32,
    /// The captured bytes.
    pub data: &'a [u8],
}

/// Which container the file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Classic libpcap format.
    Pcap,
    /// pcapng.
    Pcapng,
}

/// Tells a capture's format from its first four bytes.
pub fn detect(magic: [u8; 4]) -> Option<Format> {
    match u32::from_le_bytes(magic) {
        0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 => Some(Format::Pcap),
        0x0a0d_0d0a => Some(Format::Pcapng),
        _ => None,
    }
}

/// A capture reader of either format.
pub enum CaptureReader {
    /// pcap.
    Pcap(PcapReader<Box<dyn Read + Send>>),
    /// pcapng.
    Pcapng(PcapngReader<Box<dyn Read + Send>>),
}

impl std::fmt::Debug for CaptureReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaptureReader::Pcap(_) => f.write_str("CaptureReader::Pcap"),
            CaptureReader::Pcapng(_) => f.write_str("CaptureReader::Pcapng"),
        }
    }
}

impl CaptureReader {
    /// Opens a file, unwrapping gzip when its magic says so.
    pub fn open(path: &Path) -> Result<CaptureReader, CaptureError> {
        let file = File::open(path)?;
        CaptureReader::new(Box::new(BufReader::with_capacity(1 << 16, file)))
    }

    /// Reads the magic from `input` and starts the matching reader.
    pub fn new(mut input: Box<dyn Read + Send>) -> Result<CaptureReader, CaptureError> {
        let mut magic = [0u8; 4];
        input.read_exact(&mut magic)?;
        if magic[0] == 0x1f && magic[1] == 0x8b {
            let chained = std::io::Cursor::new(magic.to_vec()).chain(input);
            let gz = flate2::read::MultiGzDecoder::new(chained);
            let mut inner: Box<dyn Read + Send> = Box::new(BufReader::with_capacity(1 << 16, gz));
            inner.read_exact(&mut magic)?;
            return CaptureReader::with_magic(magic, inner);
        }
        CaptureReader::with_magic(magic, input)
    }

    fn with_magic(
        magic: [u8; 4],
        input: Box<dyn Read + Send>,
    ) -> Result<CaptureReader, CaptureError> {
        match detect(magic) {
            Some(Format::Pcap) => Ok(CaptureReader::Pcap(PcapReader::after_magic(magic, input)?)),
            Some(Format::Pcapng) => Ok(CaptureReader::Pcapng(PcapngReader::after_magic(
                magic, input,
            )?)),
            None => Err(CaptureError::UnknownFormat(magic)),
        }
    }

    /// The container format.
    pub fn format(&self) -> Format {
        match self {
            CaptureReader::Pcap(_) => Format::Pcap,
            CaptureReader::Pcapng(_) => Format::Pcapng,
        }
    }

    /// The next packet, `None` at a clean end of file.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        match self {
            CaptureReader::Pcap(r) => r.next_packet(),
            CaptureReader::Pcapng(r) => r.next_packet(),
        }
    }
}

/// Reads exactly `buf.len()` bytes; `Ok(false)` when the stream ended before the first
/// byte (a clean end), an error when it ended part-way.
pub(crate) fn read_full<R: Read>(
    r: &mut R,
    buf: &mut [u8],
    offset: u64,
) -> Result<bool, CaptureError> {
    let mut done = 0;
    while done < buf.len() {
        let Some(rest) = buf.get_mut(done..) else {
            break;
        };
        match r.read(rest) {
            Ok(0) if done == 0 => return Ok(false),
            Ok(0) => {
                return Err(CaptureError::Corrupt {
                    offset,
                    reason: "file ends inside a record",
                });
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

/// Reads a `u32` in the file's byte order.
pub(crate) fn u32_at(b: &[u8], at: usize, big: bool) -> u32 {
    let mut x = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        x.copy_from_slice(s);
    }
    if big {
        u32::from_be_bytes(x)
    } else {
        u32::from_le_bytes(x)
    }
}

/// Reads a `u16` in the file's byte order.
pub(crate) fn u16_at(b: &[u8], at: usize, big: bool) -> u16 {
    let mut x = [0u8; 2];
    if let Some(s) = b.get(at..at + 2) {
        x.copy_from_slice(s);
    }
    if big {
        u16::from_be_bytes(x)
    } else {
        u16::from_le_bytes(x)
    }
}
