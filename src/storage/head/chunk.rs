//! Float sample chunks in the Gorilla encoding (Pelkonen et al., "Gorilla: A Fast, Scalable,
//! In-Memory Time Series Database", VLDB 2015, §4.1) with the bucket widths of Prometheus'
//! XOR chunks (`tsdb/chunkenc/xor.go`): delta-of-delta timestamps, XOR-ed values.
//!
//! All chunks of one series live back to back in one byte buffer ([`SampleChunks::data`]):
//!
//! ```text
//! chunk   = count u16 BE | length u16 BE | sample 0 | sample 1 | sample 2.. | zero padding to a byte
//! sample 0 = t zigzag varint (8 bits at a time) | v 64 bits
//! sample 1 = t - t0 uvarint                     | v xor
//! sample n = dod: '0' | '10' 14 bits | '110' 17 bits | '1110' 20 bits | '1111' 64 bits
//!            (two's complement)                 | v xor
//! v xor   = '0' (same bits) | '10' bits in the previous window
//!         | '11' leading zeros (5 bits, capped at 31) | significant bits (6 bits, 64 as 0) | bits
//! ```
//!
//! Invariants:
//! * A chunk holds at most [`SAMPLES_PER_CHUNK`] samples (Prometheus' 120). It is closed as soon
//!   as it reaches that count; the buffer is then shrunk to its length, so a closed chunk costs
//!   its encoded bytes and nothing else. The next sample opens a new chunk at the next byte.
//! * Timestamps strictly increase over the whole buffer: [`SampleChunks::push`] rejects a sample
//!   older than the last one (out of order) or at the same time (duplicate when the value bits
//!   are equal, out of order otherwise), as Prometheus' head appender does.
//! * Values are carried as raw `u64` bits, so NaN payloads (the stale marker) round-trip.
//! * `length` is the byte length of a closed chunk after its 4-byte header (0 while open), so a
//!   reader skips chunks that end before the time it wants ([`SampleChunks::iter_from`]) instead
//!   of decoding them, as Prometheus' head skips chunks by their time range. 120 samples take
//!   far less than 64 KiB.

/// Samples per chunk before a new one is cut (Prometheus `samplesPerChunk`).
pub const SAMPLES_PER_CHUNK: u16 = 120;

/// No previous XOR window yet in the open chunk.
const NO_WINDOW: u8 = 0xff;

/// Why a sample was not appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejected {
    /// Same timestamp and the same value bits as the last sample: harmless, ignored.
    Duplicate,
    /// Older than the last sample, or at its time with another value.
    OutOfOrder,
}

/// The chunks of one series plus the encoder state of the open one.
#[derive(Debug)]
pub struct SampleChunks {
    data: Vec<u8>,
    /// Offset of the open chunk's header in `data`.
    chunk_start: u32,
    /// Samples in the open chunk; 0 when none is open.
    open_count: u16,
    /// Unused low bits of the last byte of `data`.
    free_bits: u8,
    leading: u8,
    trailing: u8,
    /// Chunks in `data`, the open one included.
    chunks: u16,
    last_delta: i64,
    last_t: i64,
    last_v: u64,
}

impl Default for SampleChunks {
    fn default() -> Self {
        Self {
            data: Vec::new(),
            chunk_start: 0,
            open_count: 0,
            free_bits: 0,
            leading: NO_WINDOW,
            trailing: 0,
            chunks: 0,
            last_delta: 0,
            last_t: 0,
            last_v: 0,
        }
    }
}

impl SampleChunks {
    /// Chunks held, the open one included.
    pub fn chunk_count(&self) -> usize {
        usize::from(self.chunks)
    }

    pub fn is_empty(&self) -> bool {
        self.chunks == 0
    }

    /// The last sample's time and value bits.
    pub fn last(&self) -> Option<(i64, u64)> {
        (!self.is_empty()).then_some((self.last_t, self.last_v))
    }

    /// Bytes of encoded data held (capacity included).
    pub fn heap_bytes(&self) -> usize {
        self.data.capacity()
    }

