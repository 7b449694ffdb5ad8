//! The 256-byte header at the start of every shmkit segment (docs/memory-layout.md).

use bytemuck::{Pod, Zeroable};

use crate::Error;
use crate::kind::{FP_NAME_LEN, Kind, TypeFingerprint};

/// `b"SHMKIT\0\x01"` read as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"SHMKIT\0\x01");
/// Version of the header and of the layouts built on it.
pub const LAYOUT_VERSION: u32 = 4;
/// Value of `ready` once the creator has finished initialising ("REDY").
pub(crate) const READY: u32 = u32::from_le_bytes(*b"REDY");
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

/// What an opener asks a header for: a kind and a payload type, each optional (`None`:
/// any).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Wanted {
    pub kind: Option<Kind>,
    pub fingerprint: Option<TypeFingerprint>,
}

/// Why [`Header::validate`] refused a header; [`Refusal::into_error`] names the segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The bytes do not describe a valid shmkit segment.
    Corrupted(String),
    /// A valid segment, but not the one asked for.
    Mismatch { expected: String, found: String },
}

impl Refusal {
    pub(crate) fn into_error(self, name: String) -> Error {
        match self {
            Refusal::Corrupted(what) => Error::Corrupted { name, what },
            Refusal::Mismatch { expected, found } => Error::Mismatch {
                name,
                expected,
                found,
            },
        }
    }
}

impl Header {
    /// Check a header copied out of a file of `len` bytes (header included) against
    /// DESIGN rule 3 and against what the opener `wanted`; the segment's kind if it
    /// passes. Every field is untrusted here (DESIGN rule 2): a peer may have written
    /// anything. `ready` is the caller's business (it is read atomically, before the copy).
    pub(crate) fn validate(&self, len: usize, wanted: Wanted) -> Result<Kind, Refusal> {
        let corrupted = |what: String| Err(Refusal::Corrupted(what));
        if self.magic != MAGIC {
            return corrupted(format!(
                "not a shmkit segment (magic {:#018x}, expected {MAGIC:#018x})",
                self.magic
            ));
        }
        if self.version != LAYOUT_VERSION {
            return Err(Refusal::Mismatch {
                expected: format!("layout version {LAYOUT_VERSION}"),
                found: format!("layout version {}", self.version),
            });
        }
        let Some(kind) = Kind::from_code(self.kind) else {
            if let Some(name) = Kind::retired_name(self.kind) {
                return corrupted(format!(
                    "kind code {} ({name}) is retired: no version of shmkit creates it",
                    self.kind
                ));
            }
            return corrupted(format!("unknown kind code {}", self.kind));
        };
        let available = len.saturating_sub(HEADER_SIZE);
        if len < HEADER_SIZE || self.payload_size > available as u64 {
            return corrupted(format!(
                "header says {} payload bytes but the file holds only {available}",
                self.payload_size
            ));
        }
        if self.type_name_len as usize > FP_NAME_LEN {
            return corrupted(format!(
                "type name length {} exceeds {FP_NAME_LEN}",
                self.type_name_len
            ));
        }
        let found_fp = self.fingerprint();
        let kind_bad = wanted.kind.is_some_and(|k| k != kind);
        let fp_bad = wanted.fingerprint.is_some_and(|fp| fp != found_fp);
        if !kind_bad && !fp_bad {
            return Ok(kind);
        }
        // Say what was asked for, and only that: an opener that asked for a kind and no
        // type (an `Event`, a `Mutex`) is not told it wanted the type it found.
        let (mut expected, mut found) = (
            describe(wanted.kind.unwrap_or(kind), wanted.fingerprint.as_ref()),
            describe(kind, Some(&found_fp)),
        );
        if expected == found {
            // Same kind, name, size and alignment: only the hash of the full type path
            // differs (a name cut at 48 bytes, or two crates' types of one name).
            let want = wanted.fingerprint.unwrap_or(found_fp);
            expected.push_str(&format!(", type hash {:#018x}", want.hash));
            found.push_str(&format!(", type hash {:#018x}", found_fp.hash));
        }
        Err(Refusal::Mismatch { expected, found })
    }
}

