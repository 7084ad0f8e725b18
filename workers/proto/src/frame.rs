//! Frame layout on the worker's stdin/stdout.
//!
//! ```text
//! magic "SOTW" | version u16 LE | header_len u32 LE | body_len u32 LE | header (JSON) | body (raw bytes)
//! ```
//! The header is a small JSON message; bulk data (audio) travels in the body as raw bytes so a
//! 10 s utterance is 640 kB, not megabytes of JSON numbers. The magic on every frame catches a
//! native library that writes to stdout behind our back instead of silently desynchronising.

use std::io::{self, Read, Write};

use serde::{de::DeserializeOwned, Serialize};

/// Bumped on any incompatible change to the frame layout or the messages.
pub const PROTOCOL_VERSION: u16 = 1;
const MAGIC: &[u8; 4] = b"SOTW";
const PREFIX_LEN: usize = 14;
const MAX_HEADER: u32 = 16 << 20;
const MAX_BODY: u32 = 256 << 20;

/// A decoded frame: a typed header and its raw body.
#[derive(Debug)]
pub struct Frame<T> {
    pub header: T,
    pub body: Vec<u8>,
}

/// Writes one frame and flushes, so the peer sees it at once.
pub fn write_frame<W: Write, T: Serialize>(w: &mut W, header: &T, body: &[u8]) -> io::Result<()> {
    let header = serde_json::to_vec(header).map_err(io::Error::other)?;
    let header_len = u32::try_from(header.len()).ok().filter(|n| *n <= MAX_HEADER);
    let body_len = u32::try_from(body.len()).ok().filter(|n| *n <= MAX_BODY);
    let (Some(header_len), Some(body_len)) = (header_len, body_len) else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "frame too large"));
    };
    let mut prefix = [0u8; PREFIX_LEN];
    prefix[..4].copy_from_slice(MAGIC);
    prefix[4..6].copy_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    prefix[6..10].copy_from_slice(&header_len.to_le_bytes());
    prefix[10..14].copy_from_slice(&body_len.to_le_bytes());
    w.write_all(&prefix)?;
    w.write_all(&header)?;
    w.write_all(body)?;
    w.flush()
}