    /// Appends one sample, or says why not.
    pub fn push(&mut self, t: i64, v: u64) -> Result<(), Rejected> {
        if let Some((last_t, last_v)) = self.last() {
            if t < last_t {
                return Err(Rejected::OutOfOrder);
            }
            if t == last_t {
                return Err(if v == last_v { Rejected::Duplicate } else { Rejected::OutOfOrder });
            }
        }
        match self.open_count {
            0 => self.open_chunk(t, v),
            1 => {
                // Wrapping arithmetic here and in the decoder: t > last_t, so the true
                // difference fits in a u64 even when it does not fit in an i64.
                let delta = t.wrapping_sub(self.last_t);
                put_uvarint(self, delta as u64);
                self.put_xor(v);
                self.last_delta = delta;
            }
            _ => {
                let delta = t.wrapping_sub(self.last_t);
                self.put_dod(delta.wrapping_sub(self.last_delta));
                self.put_xor(v);
                self.last_delta = delta;
            }
        }
        self.last_t = t;
        self.last_v = v;
        self.open_count += 1;
        let start = self.chunk_start as usize;
        self.data[start..start + 2].copy_from_slice(&self.open_count.to_be_bytes());
        if self.open_count == SAMPLES_PER_CHUNK {
            let length = u16::try_from(self.data.len() - start - 4).expect("a chunk under 64 KiB");
            self.data[start + 2..start + 4].copy_from_slice(&length.to_be_bytes());
            self.open_count = 0;
            self.data.shrink_to_fit();
        }
        Ok(())
    }

    fn open_chunk(&mut self, t: i64, v: u64) {
        self.chunk_start = u32::try_from(self.data.len()).expect("series data over 4 GiB");
        self.free_bits = 0;
        self.leading = NO_WINDOW;
        self.trailing = 0;
        self.chunks += 1;
        self.put_bits(0, 32);
        put_uvarint(self, zigzag(t));
        self.put_bits(v, 64);
    }

    fn put_dod(&mut self, dod: i64) {
        match dod {
            0 => self.put_bits(0, 1),
            d if fits(d, 14) => {
                self.put_bits(0b10, 2);
                self.put_bits(d as u64, 14);
            }
            d if fits(d, 17) => {
                self.put_bits(0b110, 3);
                self.put_bits(d as u64, 17);
            }
            d if fits(d, 20) => {
                self.put_bits(0b1110, 4);
                self.put_bits(d as u64, 20);
            }
            d => {
                self.put_bits(0b1111, 4);
                self.put_bits(d as u64, 64);
            }
        }
    }

    fn put_xor(&mut self, v: u64) {
        let xor = v ^ self.last_v;
        if xor == 0 {
            self.put_bits(0, 1);
            return;
        }
        let leading = xor.leading_zeros().min(31) as u8;
        let trailing = xor.trailing_zeros() as u8;
        if self.leading != NO_WINDOW && leading >= self.leading && trailing >= self.trailing {
            let width = 64 - u32::from(self.leading) - u32::from(self.trailing);
            self.put_bits(0b10, 2);
            self.put_bits(xor >> self.trailing, width);
            return;
        }
        self.leading = leading;
        self.trailing = trailing;
        let width = 64 - u32::from(leading) - u32::from(trailing);
        self.put_bits(0b11, 2);
        self.put_bits(u64::from(leading), 5);
        // 64 significant bits do not fit in 6 bits; 0 cannot occur (xor != 0), so it stands in.
        self.put_bits(u64::from(width) & 0x3f, 6);
        self.put_bits(xor >> trailing, width);
    }

    /// Writes the low `count` bits of `value`, most significant first.
    fn put_bits(&mut self, value: u64, mut count: u32) {
        while count > 0 {
            if self.free_bits == 0 {
                if self.data.len() == self.data.capacity() {
                    // Grow by half rather than double: an open chunk's spare room is per series.
                    self.data.reserve_exact((self.data.len() / 2).max(16));
                }
                self.data.push(0);
                self.free_bits = 8;
            }
            let take = count.min(u32::from(self.free_bits));
            let bits = (value >> (count - take)) & ((1u64 << take) - 1);
            let last = self.data.last_mut().expect("a byte was just ensured");
            *last |= (bits as u8) << (u32::from(self.free_bits) - take);
            self.free_bits -= take as u8;
            count -= take;
        }
    }

    /// Every sample in time order, as `(timestamp, value bits)`.
    pub fn iter(&self) -> SampleIter<'_> {
        SampleIter::new(&self.data)
    }

    /// Samples in time order starting with the chunk that holds `min_t`: closed chunks whose
    /// successor starts at or before `min_t` are skipped without decoding. Samples before
    /// `min_t` may still come first (from the chunk holding it).
    pub fn iter_from(&self, min_t: i64) -> SampleIter<'_> {
        let mut at = 0usize;
        while let Some(header) = self.data.get(at..at + 4) {
            let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
            let next = at + 4 + length;
            // An open chunk (length 0) is the last one; stop at it.
            if length == 0 || next + 4 >= self.data.len() {
                break;
            }
            let mut reader = BitReader { data: &self.data, pos: (next + 4) * 8 };
            match reader.uvarint() {
                Some(first) if unzigzag(first) <= min_t => at = next,
                _ => break,
            }
        }
        let mut iter = SampleIter::new(&self.data);
        iter.reader.pos = at * 8;
        iter
    }
}

