//! Protobuf wire-format primitives (<https://protobuf.dev/programming-guides/encoding/>) shared by
//! the hand-written decoders in `ingest` and encoders in `sinks`.
//!
//! The reader never panics on malformed input: every length is checked against the remaining
//! buffer and every error names the byte offset where it happened.

/// Wire types.
pub const VARINT: u8 = 0;
pub const FIXED64: u8 = 1;
pub const LEN: u8 = 2;
pub const FIXED32: u8 = 5;

/// A malformed protobuf message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid protobuf at byte {offset}: {what}")]
pub struct WireError {
    pub offset: usize,
    pub what: &'static str,
}

/// A cursor over one message's bytes. `base` is the offset of `buf[0]` in the whole body, so
/// errors and spans refer to positions in the request.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], base: usize) -> Self {
        Self { buf, pos: 0, base }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Position of the cursor within this reader's buffer.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Skips a run of consecutive length-delimited fields whose key is the single byte `key`
    /// (e.g. `0x0a` for field 1), the first key already consumed; the cursor ends after the
    /// run. A tight loop for the hot 1.0 label walk.
    #[inline]
    pub fn skip_len_run(&mut self, key: u8) -> Result<(), WireError> {
        loop {
            let len = self.varint()?;
            let Some(end) = usize::try_from(len).ok().and_then(|l| self.pos.checked_add(l)) else {
                return Err(self.error("length overflows"));
            };
            if end > self.buf.len() {
                return Err(self.error("length-delimited field runs past the end of its message"));
            }
            self.pos = end;
            if self.buf.get(end) != Some(&key) {
                return Ok(());
            }
            self.pos += 1;
        }
    }

    /// Offset of the cursor in the whole body.
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    #[cold]
    pub fn error(&self, what: &'static str) -> WireError {
        WireError { offset: self.offset(), what }
    }

    /// A varint; the one-byte case (most keys, lengths and small values) is inlined.
    #[inline(always)]
    pub fn varint(&mut self) -> Result<u64, WireError> {
        if let Some(&byte) = self.buf.get(self.pos) {
            if byte < 0x80 {
                self.pos += 1;
                return Ok(u64::from(byte));
            }
        }
        self.varint_slow()
    }

    #[cold]
    #[inline(never)]
    fn varint_slow(&mut self) -> Result<u64, WireError> {
        let mut value: u64 = 0;
        for shift in 0..10 {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(self.error("truncated varint"));
            };
            self.pos += 1;
            if shift == 9 && byte > 1 {
                return Err(self.error("varint overflows 64 bits"));
            }
            value |= u64::from(byte & 0x7f) << (shift * 7);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(self.error("varint longer than 10 bytes"))
    }

    /// Reads a field key: `(field number, wire type)`.
    #[inline(always)]
    pub fn key(&mut self) -> Result<(u32, u8), WireError> {
        let key = self.varint()?;
        let field = key >> 3;
        if field == 0 || field > u64::from(u32::MAX >> 3) {
            return Err(self.error("invalid field number"));
        }
        Ok((field as u32, (key & 7) as u8))
    }

    #[inline]
    pub fn fixed64(&mut self) -> Result<u64, WireError> {
        let end = self.pos + 8;
        let Some(bytes) = self.buf.get(self.pos..end) else {
            return Err(self.error("truncated fixed64"));
        };
        self.pos = end;
        Ok(u64::from_le_bytes(bytes.try_into().expect("slice of length 8")))
    }

    /// A double, bit for bit (stale-marker NaNs keep their payload).
    #[inline]
    pub fn double(&mut self) -> Result<f64, WireError> {
        self.fixed64().map(f64::from_bits)
    }

    /// A length-delimited field: returns its bytes and their offset in the whole body.
    #[inline(always)]
    pub fn bytes(&mut self) -> Result<(&'a [u8], usize), WireError> {
        let len = self.varint()?;
        let start = self.pos;
        let Some(end) = usize::try_from(len).ok().and_then(|l| start.checked_add(l)) else {
            return Err(self.error("length overflows"));
        };
        let Some(bytes) = self.buf.get(start..end) else {
            return Err(self.error("length-delimited field runs past the end of its message"));
        };
        self.pos = end;
        Ok((bytes, self.base + start))
    }

    /// Skips a field of the given wire type.
    pub fn skip(&mut self, wire_type: u8) -> Result<(), WireError> {
        match wire_type {
            VARINT => self.varint().map(drop),
            FIXED64 => self.fixed64().map(drop),
            LEN => self.bytes().map(drop),
            FIXED32 => {
                let end = self.pos + 4;
                if end > self.buf.len() {
                    return Err(self.error("truncated fixed32"));
                }
                self.pos = end;
                Ok(())
            }
            _ => Err(self.error("unsupported wire type (groups are not allowed)")),
        }
    }

    /// Requires `wire_type == expected` for a known field.
    #[inline(always)]
    pub fn expect(&self, wire_type: u8, expected: u8) -> Result<(), WireError> {
        if wire_type == expected {
            Ok(())
        } else {
            Err(self.error("unexpected wire type for a known field"))
        }
    }
}

