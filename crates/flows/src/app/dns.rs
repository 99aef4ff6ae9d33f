//! DNS (and mDNS, LLMNR) messages: the first question's name and type.

/// The first question of a DNS message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Question {
    pub name: String,
    pub qtype: u16,
}

/// Parses a DNS message's first question (following compression pointers, bounded);
/// `None` when it is not a plausible DNS message.
pub(crate) fn parse(b: &[u8]) -> Option<Question> {
    let qd = u16::from_be_bytes([*b.get(4)?, *b.get(5)?]);
    let opcode = (b.get(2)? >> 3) & 0x0f;
    if qd == 0 || qd > 64 || opcode > 6 {
        return None;
    }
    let (name, end) = read_name(b, 12)?;
    let qtype = u16::from_be_bytes([*b.get(end)?, *b.get(end + 1)?]);
    Some(Question { name, qtype })
}

/// Reads a (possibly compressed) name at `at`; returns it and the offset after it.
fn read_name(b: &[u8], mut at: usize) -> Option<(String, usize)> {
    let mut name = String::new();
    let mut end = None;
    for _ in 0..128 {
        let len = *b.get(at)?;
        match len {
            0 => {
                let after = end.unwrap_or(at + 1);
                if name.is_empty() {
                    name.push('.');
                }
                return Some((name, after));
            }
            l if l & 0xc0 == 0xc0 => {
                let ptr = (usize::from(l & 0x3f) << 8) | usize::from(*b.get(at + 1)?);
                if end.is_none() {
                    end = Some(at + 2);
                }
                if ptr >= at {
                    return None;
                }
                at = ptr;
            }
            l if l & 0xc0 == 0 => {
                let label = b.get(at + 1..at + 1 + usize::from(l))?;
                if !name.is_empty() {
                    name.push('.');
                }
                for &c in label {
                    if c.is_ascii_graphic() && c != b'.' && c != b'\\' {
                        name.push(c as char);
                    } else {
                        name.push_str(&format!("\\{c:03}"));
                    }
                }
                if name.len() > 1024 {
                    return None;
                }
                at += 1 + usize::from(l);
            }
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            m.push(l.len() as u8);
            m.extend(l.as_bytes());
        }
        m.push(0);
        m.extend(qtype.to_be_bytes());
        m.extend([0, 1]);
        m
    }

    #[test]
    fn first_question() {
        assert_eq!(
            parse(&query("www.wireshark.org", 1)),
            Some(Question {
                name: "www.wireshark.org".into(),
                qtype: 1
            })
        );
    }

    #[test]
    fn binary_labels_are_escaped_and_truncation_is_none() {
        let mut m = query("ab.c", 10);
        m[13] = 0;
        assert_eq!(parse(&m).unwrap().name, "\\000b.c");
        let q = query("example.com", 1);
        for cut in 0..q.len() - 2 {
            assert_eq!(parse(&q[..cut]), None, "cut {cut}");
        }
    }

    #[test]
    fn pointer_loops_end() {
        let mut m = vec![0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend([0xc0, 12, 0, 1]);
        assert_eq!(parse(&m), None);
    }
}
