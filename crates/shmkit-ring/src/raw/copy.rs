//! Copying a message's bytes: the one `memcpy` spelling every ring path uses.

/// `dst.copy_from_slice(src)`, without a `memcpy` call for short slices: two
/// overlapping fixed-size moves cover any length up to 32 bytes, as a `memcpy` does
/// inside, and a call per small message costs more than the copy (the 8 B stream spent
/// about a sixth of its producer's time in the call). Panics if the lengths differ.
#[inline(always)]
pub(crate) fn copy_bytes(src: &[u8], dst: &mut [u8]) {
    let n = src.len();
    assert_eq!(n, dst.len(), "copy_bytes: lengths differ");
    match n {
        0 => {}
        1..=3 => {
            // First, middle and last byte: all three cover every length 1..=3.
            dst[0] = src[0];
            dst[n / 2] = src[n / 2];
            dst[n - 1] = src[n - 1];
        }
        4..=7 => pair::<4>(src, dst),
        8..=15 => pair::<8>(src, dst),
        16..=32 => pair::<16>(src, dst),
        _ => dst.copy_from_slice(src),
    }
}

/// The first and the last `W` bytes (overlapping when `len < 2 * W`); needs
/// `W <= len <= 2 * W`.
#[inline(always)]
fn pair<const W: usize>(src: &[u8], dst: &mut [u8]) {
    let n = src.len();
    let head: [u8; W] = src[..W].try_into().expect("W <= len");
    let tail: [u8; W] = src[n - W..].try_into().expect("W <= len");
    dst[..W].copy_from_slice(&head);
    dst[n - W..].copy_from_slice(&tail);
}

#[cfg(test)]
mod tests {
    use super::copy_bytes;

    #[test]
    fn every_length_up_to_past_the_short_paths_copies_exactly() {
        for n in 0..80 {
            let src: Vec<u8> = (0..n as u8)
                .map(|b| b.wrapping_mul(7).wrapping_add(1))
                .collect();
            // Guard bytes on both sides catch a write outside `dst`.
            let mut buf = vec![0xEEu8; n + 2];
            copy_bytes(&src, &mut buf[1..=n]);
            assert_eq!(&buf[1..=n], &src[..], "length {n}");
            assert_eq!((buf[0], buf[n + 1]), (0xEE, 0xEE), "length {n}");
        }
    }

    #[test]
    #[should_panic(expected = "lengths differ")]
    fn different_lengths_panic_as_copy_from_slice_does() {
        copy_bytes(&[1, 2, 3], &mut [0; 2]);
    }
}