/// `kind Queue<u64 (8 bytes, align 8)> layout 4`, or `kind Event layout 4` without a type.
fn describe(kind: Kind, fingerprint: Option<&TypeFingerprint>) -> String {
    match fingerprint.filter(|fp| !fp.is_none()) {
        Some(fp) => format!("kind {kind}<{fp}> layout {LAYOUT_VERSION}"),
        None => format!("kind {kind} layout {LAYOUT_VERSION}"),
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

    fn header(kind: Kind, fp: TypeFingerprint, payload: u64) -> Header {
        let mut h = Header::zeroed();
        h.magic = MAGIC;
        h.version = LAYOUT_VERSION;
        h.kind = kind.code();
        h.payload_size = payload;
        h.ready = READY;
        h.type_size = fp.size;
        h.type_align = fp.align;
        h.type_hash = fp.hash;
        h.type_name_len = fp.name_len;
        h.type_name = fp.name;
        h
    }

    fn wanted(kind: Option<Kind>, fp: Option<TypeFingerprint>) -> Wanted {
        Wanted {
            kind,
            fingerprint: fp,
        }
    }

    fn corrupted(r: Result<Kind, Refusal>) -> String {
        match r {
            Err(Refusal::Corrupted(what)) => what,
            other => panic!("expected Corrupted, got {other:?}"),
        }
    }

    fn mismatch(r: Result<Kind, Refusal>) -> (String, String) {
        match r {
            Err(Refusal::Mismatch { expected, found }) => (expected, found),
            other => panic!("expected Mismatch, got {other:?}"),
        }
    }

    #[test]
    fn a_good_header_passes_with_or_without_wishes() {
        let h = header(Kind::Value, TypeFingerprint::of::<u64>(), 8);
        let len = HEADER_SIZE + 4096;
        assert_eq!(h.validate(len, Wanted::default()), Ok(Kind::Value));
        let exact = wanted(Some(Kind::Value), Some(TypeFingerprint::of::<u64>()));
        assert_eq!(h.validate(len, exact), Ok(Kind::Value));
        assert_eq!(h.validate(HEADER_SIZE + 8, exact), Ok(Kind::Value));
    }

    #[test]
    fn each_broken_field_is_named() {
        let good = header(Kind::Queue, TypeFingerprint::NONE, 64);
        let len = HEADER_SIZE + 64;
        let mut h = good;
        h.magic = 0x1122_3344_5566_7788;
        assert!(
            corrupted(h.validate(len, Wanted::default()))
                .starts_with("not a shmkit segment (magic 0x1122334455667788")
        );
        let mut h = good;
        h.version = 99;
        assert_eq!(
            mismatch(h.validate(len, Wanted::default())),
            ("layout version 4".into(), "layout version 99".into())
        );
        let mut h = good;
        h.kind = 999;
        assert_eq!(
            corrupted(h.validate(len, Wanted::default())),
            "unknown kind code 999"
        );
        let mut h = good;
        h.kind = 16;
        assert_eq!(
            corrupted(h.validate(len, Wanted::default())),
            "kind code 16 (Pool) is retired: no version of shmkit creates it"
        );
        let mut h = good;
        h.payload_size = 65;
        assert_eq!(
            corrupted(h.validate(len, Wanted::default())),
            "header says 65 payload bytes but the file holds only 64"
        );
        let mut h = good;
        h.type_name_len = 49;
        assert_eq!(
            corrupted(h.validate(len, Wanted::default())),
            "type name length 49 exceeds 48"
        );
    }

    #[test]
    fn a_file_shorter_than_the_header_is_refused_not_underflowed() {
        let h = header(Kind::Bytes, TypeFingerprint::NONE, 0);
        assert!(corrupted(h.validate(HEADER_SIZE - 1, Wanted::default())).contains("holds only 0"));
    }

    /// Issue 15: opening a `Value<u64>` as an `Event` said "you asked for kind
    /// Event<u64 (8 bytes, align 8)>" — an Event has no type.
    #[test]
    fn an_untyped_wish_is_not_given_the_found_type() {
        let h = header(Kind::Value, TypeFingerprint::of::<u64>(), 8);
        let (expected, found) =
            mismatch(h.validate(HEADER_SIZE + 8, wanted(Some(Kind::Event), None)));
        assert_eq!(expected, "kind Event layout 4");
        assert_eq!(found, "kind Value<u64 (8 bytes, align 8)> layout 4");
    }

    #[test]
    fn a_type_mismatch_names_both_types() {
        let h = header(Kind::Value, TypeFingerprint::of::<u64>(), 8);
        let want = wanted(Some(Kind::Value), Some(TypeFingerprint::of::<u32>()));
        let (expected, found) = mismatch(h.validate(HEADER_SIZE + 8, want));
        assert_eq!(expected, "kind Value<u32 (4 bytes, align 4)> layout 4");
        assert_eq!(found, "kind Value<u64 (8 bytes, align 8)> layout 4");
        // A type but no kind: the kind found is assumed.
        let want = wanted(None, Some(TypeFingerprint::of::<u32>()));
        let (expected, _) = mismatch(h.validate(HEADER_SIZE + 8, want));
        assert_eq!(expected, "kind Value<u32 (4 bytes, align 4)> layout 4");
    }

    #[test]
    fn types_that_print_alike_are_told_apart_by_their_hash() {
        let fp = TypeFingerprint::of::<u64>();
        let h = header(Kind::Value, fp, 8);
        let other = TypeFingerprint {
            hash: fp.hash ^ 1,
            ..fp
        };
        let (expected, found) =
            mismatch(h.validate(HEADER_SIZE + 8, wanted(Some(Kind::Value), Some(other))));
        assert!(
            expected.ends_with(&format!("type hash {:#018x}", fp.hash ^ 1)),
            "{expected}"
        );
        assert!(
            found.ends_with(&format!("type hash {:#018x}", fp.hash)),
            "{found}"
        );
    }

    proptest::proptest! {
        /// Any bytes at all, any file length: `validate` answers, never panics, and
        /// what it accepts fits the file.
        #[test]
        #[cfg_attr(miri, ignore)] // proptest persists failures to files
        fn validate_never_panics_and_accepts_only_what_fits(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, HEADER_SIZE),
            len in 0usize..(1 << 20),
            good_prefix: bool,
        ) {
            let mut h: Header = bytemuck::pod_read_unaligned(&bytes);
            if good_prefix {
                h.magic = MAGIC;
                h.version = LAYOUT_VERSION;
                h.kind %= 20;
                h.payload_size %= 1 << 20;
                h.type_name_len %= 64;
            }
            if let Ok(kind) = h.validate(len, Wanted::default()) {
                proptest::prop_assert_eq!(Some(kind), Kind::from_code(h.kind));
                proptest::prop_assert!(len >= HEADER_SIZE);
                proptest::prop_assert!(h.payload_size <= (len - HEADER_SIZE) as u64);
                proptest::prop_assert!(h.type_name_len as usize <= FP_NAME_LEN);
            }
        }
    }
}
