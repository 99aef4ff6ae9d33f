//! pcapng: blocks of `type, total length, body, total length`. We read the Section
//! Header (byte order), Interface Descriptions (link type, snap length, `if_tsresol`),
//! Enhanced, Simple and obsolete Packet blocks; every other block is skipped by length.

use std::io::Read;

use super::{MAX_RECORD, Packet, read_full, u16_at, u32_at};
use crate::error::CaptureError;

const SHB: u32 = 0x0a0d_0d0a;
const IDB: u32 = 1;
const OPB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;

#[derive(Debug, Clone, Copy)]
struct Interface {
    link_type: u32,
    snap_len: u32,
    /// Timestamp units per second.
    units_per_sec: u64,
}

/// Where the packet found by a block scan is.
struct Found {
    start: usize,
    end: usize,
    ts_us: i64,
    link_type: u32,
    orig_len: u32,
}

/// Reads packets from a pcapng stream.
pub struct PcapngReader<R> {
    input: R,
    big_endian: bool,
    interfaces: Vec<Interface>,
    offset: u64,
    buf: Vec<u8>,
}

impl<R: Read> PcapngReader<R> {
    /// Starts reading; the 4 magic bytes (the first block's type) are consumed already.
    pub fn after_magic(_magic: [u8; 4], mut input: R) -> Result<Self, CaptureError> {
        let mut head = [0u8; 8];
        if !read_full(&mut input, &mut head, 4)? {
            return Err(CaptureError::Corrupt {
                offset: 4,
                reason: "no section header",
            });
        }
        let mut reader = PcapngReader {
            input,
            big_endian: false,
            interfaces: Vec::new(),
            offset: 0,
            buf: Vec::new(),
        };
        reader.start_section(head)?;
        Ok(reader)
    }

    /// Reads a section header whose type is consumed and whose next 8 bytes (length and
    /// byte-order magic) are in `head`.
    fn start_section(&mut self, head: [u8; 8]) -> Result<(), CaptureError> {
        let big_endian = match u32::from_le_bytes([head[4], head[5], head[6], head[7]]) {
            0x1a2b_3c4d => false,
            0x4d3c_2b1a => true,
            _ => {
                return Err(CaptureError::Corrupt {
                    offset: self.offset,
                    reason: "bad byte-order magic",
                });
            }
        };
        self.big_endian = big_endian;
        self.interfaces.clear();
        let total = u32_at(&head, 0, big_endian) as usize;
        if !(28..=MAX_RECORD).contains(&total) || !total.is_multiple_of(4) {
            return Err(CaptureError::Corrupt {
                offset: self.offset,
                reason: "bad section header length",
            });
        }
        let rest = total - 12;
        self.buf.resize(rest, 0);
        if !read_full(&mut self.input, &mut self.buf, self.offset)? {
            return Err(CaptureError::Corrupt {
                offset: self.offset,
                reason: "file ends inside a block",
            });
        }
        self.offset += total as u64;
        Ok(())
    }

