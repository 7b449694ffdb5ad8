//! [`Append`]: a postcard output that appends to a `Vec<u8>` in place. The encoders of
//! shmkit-ring's `Queue` and of shmkit-pool's tasks and outcomes write through it; it
//! sits here, below both, so that it is written once.

/// A postcard output ([`Flavor`](postcard::ser_flavors::Flavor)) that appends to a
/// vector in place: a byte is a `push`, a short slice a few `push`es, a longer one an
/// `extend_from_slice`. Postcard's own `to_extend` moves the vector in and out per value
/// and extends it through an iterator per byte.
///
/// ```
/// use shmkit_sync::append::Append;
///
/// let mut buf = vec![0xff];
/// postcard::serialize_with_flavor(&(7u32, "hi"), Append(&mut buf))?;
/// assert_eq!(buf, [0xff, 7, 2, b'h', b'i']);
/// # Ok::<(), postcard::Error>(())
/// ```
#[derive(Debug)]
pub struct Append<'a>(pub &'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();

    #[inline]
    fn try_push(&mut self, b: u8) -> postcard::Result<()> {
        self.0.push(b);
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, b: &[u8]) -> postcard::Result<()> {
        // Postcard writes every varint as a slice of 1 to 10 bytes: a `memcpy` call
        // each was the largest cost of a worker encoding small results.
        if b.len() <= 16 {
            self.0.reserve(b.len());
            for &x in b {
                self.0.push(x);
            }
        } else {
            self.0.extend_from_slice(b);
        }
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}
