use super::*;

/// Opens the WAL and reads every record back, as a restart does.
fn open_all(dir: &Path, segment_size: u64) -> Result<(Wal, Vec<Record>, Repair), WalError> {
    let (wal, repair) = Wal::open(dir, segment_size)?;
    let records =
        wal.read_from(Position { segment: 0, offset: 0 })?.collect::<Result<Vec<_>, _>>()?;
    Ok((wal, records, repair))
}

fn payload(i: usize) -> Vec<u8> {
    format!("record {i} {}", "x".repeat(i % 37)).into_bytes()
}

fn write(dir: &Path, count: usize, segment_size: u64) -> Vec<Position> {
    let (mut wal, records, repair) = open_all(dir, segment_size).unwrap();
    assert!(records.is_empty());
    assert_eq!(repair, Repair::default());
    let positions = (0..count).map(|i| wal.append((i % 3) as u8, &payload(i)).unwrap()).collect();
    wal.sync().unwrap();
    positions
}

fn payloads(records: &[Record]) -> Vec<Vec<u8>> {
    records.iter().map(|r| r.payload.clone()).collect()
}

#[test]
fn records_round_trip_across_segments_and_appends_continue_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let positions = write(dir.path(), 200, 1024);
    assert!(positions.last().unwrap().segment > 3, "small segments roll");
    let (mut wal, records, repair) = open_all(dir.path(), 1024).unwrap();
    assert_eq!(repair, Repair::default());
    assert_eq!(payloads(&records), (0..200).map(payload).collect::<Vec<_>>());
    assert_eq!(records.iter().map(|r| r.position).collect::<Vec<_>>(), positions);
    assert!(records.iter().enumerate().all(|(i, r)| r.kind == (i % 3) as u8));
    wal.append(9, b"after reopen").unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (_, records, _) = open_all(dir.path(), 1024).unwrap();
    assert_eq!(records.len(), 201);
    assert_eq!(records[200].payload, b"after reopen");
}

#[test]
fn a_torn_tail_at_any_byte_keeps_every_record_before_it() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 20, 1 << 20);
    let path = segment_path(dir.path(), 1);
    let full = fs::read(&path).unwrap();
    let (_, all, _) = open_all(dir.path(), 1 << 20).unwrap();
    for cut in 0..full.len() {
        let scratch = tempfile::tempdir().unwrap();
        fs::write(segment_path(scratch.path(), 1), &full[..cut]).unwrap();
        let (mut wal, records, repair) = open_all(scratch.path(), 1 << 20).unwrap();
        let complete = all
            .iter()
            .filter(|r| r.position.offset as usize + RECORD_HEADER_LEN + r.payload.len() <= cut);
        assert_eq!(payloads(&records), complete.map(|r| r.payload.clone()).collect::<Vec<_>>());
        let clean_end = cut == HEADER_LEN as usize
            || all
                .iter()
                .any(|r| r.position.offset as usize + RECORD_HEADER_LEN + r.payload.len() == cut);
        assert_eq!(repair.cut_at.is_none(), clean_end, "cut at {cut}: {repair:?}");
        // The repaired log accepts appends and reads them back.
        wal.append(1, b"new").unwrap();
        wal.sync().unwrap();
        drop(wal);
        let (_, again, repair) = open_all(scratch.path(), 1 << 20).unwrap();
        assert_eq!(repair, Repair::default(), "cut at {cut}");
        assert_eq!(again.last().unwrap().payload, b"new");
        assert_eq!(again.len(), records.len() + 1);
    }
}

#[test]
fn a_bit_flip_cuts_there_and_drops_later_segments() {
    let dir = tempfile::tempdir().unwrap();
    let positions = write(dir.path(), 120, 512);
    let victim = positions[40];
    let path = segment_path(dir.path(), victim.segment);
    let mut bytes = fs::read(&path).unwrap();
    bytes[victim.offset as usize + RECORD_HEADER_LEN + 2] ^= 0x10;
    fs::write(&path, &bytes).unwrap();
    let last_segment = positions.last().unwrap().segment;
    let (_, records, repair) = open_all(dir.path(), 512).unwrap();
    assert_eq!(payloads(&records), (0..40).map(payload).collect::<Vec<_>>());
    let (cut, reason) = repair.cut_at.unwrap();
    assert_eq!(cut, victim);
    assert_eq!(reason, "checksum mismatch");
    assert_eq!(repair.deleted_segments, (victim.segment + 1..=last_segment).collect::<Vec<_>>());
    assert_eq!(segments(dir.path()).unwrap().last(), Some(&victim.segment));
}

#[test]
fn a_garbage_segment_header_is_cut_like_a_bad_record() {
    let dir = tempfile::tempdir().unwrap();
    let positions = write(dir.path(), 60, 512);
    let second = positions.iter().find(|p| p.segment == 2).unwrap();
    fs::write(segment_path(dir.path(), 2), b"not a wal segment").unwrap();
    let (mut wal, records, repair) = open_all(dir.path(), 512).unwrap();
    assert!(records.iter().all(|r| r.position.segment == 1));
    assert_eq!(repair.cut_at.unwrap().0, Position { segment: 2, offset: 0 });
    assert!(repair.deleted_segments.contains(&2));
    assert!(second.segment == 2);
    assert_eq!(wal.current_segment(), 1);
    wal.append(0, b"x").unwrap();
}

#[test]
fn remove_before_keeps_the_open_segment() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 100, 512);
    let (mut wal, _, _) = open_all(dir.path(), 512).unwrap();
    let current = wal.current_segment();
    let removed = wal.remove_before(u64::MAX).unwrap();
    assert_eq!(removed, (1..current).collect::<Vec<_>>());
    assert_eq!(segments(dir.path()).unwrap(), vec![current]);
}

#[test]
fn oversized_records_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _, _) = open_all(dir.path(), 1 << 20).unwrap();
    assert!(matches!(wal.append(0, &vec![0; MAX_RECORD]), Err(WalError::TooLarge { .. })));
}
