//! The `gregor` admin commands: `topic`, `produce`, `consume`, `group` and `cluster`,
//! talking the Kafka protocol to any broker (Gregor or Apache Kafka) through
//! [`crate::admin`]. Tables for people by default, `--format json` for scripts; progress
//! on standard error when it is a terminal. Exit code 1 when the operation fails.

mod cluster;
mod consume;
mod group;
pub mod output;
mod produce;
pub mod progress;
pub mod time;
mod topic;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::admin::network::NetworkTransport;
use crate::admin::{Admin, AdminError};
use output::Format;

/// The client id the commands send.
const CLIENT_ID: &str = "gregor-cli";

/// How to reach the cluster, and how to print.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// The broker(s) to connect to: HOST:PORT, comma-separated.
    #[arg(
        short = 'b',
        long = "bootstrap-server",
        default_value = "127.0.0.1:9092",
        global = true
    )]
    pub bootstrap_server: String,
    /// Output: aligned tables, or JSON.
    #[arg(long, value_enum, default_value = "table", global = true)]
    pub format: Format,
    /// How long to wait for a connection or an answer, in milliseconds.
    #[arg(long = "request-timeout-ms", default_value_t = 30_000, global = true)]
    pub request_timeout_ms: u64,
}

/// The admin commands, flattened into `gregor`'s own.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create, list, describe, delete topics and alter their configs.
    Topic {
        #[command(subcommand)]
        command: topic::TopicCommand,
        #[command(flatten)]
        connection: Connection,
    },
    /// Write lines from standard input to a topic (VALUE, or KEY:VALUE with --parse-key).
    Produce {
        #[command(flatten)]
        args: produce::ProduceArgs,
        #[command(flatten)]
        connection: Connection,
    },
    /// Read records from a topic, from an offset, a time or a group's position.
    Consume {
        #[command(flatten)]
        args: consume::ConsumeArgs,
        #[command(flatten)]
        connection: Connection,
    },
    /// List, describe and delete groups; reset their offsets.
    Group {
        #[command(subcommand)]
        command: group::GroupCommand,
        #[command(flatten)]
        connection: Connection,
    },
    /// The cluster's id, controller and brokers.
    Cluster {
        #[command(subcommand)]
        command: cluster::ClusterCommand,
        #[command(flatten)]
        connection: Connection,
    },
}

/// Runs an admin command to completion on a runtime of its own.
pub fn run(command: AdminCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gregor: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gregor: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn connect(connection: &Connection) -> Result<Admin, AdminError> {
    let transport = NetworkTransport::connect(
        &connection.bootstrap_server,
        Duration::from_millis(connection.request_timeout_ms.max(1)),
    )
    .await?;
    Ok(Admin::new(transport, CLIENT_ID))
}

async fn execute(command: AdminCommand) -> Result<(), AdminError> {
    match command {
        AdminCommand::Topic {
            command,
            connection,
        } => {
            let admin = connect(&connection).await?;
            topic::run(&admin, command, connection.format).await
        }
        AdminCommand::Produce { args, connection } => {
            let admin = connect(&connection).await?;
            produce::run(&admin, args, connection.format).await
        }
        AdminCommand::Consume { args, connection } => {
            let admin = connect(&connection).await?;
            consume::run(&admin, args, connection.format).await
        }
        AdminCommand::Group {
            command,
            connection,
        } => {
            let admin = connect(&connection).await?;
            group::run(&admin, command, connection.format).await
        }
        AdminCommand::Cluster {
            command,
            connection,
        } => {
            let admin = connect(&connection).await?;
            cluster::run(&admin, command, connection.format).await
        }
    }
}

/// Splits `KEY=VALUE`.
pub fn key_value(item: &str) -> Result<(String, String), String> {
    item.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .ok_or_else(|| format!("`{item}` is not KEY=VALUE"))
}