/// Reads one frame. `Ok(None)` is a clean end of stream between frames.
pub fn read_frame<R: Read, T: DeserializeOwned>(r: &mut R) -> io::Result<Option<Frame<T>>> {
    let mut prefix = [0u8; PREFIX_LEN];
    let mut filled = 0;
    while filled < PREFIX_LEN {
        match r.read(&mut prefix[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if &prefix[..4] != MAGIC {
        return Err(invalid(format!(
            "bad frame magic {:?} (something else wrote to the protocol stream)",
            String::from_utf8_lossy(&prefix[..4])
        )));
    }
    let version = u16::from_le_bytes([prefix[4], prefix[5]]);
    if version != PROTOCOL_VERSION {
        return Err(invalid(format!(
            "protocol version {version}, expected {PROTOCOL_VERSION} (worker and client built from different versions)"
        )));
    }
    let header_len = u32::from_le_bytes(prefix[6..10].try_into().unwrap());
    let body_len = u32::from_le_bytes(prefix[10..14].try_into().unwrap());
    if header_len > MAX_HEADER || body_len > MAX_BODY {
        return Err(invalid(format!("frame too large: header {header_len} B, body {body_len} B")));
    }
    let header = read_exactly(r, header_len)?;
    let body = read_exactly(r, body_len)?;
    let header = serde_json::from_slice(&header).map_err(|e| invalid(format!("undecodable frame header: {e}")))?;
    Ok(Some(Frame { header, body }))
}

/// Reads `len` bytes, growing the buffer only as they arrive: a prefix that claims the maximum
/// size and then stops costs what was sent, not 256 MB up front.
fn read_exactly<R: Read>(r: &mut R, len: u32) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity((len as usize).min(64 << 10));
    r.take(u64::from(len)).read_to_end(&mut buf)?;
    if buf.len() < len as usize {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(buf)
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Little-endian f32 PCM, the audio body encoding.
pub fn samples_to_bytes(samples: &[f32]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// Inverse of [`samples_to_bytes`]; a length that is not a multiple of 4 is an error.
pub fn bytes_to_samples(bytes: &[u8]) -> Result<Vec<f32>, String> {
    if bytes.len() % 4 != 0 {
        return Err(format!("audio body of {} bytes is not whole f32 samples", bytes.len()));
    }
    Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{Request, ToWorker};

    #[test]
    fn round_trip_keeps_header_and_body() {
        let samples = [0.0f32, -1.0, 0.5, f32::MIN_POSITIVE];
        let msg = ToWorker { id: 7, request: Request::Ping };
        let mut buf = Vec::new();
        write_frame(&mut buf, &msg, &samples_to_bytes(&samples)).unwrap();
        write_frame(&mut buf, &msg, &[]).unwrap();
        let mut r = buf.as_slice();
        let f: Frame<ToWorker> = read_frame(&mut r).unwrap().unwrap();
        assert_eq!(f.header.id, 7);
        assert_eq!(bytes_to_samples(&f.body).unwrap(), samples);
        let f: Frame<ToWorker> = read_frame(&mut r).unwrap().unwrap();
        assert!(f.body.is_empty());
        assert!(read_frame::<_, ToWorker>(&mut r).unwrap().is_none());
    }

    #[test]
    fn stray_stdout_text_is_detected() {
        let mut r: &[u8] = b"whisper_init: loading model\n";
        let err = read_frame::<_, ToWorker>(&mut r).unwrap_err();
        assert!(err.to_string().contains("bad frame magic"), "{err}");
    }

    #[test]
    fn truncated_frame_is_an_error_not_a_clean_end() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &ToWorker { id: 1, request: Request::Ping }, &[1, 2, 3, 4]).unwrap();
        buf.truncate(buf.len() - 2);
        let err = read_frame::<_, ToWorker>(&mut buf.as_slice()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn other_protocol_version_is_rejected() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &ToWorker { id: 1, request: Request::Ping }, &[]).unwrap();
        buf[4] = buf[4].wrapping_add(1);
        let err = read_frame::<_, ToWorker>(&mut buf.as_slice()).unwrap_err();
        assert!(err.to_string().contains("protocol version"), "{err}");
    }

    /// Hands out its bytes and remembers the largest buffer a read asked to fill.
    struct Spy<'a> {
        data: &'a [u8],
        largest: usize,
    }

    impl Read for Spy<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.largest = self.largest.max(buf.len());
            self.data.read(buf)
        }
    }

    /// A prefix claiming the largest allowed body, then 100 bytes: an EOF error, and the reader
    /// never prepared a buffer anywhere near the claimed 256 MB (it used to, before any byte came).
    #[test]
    fn a_huge_claimed_length_costs_only_what_arrives() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &ToWorker { id: 1, request: Request::Ping }, &[]).unwrap();
        buf[10..14].copy_from_slice(&MAX_BODY.to_le_bytes());
        buf.extend_from_slice(&[0; 100]);
        let mut spy = Spy { data: &buf, largest: 0 };
        let err = read_frame::<_, ToWorker>(&mut spy).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(spy.largest <= 1 << 20, "a read into a {} B buffer", spy.largest);
        let mut r: &[u8] = &[7u8; 10];
        assert_eq!(read_exactly(&mut r, 4).unwrap(), [7; 4]);
        assert_eq!(r.len(), 6, "reads exactly the claimed length, not beyond");
    }

    /// Property: a valid stream cut at any byte reads as whole frames, then a clean end exactly
    /// at a frame boundary and an error anywhere else; never a panic, never a frame too many.
    #[test]
    fn every_truncation_is_an_error_or_a_clean_end() {
        let mut stream = Vec::new();
        let opts = crate::messages::TranscribeOptions::default();
        write_frame(
            &mut stream,
            &ToWorker { id: 1, request: Request::Transcribe { options: opts } },
            &samples_to_bytes(&[0.25; 5]),
        )
        .unwrap();
        let boundary = stream.len();
        write_frame(&mut stream, &ToWorker { id: 2, request: Request::Ping }, &[]).unwrap();
        for cut in 0..=stream.len() {
            let mut r = &stream[..cut];
            let mut frames = 0;
            let end = loop {
                match read_frame::<_, ToWorker>(&mut r) {
                    Ok(Some(_)) => frames += 1,
                    other => break other.map(|_| ()),
                }
            };
            let whole = [0, boundary, stream.len()].contains(&cut);
            assert_eq!(end.is_ok(), whole, "cut at {cut}: {end:?}");
            assert_eq!(frames, usize::from(cut >= boundary) + usize::from(cut == stream.len()), "cut at {cut}");
        }
    }

    #[test]
    fn lengths_over_the_limits_are_refused_before_reading() {
        for (at, len) in [(6, MAX_HEADER + 1), (10, MAX_BODY + 1), (10, u32::MAX)] {
            let mut buf = Vec::new();
            write_frame(&mut buf, &ToWorker { id: 1, request: Request::Ping }, &[]).unwrap();
            buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
            let err = read_frame::<_, ToWorker>(&mut buf.as_slice()).unwrap_err();
            assert!(err.to_string().contains("frame too large"), "{err}");
        }
    }

    #[test]
    fn odd_audio_length_is_rejected() {
        assert!(bytes_to_samples(&[0, 0, 0]).is_err());
    }
}