/// Appends a varint.
#[inline]
pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Bytes a varint of `value` takes.
#[inline]
pub fn varint_len(value: u64) -> usize {
    // ((bits needed) * 9 + 73) / 64 gives 1..=10 without a loop.
    let bits = 64 - (value | 1).leading_zeros() as usize;
    (bits * 9 + 64) / 64
}

#[inline]
pub fn put_key(out: &mut Vec<u8>, field: u32, wire_type: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire_type));
}

/// Appends a length-delimited field.
#[inline]
pub fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(out, field, LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Appends a length-delimited field whose body `write` produces, patching the length in
/// afterwards. The body is written once; the length prefix is reserved at its maximum width only
/// when the body turns out larger than the guess.
#[inline]
pub fn put_nested(out: &mut Vec<u8>, field: u32, write: impl FnOnce(&mut Vec<u8>)) {
    put_key(out, field, LEN);
    let len_pos = out.len();
    out.push(0); // one-byte length guess, fixed below if the body is 128 bytes or more
    let body_start = out.len();
    write(out);
    let body_len = out.len() - body_start;
    let needed = varint_len(body_len as u64);
    if needed > 1 {
        // Shift the body right to make room for the longer length prefix.
        out.splice(len_pos..len_pos + 1, std::iter::repeat_n(0u8, needed));
    }
    let mut prefix = Vec::with_capacity(needed);
    put_varint(&mut prefix, body_len as u64);
    out[len_pos..len_pos + needed].copy_from_slice(&prefix);
}

/// Appends a double field (skipped when zero, as proto3 does).
#[inline]
pub fn put_double(out: &mut Vec<u8>, field: u32, value: f64) {
    if value.to_bits() != 0 {
        put_key(out, field, FIXED64);
        out.extend_from_slice(&value.to_bits().to_le_bytes());
    }
}

/// Appends an int64 field as a varint (skipped when zero).
#[inline]
pub fn put_int64(out: &mut Vec<u8>, field: u32, value: i64) {
    if value != 0 {
        put_key(out, field, VARINT);
        put_varint(out, value as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip_and_len() {
        for value in [0u64, 1, 127, 128, 300, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(out.len(), varint_len(value), "{value}");
            assert_eq!(Reader::new(&out, 0).varint().unwrap(), value);
        }
    }

    #[test]
    fn malformed_input_is_an_error_with_offset() {
        assert_eq!(Reader::new(&[0x80], 7).varint().unwrap_err().offset, 8);
        assert!(Reader::new(&[0xff; 11], 0).varint().is_err());
        assert!(Reader::new(&[0x05, 1, 2], 0).bytes().is_err());
        assert!(Reader::new(&[0x00], 0).key().is_err(), "field 0 is invalid");
    }

    #[test]
    fn nested_lengths_are_patched() {
        for body_len in [0usize, 5, 127, 128, 20_000] {
            let mut out = vec![0xAA];
            put_nested(&mut out, 3, |o| o.extend(std::iter::repeat_n(7u8, body_len)));
            let mut reader = Reader::new(&out[1..], 1);
            assert_eq!(reader.key().unwrap(), (3, LEN));
            let (body, _) = reader.bytes().unwrap();
            assert_eq!(body.len(), body_len);
            assert!(reader.is_empty());
        }
    }
}
