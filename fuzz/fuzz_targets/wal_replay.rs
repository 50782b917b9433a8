//! WAL replay on arbitrary bytes: the input is written as a segment file (with a valid header
//! half of the time, so framing and checksums are reached) and opened as a WAL; every record
//! replay returns is then decoded as each record kind, and the first byte picks one more kind
//! for the input itself as a record payload.
//!
//! Checked: opening never panics, repair leaves a log that opens again with the same records
//! and no further cut, and record decoding only ever fails with an error.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use strata::storage::record;
use strata::storage::wal::{Position, Wal};

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut segment = Vec::new();
    if data.first().is_some_and(|b| b & 1 == 0) {
        segment.extend_from_slice(b"STRATAWL");
        segment.extend_from_slice(&1u32.to_le_bytes());
    }
    segment.extend_from_slice(data);
    std::fs::write(dir.path().join("00000000000000000001.wal"), &segment).expect("write");
    let read_all = |wal: &Wal| -> Vec<(u8, Vec<u8>)> {
        wal.read_from(Position { segment: 0, offset: 0 })
            .expect("read")
            .map(|r| r.expect("record"))
            .map(|r| (r.kind, r.payload))
            .collect()
    };
    let (wal, _) = Wal::open(dir.path(), 1 << 20).expect("open");
    let records = read_all(&wal);
    drop(wal);
    let (again, repair) = Wal::open(dir.path(), 1 << 20).expect("reopen");
    assert!(repair.cut_at.is_none(), "a repaired log needs no second repair");
    assert_eq!(read_all(&again), records);
    for (kind, payload) in &records {
        let _ = record::decode_frame(*kind, payload.clone());
    }
    if let Some((&kind, payload)) = data.split_first() {
        let _ = record::decode_frame(kind & 0x83, payload.to_vec());
    }
});
