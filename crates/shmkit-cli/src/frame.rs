//! Length-prefixed frames over a byte stream (a pipe or a socket): the way a careful pipe
//! user moves messages, and the baseline every shmkit bench compares against.
//!
//! A frame is a `u32` little-endian payload length followed by the payload, written with
//! one `write_all` of a reused buffer (one syscall per message where the stream allows
//! it) and read through a [`BUF_CAPACITY`] `BufReader`. A caller may reserve length
//! values as control words (`shmkit bench` ends a run with a zero length; the criterion
//! benches use `u32::MAX` as a sync frame) and write them with [`write_control`].
//!
//! This file is the one place that knows the format. Besides `shmkit bench`, the criterion
//! benches (`benches/support/mod.rs`, which `benches/process.rs`'s one-shot argument
//! through a child's stdin uses too) and the peers bench (`benches/peers`) include it by
//! path, so the baseline is the same byte for byte everywhere without making the `shmkit`
//! binary depend on bench code.

use std::io::{self, Read, Write};

/// Size of the `BufReader` a receiver reads frames through.
pub(crate) const BUF_CAPACITY: usize = 1 << 16;

/// Bytes of the length header.
pub(crate) const HEADER: usize = 4;

/// Put one frame for `payload` into `frame` (cleared first): header, then payload.
pub(crate) fn encode(frame: &mut Vec<u8>, payload: &[u8]) {
    let len = u32::try_from(payload.len()).expect("a frame's payload fits in u32");
    frame.clear();
    frame.reserve(HEADER + payload.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(payload);
}

/// Write one frame for `payload` with a single `write_all`, reusing `frame` as the buffer.
pub(crate) fn write(w: &mut impl Write, frame: &mut Vec<u8>, payload: &[u8]) -> io::Result<()> {
    encode(frame, payload);
    w.write_all(frame)
}

/// Write a bare length word with no payload: a control frame such as "end" or "sync".
pub(crate) fn write_control(w: &mut impl Write, word: u32) -> io::Result<()> {
    w.write_all(&word.to_le_bytes())
}

/// Read the next frame's length word.
pub(crate) fn read_len(r: &mut impl Read) -> io::Result<u32> {
    let mut len = [0u8; HEADER];
    r.read_exact(&mut len)?;
    Ok(u32::from_le_bytes(len))
}

/// Read a frame's `len` payload bytes into `payload` (resized to `len`).
pub(crate) fn read_payload(r: &mut impl Read, len: u32, payload: &mut Vec<u8>) -> io::Result<()> {
    payload.resize(len as usize, 0);
    r.read_exact(payload)
}

/// Read a frame's `len` payload bytes into `frame` behind its header, so that `frame`
/// is the whole frame again, ready to be written back as it is (an echo).
pub(crate) fn read_whole(r: &mut impl Read, len: u32, frame: &mut Vec<u8>) -> io::Result<()> {
    frame.clear();
    frame.extend_from_slice(&len.to_le_bytes());
    frame.resize(HEADER + len as usize, 0);
    r.read_exact(&mut frame[HEADER..])
}