fn put_uvarint(chunks: &mut SampleChunks, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            chunks.put_bits(u64::from(byte), 8);
            return;
        }
        chunks.put_bits(u64::from(byte | 0x80), 8);
    }
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

/// Whether `value` fits in `bits` bits of two's complement.
fn fits(value: i64, bits: u32) -> bool {
    let half = 1i64 << (bits - 1);
    (-half..half).contains(&value)
}

/// Sign-extends the low `bits` bits of `value`.
fn sign_extend(value: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((value << shift) as i64) >> shift
}

/// Reads bits most significant first.
struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits.
    pos: usize,
}

impl BitReader<'_> {
    /// The next `count` (≤ 64) bits, from a 128-bit big-endian window over the bytes they
    /// span (at most 9), or `None` past the end.
    fn bits(&mut self, count: u32) -> Option<u64> {
        debug_assert!(count <= 64);
        if count == 0 {
            return Some(0);
        }
        let end = self.pos + count as usize;
        if end > self.data.len() * 8 {
            return None;
        }
        let byte = self.pos / 8;
        let window = match self.data.get(byte..byte + 16) {
            Some(bytes) => u128::from_be_bytes(bytes.try_into().expect("16 bytes")),
            None => {
                let mut padded = [0u8; 16];
                let tail = &self.data[byte..];
                padded[..tail.len()].copy_from_slice(tail);
                u128::from_be_bytes(padded)
            }
        };
        let value = (window << (self.pos % 8)) >> (128 - count);
        self.pos = end;
        Some(value as u64)
    }

    fn bit(&mut self) -> Option<bool> {
        Some(self.bits(1)? == 1)
    }

    fn uvarint(&mut self) -> Option<u64> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.bits(8)?;
            out |= (byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(out);
            }
        }
        None
    }

    fn align(&mut self) {
        self.pos = self.pos.div_ceil(8) * 8;
    }
}

/// Decoder over a series buffer; yields `(timestamp, value bits)`.
pub struct SampleIter<'a> {
    reader: BitReader<'a>,
    /// Samples left in the current chunk.
    left: u16,
    /// Index of the next sample within the current chunk.
    index: u16,
    t: i64,
    v: u64,
    delta: i64,
    leading: u32,
    trailing: u32,
}

impl<'a> SampleIter<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self {
            reader: BitReader { data, pos: 0 },
            left: 0,
            index: 0,
            t: 0,
            v: 0,
            delta: 0,
            leading: 0,
            trailing: 0,
        }
    }

    fn decode(&mut self) -> Option<(i64, u64)> {
        if self.left == 0 {
            self.reader.align();
            self.left = self.reader.bits(16)? as u16;
            // The chunk's byte length: only for skipping (see `iter_from`).
            self.reader.bits(16)?;
            self.index = 0;
            if self.left == 0 {
                return None;
            }
        }
        match self.index {
            0 => {
                self.t = unzigzag(self.reader.uvarint()?);
                self.v = self.reader.bits(64)?;
            }
            1 => {
                self.delta = self.reader.uvarint()? as i64;
                self.t = self.t.wrapping_add(self.delta);
                self.read_xor()?;
            }
            _ => {
                let mut prefix = 0;
                while prefix < 4 && self.reader.bit()? {
                    prefix += 1;
                }
                let dod = match prefix {
                    0 => 0,
                    1 => sign_extend(self.reader.bits(14)?, 14),
                    2 => sign_extend(self.reader.bits(17)?, 17),
                    3 => sign_extend(self.reader.bits(20)?, 20),
                    _ => self.reader.bits(64)? as i64,
                };
                self.delta = self.delta.wrapping_add(dod);
                self.t = self.t.wrapping_add(self.delta);
                self.read_xor()?;
            }
        }
        self.left -= 1;
        self.index += 1;
        Some((self.t, self.v))
    }

    fn read_xor(&mut self) -> Option<()> {
        if !self.reader.bit()? {
            return Some(());
        }
        if self.reader.bit()? {
            self.leading = self.reader.bits(5)? as u32;
            let width = match self.reader.bits(6)? as u32 {
                0 => 64,
                w => w,
            };
            self.trailing = 64 - self.leading - width;
        }
        let width = 64 - self.leading - self.trailing;
        let bits = self.reader.bits(width)?;
        self.v ^= bits << self.trailing;
        Some(())
    }
}

