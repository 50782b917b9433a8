//! The `strata` command line: `run`, `check config`, `test promql`, `blocks list|inspect|verify`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: batches are built on the request task and freed on a shard worker; measured faster
/// than glibc malloc for that pattern (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use strata::config::Config;
use strata::storage::bucket::{cli as blocks_cli, BlockFilter};
use strata::storage::{StoredSignal, Tier};
use strata::telemetry::{self, LogFormat};

#[derive(Parser, Debug)]
#[command(
    name = "strata",
    version,
    about = "One-binary observability pipeline: Prometheus remote-write in, relabeling, remote-write out"
)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Log level or filter directive (RUST_LOG overrides it).
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the daemon. Without --config: the all-in-one defaults (listen on 127.0.0.1:9700).
    Run {
        /// YAML config file.
        #[arg(long, short = 'c')]
        config: Option<PathBuf>,
    },
    /// Check files without running anything.
    Check {
        #[command(subcommand)]
        what: CheckCommand,
    },
    /// Run test scripts.
    Test {
        #[command(subcommand)]
        what: TestCommand,
    },
    /// Look at the blocks in a bucket (docs/storage-format.md).
    Blocks {
        #[command(subcommand)]
        what: BlocksCommand,
        #[command(flatten)]
        bucket: BucketArgs,
    },
}

#[derive(clap::Args, Debug)]
struct BucketArgs {
    /// Bucket URL: a directory, file://, s3://bucket/prefix, gs://, az://.
    #[arg(long, global = true)]
    bucket: Option<String>,
    /// An object_store option, e.g. aws_endpoint=http://127.0.0.1:9000 (repeatable).
    #[arg(long = "bucket-option", value_name = "KEY=VALUE", global = true, value_parser = parse_key_value)]
    bucket_options: Vec<(String, String)>,
    /// Only this tenant.
    #[arg(long, global = true)]
    tenant: Option<String>,
    /// Only this signal: metrics, logs, traces.
    #[arg(long, global = true, value_parser = parse_signal)]
    signal: Option<StoredSignal>,
    /// Only this tier: raw, 5m, 1h.
    #[arg(long, global = true, value_parser = parse_tier)]
    tier: Option<Tier>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value = "text")]
    output: OutputFormat,
}

#[derive(Subcommand, Debug)]
enum BlocksCommand {
    /// A table of blocks per tier, with totals.
    List,
    /// meta.json and the Parquet footer of one block.
    Inspect {
        /// The block id (28 hex digits).
        block_id: String,
    },
    /// Read every block; exit 0 when all are good, 1 naming each bad block and why.
    Verify,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum OutputFormat {
    Text,
    Json,
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

fn parse_signal(text: &str) -> Result<StoredSignal, String> {
    StoredSignal::parse(text).ok_or_else(|| format!("{text:?}: use metrics, logs or traces"))
}

fn parse_tier(text: &str) -> Result<Tier, String> {
    Tier::parse(text).ok_or_else(|| format!("{text:?}: use raw, 5m or 1h"))
}

fn blocks(what: &BlocksCommand, args: BucketArgs) -> ExitCode {
    let Some(url) = args.bucket.filter(|u| !u.is_empty()) else {
        eprintln!("strata blocks: --bucket URL is required");
        return ExitCode::from(2);
    };
    let command = match what {
        BlocksCommand::List => blocks_cli::BlocksCommand::List,
        BlocksCommand::Inspect { block_id } => {
            blocks_cli::BlocksCommand::Inspect { block_id: block_id.clone() }
        }
        BlocksCommand::Verify => blocks_cli::BlocksCommand::Verify,
    };
    let filter = BlockFilter { tenant: args.tenant, signal: args.signal, tier: args.tier };
    let options: BTreeMap<String, String> = args.bucket_options.into_iter().collect();
    let output = match args.output {
        OutputFormat::Text => blocks_cli::Output::Text,
        OutputFormat::Json => blocks_cli::Output::Json,
    };
    let mut stdout = std::io::stdout().lock();
    match blocks_cli::run(&command, &url, &options, &filter, output, &mut stdout) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("strata blocks: {err}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Subcommand, Debug)]
enum CheckCommand {
    /// Parse and validate a config file; exit 0 when valid, 1 with every error otherwise.
    Config {
        /// YAML config file.
        file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum TestCommand {
    /// Run Prometheus `promqltest` scripts; exit 1 if any case fails.
    Promql {
        /// Also list skipped cases with their reasons.
        #[arg(long, short = 'v')]
        verbose: bool,
        /// YAML list of unsupported files, rules and cases to skip (each with a reason), e.g.
        /// tests/promql-unsupported.yml.
        #[arg(long, value_name = "FILE")]
        unsupported: Option<PathBuf>,
        /// Script files (`*.test`).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn test_promql(verbose: bool, unsupported: Option<&PathBuf>, files: &[PathBuf]) -> ExitCode {
    use std::io::Write;
    use strata::promql::promqltest::{run_file, Totals, Unsupported};

    let unsupported = match unsupported.map(|path| Unsupported::load(path)).transpose() {
        Ok(list) => list.unwrap_or_default(),
        Err(message) => {
            eprintln!("strata test promql: {message}");
            return ExitCode::from(2);
        }
    };
    let mut totals = Totals::default();
    let mut stdout = std::io::stdout().lock();
    for file in files {
        let report = run_file(file, &unsupported);
        totals.add(&report);
        if report.print(&mut stdout, verbose).is_err() {
            return ExitCode::FAILURE;
        }
    }
    let _ = writeln!(stdout, "total: {totals}");
    if totals.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn load(path: Option<&PathBuf>) -> Result<Config, String> {
    let (config, source) = match path {
        Some(path) => (Config::load(path).map_err(|e| e.to_string())?, path.display().to_string()),
        None => (Config::default(), "<defaults>".to_owned()),
    };
    config.validate(&source).map_err(|e| e.to_string())?;
    Ok(config)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Blocks { what, bucket } => blocks(&what, bucket),
        Command::Test { what: TestCommand::Promql { verbose, unsupported, files } } => {
            test_promql(verbose, unsupported.as_ref(), &files)
        }
        Command::Check { what: CheckCommand::Config { file } } => match load(Some(&file)) {
            Ok(_) => {
                eprintln!("{}: ok", file.display());
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("{message}");
                ExitCode::FAILURE
            }
        },
        Command::Run { config } => {
            if let Err(message) = telemetry::init_logging(cli.log_format, &cli.log_level) {
                eprintln!("{message}");
                return ExitCode::FAILURE;
            }
            let config = match load(config.as_ref()) {
                Ok(config) => config,
                Err(message) => {
                    tracing::error!("{message}");
                    eprintln!("{message}");
                    return ExitCode::FAILURE;
                }
            };
            match strata::app::run(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    tracing::error!(error = %err, "strata failed");
                    eprintln!("strata: {err}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
