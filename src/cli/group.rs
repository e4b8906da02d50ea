//! `gregor group list|describe|delete|reset-offsets`, with the columns of Kafka's
//! `kafka-consumer-groups.sh`.

use clap::{ArgGroup, Subcommand};

use super::output::{or_dash, print_json, say, write_out, Format, Table};
use super::time::parse_time;
use crate::admin::group_offsets::ResetTo;
use crate::admin::{Admin, AdminError};

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// List groups of every type.
    List,
    /// A group's state, members, and per partition its offset, log end and lag.
    Describe { group: String },
    /// Delete a group that has no members (with its committed offsets).
    Delete { group: String },
    /// Move a group's offsets on a topic (the group must have no members). Shows the plan;
    /// commits it only with --execute.
    #[command(group(ArgGroup::new("to").required(true).args(["to_earliest", "to_latest", "to_offset", "to_datetime", "shift_by"])))]
    ResetOffsets {
        group: String,
        /// The topic whose offsets move.
        #[arg(long)]
        topic: String,
        /// Only these partitions (comma-separated).
        #[arg(long, value_delimiter = ',')]
        partitions: Vec<i32>,
        #[arg(long = "to-earliest")]
        to_earliest: bool,
        #[arg(long = "to-latest")]
        to_latest: bool,
        #[arg(long = "to-offset", value_name = "OFFSET")]
        to_offset: Option<i64>,
        /// The first offset at or after this time (ms since the epoch or ISO-8601).
        #[arg(long = "to-datetime", value_name = "TIME")]
        to_datetime: Option<String>,
        /// Move by this many offsets (negative: back).
        #[arg(long = "shift-by", value_name = "N", allow_hyphen_values = true)]
        shift_by: Option<i64>,
        /// Commit the new offsets (without it, only show them).
        #[arg(long)]
        execute: bool,
    },
}

pub async fn run(admin: &Admin, command: GroupCommand, format: Format) -> Result<(), AdminError> {
    match command {
        GroupCommand::List => {
            let groups = admin.list_groups().await?;
            if format == Format::Json {
                print_json(&groups);
                return Ok(());
            }
            let mut table = Table::new(&["GROUP", "TYPE", "STATE", "PROTOCOL-TYPE"]);
            for g in &groups {
                table.row(vec![
                    g.group_id.clone(),
                    g.group_type.clone(),
                    g.state.clone(),
                    or_dash(Some(&g.protocol_type).filter(|p| !p.is_empty())),
                ]);
            }
            write_out(&table.render());
        }
        GroupCommand::Describe { group } => {
            let d = admin.describe_group(&group).await?;
            if format == Format::Json {
                print_json(&d);
                return Ok(());
            }
            say!(
                "Group: {}  Type: {}  State: {}  Assignor: {}  Coordinator: {}  Members: {}  Lag: {}",
                d.group_id,
                d.group_type,
                d.state,
                or_dash(Some(&d.assignor).filter(|a| !a.is_empty())),
                d.coordinator,
                d.members.len(),
                d.lag()
            );
            say!();
            let mut table = Table::new(&[
                "TOPIC",
                "PARTITION",
                "CURRENT-OFFSET",
                "LOG-END-OFFSET",
                "LAG",
                "CONSUMER-ID",
                "HOST",
                "CLIENT-ID",
            ]);
            for o in &d.offsets {
                let member = o
                    .member_id
                    .as_ref()
                    .and_then(|id| d.members.iter().find(|m| &m.member_id == id));
                table.row(vec![
                    o.topic.clone(),
                    o.partition.to_string(),
                    or_dash(o.committed),
                    or_dash(o.log_end_offset),
                    or_dash(o.lag),
                    or_dash(o.member_id.as_deref()),
                    or_dash(member.map(|m| m.host.as_str())),
                    or_dash(member.map(|m| m.client_id.as_str())),
                ]);
            }
            write_out(&table.render());
        }
        GroupCommand::Delete { group } => {
            admin.delete_group(&group).await?;
            if format == Format::Json {
                print_json(&serde_json::json!({ "deleted": group }));
            } else {
                say!("Deleted group {group}.");
            }
        }
        GroupCommand::ResetOffsets {
            group,
            topic,
            partitions,
            to_earliest,
            to_latest,
            to_offset,
            to_datetime,
            shift_by,
            execute,
        } => {
            let to = if to_earliest {
                ResetTo::Earliest
            } else if to_latest {
                ResetTo::Latest
            } else if let Some(o) = to_offset {
                ResetTo::Offset(o)
            } else if let Some(t) = to_datetime {
                ResetTo::Timestamp(parse_time(&t).map_err(AdminError::Invalid)?)
            } else {
                ResetTo::ShiftBy(shift_by.unwrap_or(0))
            };
            let partitions = (!partitions.is_empty()).then_some(partitions.as_slice());
            let plan = admin
                .reset_offsets(&group, &topic, partitions, to, execute)
                .await?;
            if format == Format::Json {
                print_json(
                    &serde_json::json!({ "group": group, "executed": execute, "offsets": plan }),
                );
                return Ok(());
            }
            let mut table = Table::new(&[
                "GROUP",
                "TOPIC",
                "PARTITION",
                "PREVIOUS-OFFSET",
                "NEW-OFFSET",
            ]);
            for r in &plan {
                table.row(vec![
                    group.clone(),
                    r.topic.clone(),
                    r.partition.to_string(),
                    or_dash(r.previous),
                    r.new_offset.to_string(),
                ]);
            }
            write_out(&table.render());
            if !execute {
                eprintln!("(a dry run: add --execute to commit these offsets)");
            }
        }
    }
    Ok(())
}
