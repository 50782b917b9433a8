//! `strata blocks list|inspect|verify`: the operator's view of a bucket. `main.rs` parses the
//! arguments; this module opens the bucket, does the work on a small tokio runtime and writes
//! text (or JSON with `--output json`) to the given writer.
//!
//! Invariants: `verify` never stops at the first bad block, it names every bad block and why;
//! its result is `Ok(false)` when any block is bad (the binary exits 1), and an `Err` only
//! when the bucket itself cannot be listed.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use super::{rfc3339_ms, utc_day, BlockFilter, Bucket, BucketError, META_FILE};
use crate::storage::block::inspect::{self, FileDescription};
use crate::storage::{BlockMeta, Tier};

/// Output format of the `blocks` commands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Output {
    #[default]
    Text,
    Json,
}

/// What to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlocksCommand {
    List,
    Inspect { block_id: String },
    Verify,
}

/// Why a `blocks` command could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum BlocksCliError {
    #[error(transparent)]
    Bucket(#[from] BucketError),
    #[error("block {block_id} not found (no meta.json matched the filters)")]
    NotFound { block_id: String },
    #[error("starting the I/O runtime: {0}")]
    Runtime(std::io::Error),
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
    #[error("encoding JSON output: {0}")]
    Json(#[from] serde_json::Error),
}

/// Runs `command` against the bucket at `url`; `Ok(false)` when `verify` found bad blocks.
pub fn run(
    command: &BlocksCommand,
    url: &str,
    options: &BTreeMap<String, String>,
    filter: &BlockFilter,
    output: Output,
    out: &mut dyn Write,
) -> Result<bool, BlocksCliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(BlocksCliError::Runtime)?;
    runtime.block_on(async {
        // An empty URL would silently mean "./blocks"; the command line always names a bucket.
        let bucket = Bucket::from_config(url, options, std::path::Path::new(url))?;
        match command {
            BlocksCommand::List => list(&bucket, filter, output, out).await.map(|()| true),
            BlocksCommand::Inspect { block_id } => {
                inspect_block(&bucket, filter, block_id, output, out).await.map(|()| true)
            }
            BlocksCommand::Verify => verify(&bucket, filter, output, out).await,
        }
    })
}

fn total_size(meta: &BlockMeta) -> u64 {
    meta.files.iter().map(|f| f.size).sum()
}

#[derive(Serialize)]
struct TierTotal {
    tier: Tier,
    blocks: u64,
    rows: u64,
    bytes: u64,
}

async fn list(
    bucket: &Bucket,
    filter: &BlockFilter,
    output: Output,
    out: &mut dyn Write,
) -> Result<(), BlocksCliError> {
    let blocks = bucket.list_blocks(filter).await?;
    let mut by_tier: BTreeMap<Tier, Vec<&BlockMeta>> = BTreeMap::new();
    for meta in &blocks {
        by_tier.entry(meta.tier).or_default().push(meta);
    }
    let totals: Vec<TierTotal> = by_tier
        .iter()
        .map(|(tier, metas)| TierTotal {
            tier: *tier,
            blocks: metas.len() as u64,
            rows: metas.iter().map(|m| m.rows).sum(),
            bytes: metas.iter().map(|m| total_size(m)).sum(),
        })
        .collect();
    if output == Output::Json {
        let json = serde_json::json!({ "blocks": blocks, "totals": totals });
        serde_json::to_writer_pretty(&mut *out, &json)?;
        writeln!(out)?;
        return Ok(());
    }
    if blocks.is_empty() {
        writeln!(out, "no blocks in {bucket}")?;
        return Ok(());
    }
    for ((tier, metas), total) in by_tier.iter().zip(&totals) {
        writeln!(out, "tier {}", tier.as_str())?;
        writeln!(
            out,
            "{:<12} {:<8} {:<4} {:<10} {:<28} {:<24} {:<24} {:>10} {:>8} {:>12}",
            "TENANT",
            "SIGNAL",
            "TIER",
            "DAY",
            "BLOCK",
            "MIN TIME",
            "MAX TIME",
            "ROWS",
            "SERIES",
            "BYTES"
        )?;
        for meta in metas {
            writeln!(
                out,
                "{:<12} {:<8} {:<4} {:<10} {:<28} {:<24} {:<24} {:>10} {:>8} {:>12}",
                meta.tenant,
                meta.signal.as_str(),
                meta.tier.as_str(),
                utc_day(meta.min_time_ms),
                meta.block_id,
                rfc3339_ms(meta.min_time_ms),
                rfc3339_ms(meta.max_time_ms),
                meta.rows,
                meta.series,
                total_size(meta)
            )?;
        }
        writeln!(
            out,
            "total {}: {} blocks, {} rows, {} bytes\n",
            tier.as_str(),
            total.blocks,
            total.rows,
            total.bytes
        )?;
    }
    Ok(())
}

