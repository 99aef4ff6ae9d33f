//! SSH identification banners (`SSH-2.0-OpenSSH_7.4`, RFC 4253 §4.2).

/// What the start of the stream said.
pub(crate) enum Banner {
    /// Starts like a banner; the line is not complete yet.
    Partial,
    /// The banner line, without CR/LF, at most 255 bytes.
    Line(String),
}

/// The banner at the start of `buf`, if it starts like one.
pub(crate) fn banner(buf: &[u8]) -> Option<Banner> {
    if buf.len() < 4 {
        return b"SSH-".starts_with(buf).then_some(Banner::Partial);
    }
    if !buf.starts_with(b"SSH-") {
        return None;
    }
    let Some(end) = buf.iter().position(|b| *b == b'\n') else {
        return (buf.len() < 256).then_some(Banner::Partial);
    };
    let line = buf.get(..end.min(255)).unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Some(Banner::Line(String::from_utf8_lossy(line).into_owned()))
}
