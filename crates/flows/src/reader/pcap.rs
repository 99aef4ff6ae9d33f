//! Classic pcap: a 24-byte global header, then 16-byte record headers and packet bytes.
//! Both byte orders, microsecond (`a1b2c3d4`) and nanosecond (`a1b23c4d`) resolution.

use std::io::Read;

use super::{MAX_RECORD, Packet, read_full, u32_at};
use crate::error::CaptureError;

/// Reads packets from a classic pcap stream.
pub struct PcapReader<R> {
    input: R,
    big_endian: bool,
    nanos: bool,
    link_type: u32,
    offset: u64,
    buf: Vec<u8>,
}

impl<R: Read> PcapReader<R> {
    /// Starts reading; the 4 magic bytes have been consumed already.
    pub fn after_magic(magic: [u8; 4], mut input: R) -> Result<Self, CaptureError> {
        let m = u32::from_le_bytes(magic);
        let (big_endian, nanos) = match m {
            0xa1b2_c3d4 => (false, false),
            0xa1b2_3c4d => (false, true),
            0xd4c3_b2a1 => (true, false),
            0x4d3c_b2a1 => (true, true),
            _ => return Err(CaptureError::UnknownFormat(magic)),
        };
        let mut rest = [0u8; 20];
        if !read_full(&mut input, &mut rest, 4)? {
            return Err(CaptureError::Corrupt {
                offset: 4,
                reason: "no pcap global header",
            });
        }
        // version (4), thiszone (4), sigfigs (4), snaplen (4), network (4)
        let link_type = u32_at(&rest, 16, big_endian) & 0x0fff_ffff;
        Ok(PcapReader {
            input,
            big_endian,
            nanos,
            link_type,
            offset: 24,
            buf: Vec::new(),
        })
    }

    /// The file's link type.
    pub fn link_type(&self) -> u32 {
        self.link_type
    }

    /// The next packet, `None` at the end.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        let mut head = [0u8; 16];
        if !read_full(&mut self.input, &mut head, self.offset)? {
            return Ok(None);
        }
        let secs = u32_at(&head, 0, self.big_endian);
        let frac = u32_at(&head, 4, self.big_endian);
        let caplen = u32_at(&head, 8, self.big_endian) as usize;
        let orig_len = u32_at(&head, 12, self.big_endian);
        if caplen > MAX_RECORD {
            return Err(CaptureError::Corrupt {
                offset: self.offset,
                reason: "record length too large",
            });
        }
        self.buf.resize(caplen, 0);
        if !read_full(&mut self.input, &mut self.buf, self.offset)? && caplen > 0 {
            return Err(CaptureError::Corrupt {
                offset: self.offset,
                reason: "file ends inside a record",
            });
        }
        self.offset += 16 + caplen as u64;
        let frac_us = if self.nanos {
            i64::from(frac) / 1000
        } else {
            i64::from(frac)
        };
        Ok(Some(Packet {
            ts_us: i64::from(secs) * 1_000_000 + frac_us,
            link_type: self.link_type,
            orig_len,
            data: &self.buf,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(big: bool, nanos: bool, packets: &[(&[u8], u32, u32)]) -> Vec<u8> {
        let w32 = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let w16 = |v: u16| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut out = Vec::new();
        out.extend(w32(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
        out.extend(w16(2));
        out.extend(w16(4));
        out.extend(w32(0));
        out.extend(w32(0));
        out.extend(w32(65535));
        out.extend(w32(1));
        for (data, secs, frac) in packets {
            out.extend(w32(*secs));
            out.extend(w32(*frac));
            out.extend(w32(data.len() as u32));
            out.extend(w32(data.len() as u32));
            out.extend_from_slice(data);
        }
        out
    }

    fn read_all(bytes: Vec<u8>) -> Result<Vec<(i64, Vec<u8>)>, CaptureError> {
        let mut magic = [0u8; 4];
        magic.copy_from_slice(&bytes[..4]);
        let mut r = PcapReader::after_magic(magic, std::io::Cursor::new(bytes[4..].to_vec()))?;
        let mut out = Vec::new();
        while let Some(p) = r.next_packet()? {
            out.push((p.ts_us, p.data.to_vec()));
        }
        Ok(out)
    }

    #[test]
    fn reads_both_byte_orders_and_resolutions() {
        for big in [false, true] {
            for nanos in [false, true] {
                let frac = if nanos { 5_000_000 } else { 5_000 };
                let got = read_all(file(big, nanos, &[(b"abc", 10, frac), (b"", 11, 0)])).unwrap();
                assert_eq!(
                    got,
                    vec![(10_005_000, b"abc".to_vec()), (11_000_000, vec![])],
                    "big={big} nanos={nanos}"
                );
            }
        }
    }

    #[test]
    fn truncated_record_is_an_error_not_a_panic() {
        let full = file(false, false, &[(b"abcdef", 1, 0)]);
        for cut in 4..full.len() {
            let r = read_all(full[..cut].to_vec());
            if cut == 24 {
                assert!(r.unwrap().is_empty());
            } else {
                assert!(r.is_err(), "cut at {cut}");
            }
        }
    }

    #[test]
    fn absurd_length_is_refused() {
        let mut f = file(false, false, &[(b"a", 1, 0)]);
        f[24 + 8..24 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(read_all(f), Err(CaptureError::Corrupt { .. })));
    }
}