async fn inspect_block(
    bucket: &Bucket,
    filter: &BlockFilter,
    block_id: &str,
    output: Output,
    out: &mut dyn Write,
) -> Result<(), BlocksCliError> {
    let keys = bucket.list_meta_keys(filter).await?;
    let wanted = format!("/{block_id}/{META_FILE}");
    let Some(key) =
        keys.iter().find(|k| k.as_ref().ends_with(&wanted) || k.as_ref() == &wanted[1..])
    else {
        return Err(BlocksCliError::NotFound { block_id: block_id.to_owned() });
    };
    let meta = bucket.read_meta(key).await?;
    let mut files: Vec<(String, Result<FileDescription, String>)> = Vec::new();
    for file in &meta.files {
        let description = match bucket.get_file(&meta, &file.name).await {
            Ok(data) => inspect::describe(&data).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        files.push((file.name.clone(), description));
    }
    if output == Output::Json {
        let files: Vec<serde_json::Value> = files
            .iter()
            .map(|(name, d)| match d {
                Ok(d) => serde_json::json!({ "name": name, "parquet": d }),
                Err(e) => serde_json::json!({ "name": name, "error": e }),
            })
            .collect();
        let json = serde_json::json!({ "key": key.to_string(), "meta": meta, "files": files });
        serde_json::to_writer_pretty(&mut *out, &json)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "{key}")?;
    writeln!(out, "{}", serde_json::to_string_pretty(&meta)?)?;
    for (name, description) in &files {
        writeln!(out, "\nfile {name}")?;
        match description {
            Ok(d) => write_description(d, out)?,
            Err(e) => writeln!(out, "  cannot read: {e}")?,
        }
    }
    Ok(())
}

fn write_description(d: &FileDescription, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "  created by: {}", d.created_by.as_deref().unwrap_or("?"))?;
    writeln!(out, "  rows: {}", d.rows)?;
    for (key, value) in &d.key_value_metadata {
        writeln!(out, "  {key} = {value}")?;
    }
    writeln!(out, "  schema:")?;
    for line in d.schema.lines() {
        writeln!(out, "    {line}")?;
    }
    for (index, rg) in d.row_groups.iter().enumerate() {
        writeln!(
            out,
            "  row group {index}: {} rows, {} bytes compressed, {} uncompressed",
            rg.rows, rg.compressed_bytes, rg.uncompressed_bytes
        )?;
        for c in &rg.columns {
            writeln!(
                out,
                "    {:<36} {:<22} {:<10} {:>10} / {:>10} bytes  bloom={} page_index={}  [{}]",
                c.path,
                c.physical_type,
                c.compression,
                c.compressed_bytes,
                c.uncompressed_bytes,
                if c.bloom_filter { "yes" } else { "no" },
                if c.page_index { "yes" } else { "no" },
                c.encodings.join(",")
            )?;
            if let Some(stats) = &c.statistics {
                writeln!(out, "      stats {stats}")?;
            }
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct Verdict {
    key: String,
    block_id: Option<String>,
    problems: Vec<String>,
}

async fn verify(
    bucket: &Bucket,
    filter: &BlockFilter,
    output: Output,
    out: &mut dyn Write,
) -> Result<bool, BlocksCliError> {
    let keys = bucket.list_meta_keys(filter).await?;
    let mut verdicts = Vec::with_capacity(keys.len());
    for key in &keys {
        let (block_id, problems) = match bucket.read_meta(key).await {
            Ok(meta) => (Some(meta.block_id.clone()), check_block(bucket, key, &meta).await),
            Err(e) => (None, vec![e.to_string()]),
        };
        verdicts.push(Verdict { key: key.to_string(), block_id, problems });
    }
    let bad = verdicts.iter().filter(|v| !v.problems.is_empty()).count();
    if output == Output::Json {
        let json = serde_json::json!({ "blocks": verdicts.len(), "bad": bad, "results": verdicts });
        serde_json::to_writer_pretty(&mut *out, &json)?;
        writeln!(out)?;
    } else {
        for verdict in &verdicts {
            let name = verdict.block_id.as_deref().unwrap_or(&verdict.key);
            if verdict.problems.is_empty() {
                writeln!(out, "ok   {name}")?;
            } else {
                writeln!(out, "BAD  {name} ({}): {}", verdict.key, verdict.problems.join("; "))?;
            }
        }
        writeln!(out, "{} blocks verified, {bad} bad", verdicts.len())?;
    }
    Ok(bad == 0)
}

/// Everything wrong with one block (empty when it is good).
async fn check_block(
    bucket: &Bucket,
    key: &object_store::path::Path,
    meta: &BlockMeta,
) -> Vec<String> {
    let mut problems = Vec::new();
    if bucket.meta_key(meta) != *key {
        problems.push(format!("meta.json describes a block stored at {}", bucket.meta_key(meta)));
    }
    if meta.version != 1 {
        problems.push(format!("meta.json version {} is not supported", meta.version));
    }
    if meta.files.is_empty() {
        problems.push("meta.json lists no files".into());
    }
    let (mut rows, mut series) = (0u64, 0u64);
    let (mut min_time, mut max_time) = (i64::MAX, i64::MIN);
    for file in &meta.files {
        let file_key = bucket.file_key(meta, &file.name);
        match bucket.object_size(&file_key).await {
            Ok(Some(size)) if size == file.size => {}
            Ok(Some(size)) => {
                problems.push(format!("{}: size {size}, meta.json says {}", file.name, file.size));
                continue;
            }
            Ok(None) => {
                problems.push(format!("{}: missing", file.name));
                continue;
            }
            Err(e) => {
                problems.push(e.to_string());
                continue;
            }
        }
        let data = match bucket.get_file(meta, &file.name).await {
            Ok(data) => data,
            Err(e) => {
                problems.push(e.to_string());
                continue;
            }
        };
        // Decoding is CPU work; off the I/O thread.
        let verified = tokio::task::spawn_blocking(move || inspect::verify(data)).await;
        let verified = match verified {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                problems.push(format!("{}: {e}", file.name));
                continue;
            }
            Err(e) => {
                problems.push(format!("{}: decode task failed: {e}", file.name));
                continue;
            }
        };
        if (verified.signal, verified.tier) != (meta.signal, meta.tier) {
            problems.push(format!(
                "{}: holds {}/{}, meta.json says {}/{}",
                file.name,
                verified.signal.as_str(),
                verified.tier.as_str(),
                meta.signal.as_str(),
                meta.tier.as_str()
            ));
        }
        for unsorted in &verified.unsorted {
            problems.push(format!("{}: not sorted: {unsorted}", file.name));
        }
        rows += verified.rows;
        series += verified.series;
        min_time = min_time.min(verified.min_time_ms);
        max_time = max_time.max(verified.max_time_ms);
    }
    if !problems.is_empty() {
        return problems;
    }
    for (what, found, claimed) in [
        ("rows", rows as i128, meta.rows as i128),
        ("series", series as i128, meta.series as i128),
        ("min_time_ms", min_time as i128, meta.min_time_ms as i128),
        ("max_time_ms", max_time as i128, meta.max_time_ms as i128),
    ] {
        if found != claimed {
            problems.push(format!("{what}: data has {found}, meta.json says {claimed}"));
        }
    }
    problems
}
