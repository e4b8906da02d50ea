//! `gregor cluster info`.

use clap::Subcommand;

use super::output::{or_dash, print_json, say, write_out, Format, Table};
use crate::admin::{Admin, AdminError};

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// The cluster id, controller, brokers and topic counts.
    Info,
}

pub async fn run(admin: &Admin, command: ClusterCommand, format: Format) -> Result<(), AdminError> {
    match command {
        ClusterCommand::Info => {
            let info = admin.cluster_info().await?;
            if format == Format::Json {
                print_json(&info);
                return Ok(());
            }
            say!("Cluster id:  {}", or_dash(info.cluster_id.as_deref()));
            say!("Controller:  {}", info.controller_id);
            say!(
                "Topics:      {} ({} internal), {} partitions",
                info.topics,
                info.internal_topics,
                info.partitions
            );
            say!();
            let mut table = Table::new(&["NODE", "HOST", "PORT", "RACK"]);
            for b in &info.brokers {
                table.row(vec![
                    b.node_id.to_string(),
                    b.host.clone(),
                    b.port.to_string(),
                    or_dash(b.rack.as_deref()),
                ]);
            }
            write_out(&table.render());
            Ok(())
        }
    }
}
