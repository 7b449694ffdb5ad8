use std::fmt;

/// What a segment holds. Written in the header by the creator and checked by every open,
/// so a `Value<u32>` is never opened as a ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// Plain bytes ([`Segment::create`](crate::Segment::create)).
    Bytes,
    /// A shared `Value<T>`.
    Value,
    /// A shared `Array<T>`.
    Array,
    /// A robust cross-process mutex.
    Mutex,
    /// A re-entrant lock.
    RLock,
    /// A condition variable.
    Condvar,
    /// An event flag.
    Event,
    /// A counting semaphore.
    Semaphore,
    /// A barrier.
    Barrier,
    /// A fixed-capacity shared map.
    Dict,
    /// A single-producer single-consumer byte ring.
    SpscRing,
    /// A multi-producer multi-consumer queue of fixed-size slots.
    MpmcQueue,
    /// A typed `Queue<T>`.
    Queue,
    /// A duplex `Pipe`.
    Pipe,
    /// An application-defined kind.
    Custom(u32),
}

const CUSTOM_BASE: u32 = 0x1000;

/// Codes of kinds that no version of shmkit creates any more; never reused for another
/// kind, so a segment carrying one is refused by name rather than misread.
const RETIRED: [(u32, &str); 2] = [(15, "ProcessPayload"), (16, "Pool")];

impl Kind {
    /// The number stored in the header.
    pub fn code(self) -> u32 {
        match self {
            Kind::Bytes => 1,
            Kind::Value => 2,
            Kind::Array => 3,
            Kind::Mutex => 4,
            Kind::RLock => 5,
            Kind::Condvar => 6,
            Kind::Event => 7,
            Kind::Semaphore => 8,
            Kind::Barrier => 9,
            Kind::Dict => 10,
            Kind::SpscRing => 11,
            Kind::MpmcQueue => 12,
            Kind::Queue => 13,
            Kind::Pipe => 14,
            // 15 and 16 are retired (see `RETIRED`).
            Kind::Custom(n) => CUSTOM_BASE.saturating_add(n),
        }
    }

    /// The kind for a header code, `None` for a code this version does not know (including
    /// the retired codes 15 and 16, which no version of shmkit creates).
    pub fn from_code(code: u32) -> Option<Kind> {
        Some(match code {
            1 => Kind::Bytes,
            2 => Kind::Value,
            3 => Kind::Array,
            4 => Kind::Mutex,
            5 => Kind::RLock,
            6 => Kind::Condvar,
            7 => Kind::Event,
            8 => Kind::Semaphore,
            9 => Kind::Barrier,
            10 => Kind::Dict,
            11 => Kind::SpscRing,
            12 => Kind::MpmcQueue,
            13 => Kind::Queue,
            14 => Kind::Pipe,
            n if n >= CUSTOM_BASE => Kind::Custom(n - CUSTOM_BASE),
            _ => return None,
        })
    }

    /// The name a retired code once had (`Some("Pool")` for 16), for the open error.
    pub(crate) fn retired_name(code: u32) -> Option<&'static str> {
        RETIRED.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Custom(n) => write!(f, "Custom({n})"),
            other => fmt::Debug::fmt(other, f),
        }
    }
}

/// Name, size and alignment of the type a segment holds, so that an opener asking for a
/// different `T` gets a [`Mismatch`](crate::Error::Mismatch) instead of reinterpreted bytes.
///
/// The hash covers the whole of [`std::any::type_name`]; the stored name keeps its first
/// 48 bytes for messages. Type names are stable for one build of one source tree, which
/// is what processes sharing a segment run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TypeFingerprint {
    pub(crate) name: [u8; FP_NAME_LEN],
    pub(crate) name_len: u32,
    pub(crate) size: u32,
    pub(crate) align: u32,
    pub(crate) hash: u64,
}

/// Bytes of the type name kept in the header.
pub(crate) const FP_NAME_LEN: usize = 48;

impl TypeFingerprint {
    /// No type: the segment holds untyped bytes, and an opener's check is skipped.
    pub const NONE: TypeFingerprint = TypeFingerprint {
        name: [0; FP_NAME_LEN],
        name_len: 0,
        size: 0,
        align: 0,
        hash: 0,
    };

