//! The `strata` command line: `run`, `check config`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: batches are built on the request task and freed on a shard worker; measured faster
/// than glibc malloc for that pattern (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use strata::config::Config;
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
}

#[derive(Subcommand, Debug)]
enum CheckCommand {
    /// Parse and validate a config file; exit 0 when valid, 1 with every error otherwise.
    Config {
        /// YAML config file.
        file: PathBuf,
    },
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
