//! The checksum of checkpoint files: FNV-1a over 8-byte little-endian
//! words, then the tail's bytes — fast enough for gigabytes of state —
//! computed as the file is written ([`Hashing`]) or over its bytes.

use std::io::Write;

const PRIME: u64 = 0x0100_0000_01b3;
const BASIS: u64 = 0xcbf2_9ce4_8422_2325;

/// A running checksum.
#[derive(Debug, Clone)]
pub struct Fnv {
    h: u64,
    /// Bytes of an unfinished word.
    carry: [u8; 8],
    carried: usize,
    len: u64,
}

impl Default for Fnv {
    fn default() -> Self {
        Fnv {
            h: BASIS,
            carry: [0; 8],
            carried: 0,
            len: 0,
        }
    }
}

impl Fnv {
    /// The checksum of `bytes`.
    pub fn of(bytes: &[u8]) -> u64 {
        let mut f = Fnv::default();
        f.update(bytes);
        f.finish()
    }

    fn word(&mut self, w: [u8; 8]) {
        self.h = (self.h ^ u64::from_le_bytes(w)).wrapping_mul(PRIME);
    }

    /// Add `bytes`.
    pub fn update(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len() as u64;
        if self.carried > 0 {
            let take = (8 - self.carried).min(bytes.len());
            self.carry[self.carried..self.carried + take].copy_from_slice(&bytes[..take]);
            self.carried += take;
            bytes = &bytes[take..];
            if self.carried < 8 {
                return;
            }
            self.word(self.carry);
            self.carried = 0;
        }
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut word = [0u8; 8];
            word.copy_from_slice(w);
            self.word(word);
        }
        let rest = words.remainder();
        self.carry[..rest.len()].copy_from_slice(rest);
        self.carried = rest.len();
    }

    /// Bytes added.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The checksum (the unfinished word's bytes one by one).
    pub fn finish(&self) -> u64 {
        self.carry[..self.carried]
            .iter()
            .fold(self.h, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME))
    }
}

/// A writer that checksums what passes through it.
pub struct Hashing<W> {
    inner: W,
    /// The checksum so far.
    pub sum: Fnv,
}

impl<W: Write> Hashing<W> {
    /// Checksum what is written to `inner`.
    pub fn new(inner: W) -> Self {
        Hashing {
            inner,
            sum: Fnv::default(),
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
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        let whole = Fnv::of(&data);
        for piece in [1, 3, 7, 8, 9, 64, 999] {
            let mut f = Fnv::default();
            for c in data.chunks(piece) {
                f.update(c);
            }
            assert_eq!((f.finish(), f.len()), (whole, 1000), "pieces of {piece}");
        }
    }
}
