//! The hash of an encoded key: the same in every process (no per-process seed), so a
//! key hashes to the same slot whoever inserted it.
//!
//! Multiply-rotate over 8-byte words, then the murmur3 finaliser so that both the low
//! bits (the slot index) and the high bits (the slot word's tag) depend on every input
//! bit. Not DoS-resistant: processes sharing a dict already trust each other's keys.

const K: u64 = 0x9E37_79B9_7F4A_7C15;

/// Hash `bytes`.
#[inline]
pub(crate) fn hash(bytes: &[u8]) -> u64 {
    let mut h = (bytes.len() as u64).wrapping_mul(K);
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        h = (h ^ u64::from_le_bytes(b)).wrapping_mul(K).rotate_left(29);
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut b = [0u8; 8];
        b[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(b)).wrapping_mul(K).rotate_left(29);
    }
    fmix64(h)
}

#[inline]
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::hash;

    #[test]
    fn length_and_content_both_count() {
        assert_ne!(hash(b""), hash(b"\0"));
        assert_ne!(hash(b"\0"), hash(b"\0\0"));
        assert_ne!(hash(b"abcdefgh1"), hash(b"abcdefgh2"));
        assert_eq!(hash(b"same"), hash(b"same"));
    }

    #[test]
    fn sequential_keys_spread_over_low_and_high_bits() {
        let mut low = std::collections::HashSet::new();
        let mut high = std::collections::HashSet::new();
        for i in 0u64..1024 {
            let h = hash(&i.to_le_bytes());
            low.insert(h & 1023);
            high.insert(h >> 54);
        }
        // A uniform hash fills about 63% of 1024 buckets with 1024 keys.
        assert!(low.len() > 550, "{}", low.len());
        assert!(high.len() > 550, "{}", high.len());
    }
}
