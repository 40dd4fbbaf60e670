//! The checksum of checkpoint files: XXH3 (64 bits) over the file's bytes,
//! computed as the file is written ([`Hashing`]) or over its bytes. XXH3
//! runs at memory speed (an FNV chain over 8-byte words, used before, cost
//! about 0.4 s of CPU per GB of state: a multiply's latency per word).

use std::hash::Hasher;
use std::io::Write;

use twox_hash::XxHash3_64;

/// A running checksum.
#[derive(Clone)]
pub struct Checksum {
    h: XxHash3_64,
    len: u64,
}

impl std::fmt::Debug for Checksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checksum").field("len", &self.len).finish()
    }
}

impl Default for Checksum {
    fn default() -> Self {
        Checksum {
            h: XxHash3_64::new(),
            len: 0,
        }
    }
}

impl Checksum {
    /// The checksum of `bytes`.
    pub fn of(bytes: &[u8]) -> u64 {
        XxHash3_64::oneshot(bytes)
    }

    /// Add `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        self.len += bytes.len() as u64;
        self.h.write(bytes);
    }

    /// Bytes added.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The checksum.
    pub fn finish(&self) -> u64 {
        self.h.finish()
    }
}

/// A writer that checksums what passes through it.
pub struct Hashing<W> {
    inner: W,
    /// The checksum so far.
    pub sum: Checksum,
}

impl<W: Write> Hashing<W> {
    /// Checksum what is written to `inner`.
    pub fn new(inner: W) -> Self {
        Hashing {
            inner,
            sum: Checksum::default(),
        }
    }

    /// The writer inside.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sum.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written in pieces of any size, the checksum is that of the whole.
    #[test]
    fn pieces_sum_as_the_whole() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let whole = Checksum::of(&data);
        for piece in [1, 3, 7, 8, 9, 64, 999, 70_000] {
            let mut f = Checksum::default();
            for c in data.chunks(piece) {
                f.update(c);
            }
            assert_eq!((f.finish(), f.len()), (whole, 100_000), "pieces of {piece}");
        }
        let mut changed = data.clone();
        changed[50_000] ^= 1;
        assert_ne!(Checksum::of(&changed), whole);
    }
}