    /// The next packet, `None` at the end.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        let Some(found) = self.next_packet_block()? else {
            return Ok(None);
        };
        let data = self.buf.get(found.start..found.end).unwrap_or(&[]);
        Ok(Some(Packet {
            ts_us: found.ts_us,
            link_type: found.link_type,
            orig_len: found.orig_len,
            data,
        }))
    }

    /// Reads blocks until a packet block; its data is `buf[start..end]`.
    fn next_packet_block(&mut self) -> Result<Option<Found>, CaptureError> {
        loop {
            let mut head = [0u8; 8];
            if !read_full(&mut self.input, &mut head, self.offset)? {
                return Ok(None);
            }
            let block_type = u32_at(&head, 0, self.big_endian);
            if u32::from_le_bytes([head[0], head[1], head[2], head[3]]) == SHB {
                let mut shb = [0u8; 8];
                shb[..4].copy_from_slice(&head[4..8]);
                if !read_full(&mut self.input, &mut shb[4..], self.offset)? {
                    return Err(CaptureError::Corrupt {
                        offset: self.offset,
                        reason: "file ends inside a block",
                    });
                }
                self.start_section(shb)?;
                continue;
            }
            let total = u32_at(&head, 4, self.big_endian) as usize;
            if !(12..=MAX_RECORD).contains(&total) || !total.is_multiple_of(4) {
                return Err(CaptureError::Corrupt {
                    offset: self.offset,
                    reason: "bad block length",
                });
            }
            self.buf.resize(total - 8, 0);
            if !read_full(&mut self.input, &mut self.buf, self.offset)? {
                return Err(CaptureError::Corrupt {
                    offset: self.offset,
                    reason: "file ends inside a block",
                });
            }
            self.offset += total as u64;
            let body_len = total - 12;
            match block_type {
                IDB => {
                    let iface = self.parse_idb(body_len);
                    self.interfaces.push(iface);
                }
                EPB | OPB => {
                    if body_len < 20 {
                        continue;
                    }
                    let big = self.big_endian;
                    let (iface_id, hi, lo, caplen, orig_len) = if block_type == EPB {
                        (
                            u32_at(&self.buf, 0, big) as usize,
                            u32_at(&self.buf, 4, big),
                            u32_at(&self.buf, 8, big),
                            u32_at(&self.buf, 12, big) as usize,
                            u32_at(&self.buf, 16, big),
                        )
                    } else {
                        (
                            usize::from(u16_at(&self.buf, 0, big)),
                            u32_at(&self.buf, 4, big),
                            u32_at(&self.buf, 8, big),
                            u32_at(&self.buf, 12, big) as usize,
                            u32_at(&self.buf, 16, big),
                        )
                    };
                    let Some(iface) = self.interfaces.get(iface_id).copied() else {
                        continue;
                    };
                    let caplen = caplen.min(body_len - 20);
                    let ts = (u64::from(hi) << 32) | u64::from(lo);
                    return Ok(Some(Found {
                        start: 20,
                        end: 20 + caplen,
                        ts_us: to_micros(ts, iface.units_per_sec),
                        link_type: iface.link_type,
                        orig_len,
                    }));
                }
                SPB => {
                    let Some(iface) = self.interfaces.first().copied() else {
                        continue;
                    };
                    if body_len < 4 {
                        continue;
                    }
                    let orig_len = u32_at(&self.buf, 0, self.big_endian);
                    let mut caplen = (orig_len as usize).min(body_len - 4);
                    if iface.snap_len > 0 {
                        caplen = caplen.min(iface.snap_len as usize);
                    }
                    // A simple packet block has no timestamp.
                    return Ok(Some(Found {
                        start: 4,
                        end: 4 + caplen,
                        ts_us: 0,
                        link_type: iface.link_type,
                        orig_len,
                    }));
                }
                _ => {}
            }
        }
    }

    fn parse_idb(&self, body_len: usize) -> Interface {
        let big = self.big_endian;
        let link_type = u32::from(u16_at(&self.buf, 0, big));
        let snap_len = u32_at(&self.buf, 4, big);
        let mut units_per_sec = 1_000_000u64;
        let mut at = 8;
        while at + 4 <= body_len {
            let code = u16_at(&self.buf, at, big);
            let len = usize::from(u16_at(&self.buf, at + 2, big));
            if code == 0 {
                break;
            }
            if code == 9
                && len >= 1
                && let Some(&v) = self.buf.get(at + 4)
            {
                let exp = u32::from(v & 0x7f);
                let per = if v & 0x80 != 0 {
                    2u64.checked_pow(exp)
                } else {
                    10u64.checked_pow(exp)
                };
                if let Some(per) = per.filter(|p| *p > 0) {
                    units_per_sec = per;
                }
            }
            at += 4 + len.div_ceil(4) * 4;
        }
        Interface {
            link_type,
            snap_len,
            units_per_sec,
        }
    }
}

