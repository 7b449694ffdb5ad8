//! The 256-byte header at the start of every shmkit segment (docs/memory-layout.md).

use bytemuck::{Pod, Zeroable};

use crate::kind::{FP_NAME_LEN, TypeFingerprint};

/// `b"SHMKIT\0\x01"` read as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"SHMKIT\0\x01");
/// Version of the header and of the layouts built on it.
pub const LAYOUT_VERSION: u32 = 2;
/// Value of `ready` once the creator has finished initialising ("REDY").
pub const READY: u32 = u32::from_le_bytes(*b"REDY");
/// Bytes before the payload; a multiple of 128 so payload structures can be cache-padded.
pub const HEADER_SIZE: usize = 256;
/// Offset of the `ready` word inside the header.
pub(crate) const READY_OFFSET: usize = 28;

/// The header as plain data. `ready` is accessed through an `AtomicU32` at
/// [`READY_OFFSET`]; every other field is written once by the creator before `ready`
/// is published with Release, and copied out by openers after an Acquire load of it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct Header {
    pub magic: u64,
    pub version: u32,
    pub kind: u32,
    pub payload_size: u64,
    pub creator_pid: u32,
    pub ready: u32,
    pub creator_start: u64,
    pub created_unix: u64,
    pub type_size: u32,
    pub type_align: u32,
    pub type_hash: u64,
    pub type_name_len: u32,
    pub flags: u32,
    pub type_name: [u8; FP_NAME_LEN],
    pub reserved: [u8; 136],
}

const _: () = assert!(size_of::<Header>() == HEADER_SIZE);
const _: () = assert!(align_of::<Header>() == 8);
const _: () = assert!(std::mem::offset_of!(Header, ready) == READY_OFFSET);
const _: () = assert!(HEADER_SIZE.is_multiple_of(128));

impl Header {
    pub(crate) fn fingerprint(&self) -> TypeFingerprint {
        TypeFingerprint {
            name: self.type_name,
            name_len: self.type_name_len.min(FP_NAME_LEN as u32),
            size: self.type_size,
            align: self.type_align,
            hash: self.type_hash,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    /// The offsets docs/memory-layout.md documents, byte by byte.
    #[test]
    fn field_offsets_match_the_documented_layout() {
        assert_eq!(offset_of!(Header, magic), 0);
        assert_eq!(offset_of!(Header, version), 8);
        assert_eq!(offset_of!(Header, kind), 12);
        assert_eq!(offset_of!(Header, payload_size), 16);
        assert_eq!(offset_of!(Header, creator_pid), 24);
        assert_eq!(offset_of!(Header, ready), 28);
        assert_eq!(offset_of!(Header, creator_start), 32);
        assert_eq!(offset_of!(Header, created_unix), 40);
        assert_eq!(offset_of!(Header, type_size), 48);
        assert_eq!(offset_of!(Header, type_align), 52);
        assert_eq!(offset_of!(Header, type_hash), 56);
        assert_eq!(offset_of!(Header, type_name_len), 64);
        assert_eq!(offset_of!(Header, flags), 68);
        assert_eq!(offset_of!(Header, type_name), 72);
        assert_eq!(offset_of!(Header, reserved), 120);
        assert_eq!(MAGIC.to_le_bytes(), *b"SHMKIT\0\x01");
        assert_eq!(READY, 0x5944_4552);
    }

    #[test]
    fn a_hostile_type_name_length_is_clamped() {
        let mut h = Header::zeroed();
        h.type_name_len = u32::MAX;
        h.type_name = [b'x'; FP_NAME_LEN];
        assert_eq!(h.fingerprint().name().len(), FP_NAME_LEN);
    }
}
