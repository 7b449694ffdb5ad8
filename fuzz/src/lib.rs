//! What the fuzz targets share: the fuzzer's bytes read front to back as a script. Each
//! target adds its own ways of turning them into positions and words (an extension trait
//! in the target), which differ with the structure it feeds.

/// The fuzzer's input, read front to back; past its end every read is zero, so a short
/// input is still a whole script.
#[derive(Debug)]
pub struct Input<'a>(pub &'a [u8]);

impl Input<'_> {
    /// The next byte (0 once the input is used up).
    pub fn byte(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }

    /// The next eight bytes, little-endian.
    pub fn u64(&mut self) -> u64 {
        let mut w = [0u8; 8];
        for b in &mut w {
            *b = self.byte();
        }
        u64::from_le_bytes(w)
    }
}