impl Iterator for SampleIter<'_> {
    type Item = (i64, u64);

    fn next(&mut self) -> Option<Self::Item> {
        self.decode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::STALE_NAN_BITS;
    use proptest::prelude::*;

    fn encode(samples: &[(i64, u64)]) -> SampleChunks {
        let mut chunks = SampleChunks::default();
        for &(t, v) in samples {
            chunks.push(t, v).unwrap();
        }
        chunks
    }

    #[test]
    fn cuts_a_chunk_every_120_samples_and_shrinks_it() {
        let samples: Vec<_> =
            (0..250).map(|i| (1_700_000_000_000 + i * 30_000, (i as f64).to_bits())).collect();
        let chunks = encode(&samples);
        assert_eq!(chunks.chunk_count(), 3);
        assert_eq!(chunks.iter().collect::<Vec<_>>(), samples);
        let one = encode(&samples[..120]);
        assert_eq!(one.heap_bytes(), one.data.len(), "a closed chunk carries no spare room");
        // Regular timestamps cost one bit each after the second sample.
        assert!(one.data.len() < 2 + 8 + 8 + 3 + 120 * 2, "{} bytes", one.data.len());
    }

    #[test]
    fn rejects_old_and_conflicting_samples_and_ignores_duplicates() {
        let mut chunks = encode(&[(10, 1), (20, 2)]);
        assert_eq!(chunks.push(15, 9), Err(Rejected::OutOfOrder));
        assert_eq!(chunks.push(20, 2), Err(Rejected::Duplicate));
        assert_eq!(chunks.push(20, 3), Err(Rejected::OutOfOrder));
        assert_eq!(chunks.push(21, 3), Ok(()));
        assert_eq!(chunks.iter().collect::<Vec<_>>(), [(10, 1), (20, 2), (21, 3)]);
    }

    #[test]
    fn extreme_values_round_trip() {
        let samples = [
            (i64::MIN + 1, STALE_NAN_BITS),
            (-5, f64::NAN.to_bits()),
            (0, 0),
            (1, u64::MAX),
            (2, 1),
            (i64::MAX / 2, (-0.0f64).to_bits()),
            (i64::MAX, f64::INFINITY.to_bits()),
        ];
        assert_eq!(encode(&samples).iter().collect::<Vec<_>>(), samples);
        let widest = [(i64::MIN, 1), (i64::MAX, 2)];
        assert_eq!(encode(&widest).iter().collect::<Vec<_>>(), widest);
        let swing = [(i64::MIN, 1), (0, 2), (i64::MAX, 3)];
        assert_eq!(encode(&swing).iter().collect::<Vec<_>>(), swing);
    }

    fn value_bits() -> impl Strategy<Value = u64> {
        prop_oneof![
            any::<u64>(),
            Just(STALE_NAN_BITS),
            Just(f64::NAN.to_bits()),
            (0u32..1000).prop_map(|v| f64::from(v).to_bits()),
            (0u64..4).prop_map(|v| v << 52),
        ]
    }

    proptest! {
        #[test]
        fn chunks_round_trip(
            start in -1_000_000_000_000i64..4_000_000_000_000,
            steps in proptest::collection::vec(
                (prop_oneof![1i64..3, Just(30_000i64), 29_990i64..30_010, 1i64..1i64 << 40],
                 value_bits()),
                0..400,
            ),
        ) {
            let mut samples = Vec::with_capacity(steps.len());
            let mut t = start;
            for (step, v) in steps {
                samples.push((t, v));
                t += step;
            }
            let chunks = encode(&samples);
            prop_assert_eq!(chunks.chunk_count(), samples.len().div_ceil(120));
            prop_assert_eq!(&chunks.iter().collect::<Vec<_>>(), &samples);
            // Skipping chunks by time never loses a sample at or after the start.
            for pick in [0, samples.len() / 3, samples.len() / 2, samples.len().saturating_sub(1)] {
                let Some(&(min_t, _)) = samples.get(pick) else { continue };
                for min_t in [min_t - 1, min_t, min_t + 1] {
                    let skipped: Vec<_> = chunks.iter_from(min_t).filter(|s| s.0 >= min_t).collect();
                    let all: Vec<_> = samples.iter().copied().filter(|s| s.0 >= min_t).collect();
                    prop_assert_eq!(skipped, all);
                }
            }
        }
    }

    #[test]
    fn iter_from_skips_whole_chunks_before_the_start() {
        let samples: Vec<(i64, u64)> = (0..400).map(|i| (i * 15_000, i as u64)).collect();
        let chunks = encode(&samples);
        // 300 * 15 s falls in the third chunk (samples 240..359): it starts there.
        let first = chunks.iter_from(300 * 15_000).next();
        assert_eq!(first, Some((240 * 15_000, 240)));
        assert_eq!(chunks.iter_from(i64::MIN).next(), Some((0, 0)));
        assert_eq!(chunks.iter_from(i64::MAX).next(), Some((360 * 15_000, 360)));
    }
}
