//! Gregor: a broker speaking the Apache Kafka protocol on a native segment store.
//! This file is the command line: parse flags, load and validate the configuration,
//! set up logging, run the server, and turn failures into exit codes. The broker itself is
//! the library (`lib.rs`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use gregor::config::{environment, is_known_key, BrokerConfig, RawConfig, DEFAULT_CONFIG_YAML};
use gregor::{alloc, error_chain, server, shutdown};

#[global_allocator]
static ALLOCATOR: alloc::GregorAlloc = alloc::GregorAlloc;

#[derive(Parser)]
#[command(
    name = "gregor",
    version,
    about = "A broker that speaks the Apache Kafka protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker.
    Serve(ServeArgs),
    /// Print the default configuration file.
    DefaultConfig,
    #[command(flatten)]
    Admin(gregor::cli::AdminCommand),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Configuration file (YAML, Kafka property names). Default: the embedded config/gregor.yaml.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Listen address HOST:PORT (sets `listeners` to PLAINTEXT://HOST:PORT).
    #[arg(long)]
    listen: Option<String>,
    /// Data directory (sets `log.dirs`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Log filter: error, warn, info, debug, trace, or a tracing directive.
    #[arg(long, default_value = "info")]
    log_level: String,
    /// Any configuration key, KEY=VALUE; repeatable; wins over the file.
    #[arg(long = "override", short = 'o', value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

fn load_config(args: &ServeArgs) -> Result<BrokerConfig, String> {
    let text = match &args.config {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        None => DEFAULT_CONFIG_YAML.to_string(),
    };
    let mut raw = RawConfig::from_yaml(&text).map_err(|e| e.to_string())?;
    if args.config.is_none() {
        raw.mark_shipped();
    }
    // Environment variables (containers) over the file, under the flags.
    let from_env = environment::settings(std::env::vars(), is_known_key);
    for name in &from_env.unknown {
        tracing::warn!(variable = %name, "environment variable names no broker setting; ignored");
    }
    for (key, value) in &from_env.settings {
        raw.set(key, value);
    }
    if let Some(listen) = &args.listen {
        raw.set("listeners", &format!("PLAINTEXT://{listen}"));
    }
    if let Some(dir) = &args.data_dir {
        raw.set("log.dirs", &dir.to_string_lossy());
    }
    for item in &args.overrides {
        let (key, value) = item
            .split_once('=')
            .ok_or_else(|| format!("--override `{item}` is not KEY=VALUE"))?;
        raw.set(key.trim(), value.trim());
    }
    BrokerConfig::from_raw(&raw).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    alloc::tune_malloc();
    let cli = Cli::parse();
    let args = match cli.command {
        Command::DefaultConfig => {
            print!("{DEFAULT_CONFIG_YAML}");
            return ExitCode::SUCCESS;
        }
        Command::Serve(args) => args,
        Command::Admin(command) => return gregor::cli::run(command),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: log files and pipes get plain text.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = match load_config(&args) {
        Ok(config) => Arc::new(config),
        Err(e) => {
            eprintln!("gregor: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gregor: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stop = {
        let _runtime = runtime.enter();
        shutdown::listen()
    };
    match runtime.block_on(server::run(config, stop)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gregor: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}