    /// The fingerprint of `T`.
    ///
    /// ```
    /// use shmkit_segment::TypeFingerprint;
    /// let fp = TypeFingerprint::of::<u64>();
    /// assert_eq!(fp.name(), "u64");
    /// assert_eq!((fp.size(), fp.align()), (8, 8));
    /// assert_ne!(fp, TypeFingerprint::of::<i64>());
    /// ```
    pub fn of<T: 'static>() -> TypeFingerprint {
        let full = std::any::type_name::<T>();
        let mut name = [0u8; FP_NAME_LEN];
        let mut n = full.len().min(FP_NAME_LEN);
        while !full.is_char_boundary(n) {
            n -= 1;
        }
        name[..n].copy_from_slice(&full.as_bytes()[..n]);
        TypeFingerprint {
            name,
            name_len: n as u32,
            size: size_of::<T>() as u32,
            align: align_of::<T>() as u32,
            hash: fnv1a(full.as_bytes()),
        }
    }

    /// The type's name (possibly truncated to 48 bytes); empty for [`NONE`](Self::NONE).
    pub fn name(&self) -> &str {
        let n = (self.name_len as usize).min(FP_NAME_LEN);
        std::str::from_utf8(&self.name[..n]).unwrap_or("<non-utf8 type name>")
    }

    /// `size_of::<T>()`.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// `align_of::<T>()`.
    pub fn align(&self) -> u32 {
        self.align
    }

    /// Whether this is [`NONE`](Self::NONE).
    pub fn is_none(&self) -> bool {
        *self == TypeFingerprint::NONE
    }
}

impl fmt::Display for TypeFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_none() {
            f.write_str("untyped bytes")
        } else {
            write!(
                f,
                "{} ({} bytes, align {})",
                self.name(),
                self.size,
                self.align
            )
        }
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NAMED: [Kind; 14] = [
        Kind::Bytes,
        Kind::Value,
        Kind::Array,
        Kind::Mutex,
        Kind::RLock,
        Kind::Condvar,
        Kind::Event,
        Kind::Semaphore,
        Kind::Barrier,
        Kind::Dict,
        Kind::SpscRing,
        Kind::MpmcQueue,
        Kind::Queue,
        Kind::Pipe,
    ];

    #[test]
    fn named_kinds_round_trip_and_codes_are_distinct() {
        let mut codes: Vec<u32> = NAMED.iter().map(|k| k.code()).collect();
        for k in NAMED {
            assert_eq!(Kind::from_code(k.code()), Some(k));
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), NAMED.len());
        assert_eq!(Kind::from_code(0), None, "0 is what a zeroed header holds");
        for (code, name) in RETIRED {
            assert_eq!(Kind::from_code(code), None, "retired code {code} ({name})");
            assert!(!codes.contains(&code), "retired code {code} reused");
            assert_eq!(Kind::retired_name(code), Some(name));
        }
        assert_eq!(Kind::retired_name(14), None);
        assert_eq!(Kind::SpscRing.to_string(), "SpscRing");
        assert_eq!(Kind::Custom(7).to_string(), "Custom(7)");
    }

    proptest! {
        #[test]
        #[cfg_attr(miri, ignore)] // proptest persists failures to files
        fn custom_kinds_round_trip(n in 0u32..(u32::MAX - CUSTOM_BASE)) {
            prop_assert_eq!(Kind::from_code(Kind::Custom(n).code()), Some(Kind::Custom(n)));
        }

        #[test]
        #[cfg_attr(miri, ignore)] // proptest persists failures to files
        fn every_code_decodes_to_itself_or_nothing(code: u32) {
            if let Some(k) = Kind::from_code(code) {
                prop_assert_eq!(k.code(), code);
            }
        }
    }

    #[test]
    fn fingerprints_name_size_align_and_truncate_long_names() {
        #[allow(dead_code)]
        struct AVeryLongTypeNameThatDoesNotFitInFortyEightBytesOfHeader([u64; 3]);
        let fp = TypeFingerprint::of::<AVeryLongTypeNameThatDoesNotFitInFortyEightBytesOfHeader>();
        assert_eq!(fp.name().len(), FP_NAME_LEN);
        assert_eq!((fp.size(), fp.align()), (24, 8));
        assert!(
            std::any::type_name::<AVeryLongTypeNameThatDoesNotFitInFortyEightBytesOfHeader>()
                .starts_with(fp.name())
        );
        assert_ne!(fp, TypeFingerprint::of::<[u64; 3]>());
        assert!(TypeFingerprint::NONE.is_none());
        assert_eq!(TypeFingerprint::NONE.to_string(), "untyped bytes");
        assert_eq!(
            TypeFingerprint::of::<u32>().to_string(),
            "u32 (4 bytes, align 4)"
        );
    }

    #[test]
    fn fnv1a_matches_the_published_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