fn to_micros(ts: u64, units_per_sec: u64) -> i64 {
    let us = if units_per_sec == 1_000_000 {
        ts
    } else {
        ((u128::from(ts) * 1_000_000) / u128::from(units_per_sec.max(1))) as u64
    };
    i64::try_from(us).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(kind: u32, body: &[u8]) -> Vec<u8> {
        let mut body = body.to_vec();
        while !body.len().is_multiple_of(4) {
            body.push(0);
        }
        let total = (body.len() + 12) as u32;
        let mut out = kind.to_le_bytes().to_vec();
        out.extend(total.to_le_bytes());
        out.extend(&body);
        out.extend(total.to_le_bytes());
        out
    }

    fn sample() -> Vec<u8> {
        let mut shb = 0x1a2b_3c4du32.to_le_bytes().to_vec();
        shb.extend(1u16.to_le_bytes());
        shb.extend(0u16.to_le_bytes());
        shb.extend((-1i64).to_le_bytes());
        let mut out = block(SHB, &shb);
        // Interface 0: Ethernet, microseconds. Interface 1: raw IP, nanoseconds.
        let mut idb0 = 1u16.to_le_bytes().to_vec();
        idb0.extend([0, 0]);
        idb0.extend(0u32.to_le_bytes());
        out.extend(block(IDB, &idb0));
        let mut idb1 = 101u16.to_le_bytes().to_vec();
        idb1.extend([0, 0]);
        idb1.extend(0u32.to_le_bytes());
        idb1.extend(9u16.to_le_bytes());
        idb1.extend(1u16.to_le_bytes());
        idb1.extend([9, 0, 0, 0]);
        idb1.extend([0, 0, 0, 0]);
        out.extend(block(IDB, &idb1));
        for (iface, ts, data) in [
            (0u32, 2_000_000u64, &b"eth"[..]),
            (1, 3_000_000_000, &b"rawip"[..]),
        ] {
            let mut epb = iface.to_le_bytes().to_vec();
            epb.extend(((ts >> 32) as u32).to_le_bytes());
            epb.extend((ts as u32).to_le_bytes());
            epb.extend((data.len() as u32).to_le_bytes());
            epb.extend((data.len() as u32).to_le_bytes());
            epb.extend(data);
            out.extend(block(EPB, &epb));
        }
        out.extend(block(5, b"statistics"));
        let mut spb = 4u32.to_le_bytes().to_vec();
        spb.extend(b"spb!");
        out.extend(block(SPB, &spb));
        out
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<(i64, u32, Vec<u8>)>, CaptureError> {
        let mut r = PcapngReader::after_magic([0; 4], std::io::Cursor::new(bytes[4..].to_vec()))?;
        let mut out = Vec::new();
        while let Some(p) = r.next_packet()? {
            out.push((p.ts_us, p.link_type, p.data.to_vec()));
        }
        Ok(out)
    }

    #[test]
    fn reads_interfaces_resolutions_and_block_kinds() {
        let got = read_all(&sample()).unwrap();
        assert_eq!(
            got,
            vec![
                (2_000_000, 1, b"eth".to_vec()),
                (3_000_000, 101, b"rawip".to_vec()),
                (0, 1, b"spb!".to_vec())
            ]
        );
    }

    #[test]
    fn every_truncation_is_an_error_or_a_clean_prefix() {
        let full = sample();
        for cut in 4..full.len() {
            // Never a panic; either an error or fewer packets.
            if let Ok(p) = read_all(&full[..cut]) {
                assert!(p.len() < 3, "cut {cut}");
            }
        }
    }

    #[test]
    fn packet_for_an_unknown_interface_is_skipped() {
        let mut f = sample();
        // Point the first EPB at interface 7.
        let epb_at = f.windows(4).position(|w| w == EPB.to_le_bytes()).unwrap();
        f[epb_at + 8..epb_at + 12].copy_from_slice(&7u32.to_le_bytes());
        let got = read_all(&f).unwrap();
        assert_eq!(got.len(), 2);
    }
}
