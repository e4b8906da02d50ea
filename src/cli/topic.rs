//! `gregor topic create|list|describe|delete|alter-config`.

use clap::Subcommand;

use super::key_value;
use super::output::{or_dash, print_json, say, write_out, Format, Table};
use crate::admin::topics::NewTopic;
use crate::admin::{Admin, AdminError};

#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        name: String,
        /// Partitions (default: the broker's num.partitions).
        #[arg(short, long, default_value_t = -1)]
        partitions: i32,
        /// Replication factor (default: the broker's default.replication.factor).
        #[arg(short, long = "replication-factor", default_value_t = -1)]
        replication_factor: i16,
        /// A topic config, KEY=VALUE; repeatable.
        #[arg(short, long = "config", value_name = "KEY=VALUE", value_parser = key_value)]
        config: Vec<(String, String)>,
    },
    /// List topics.
    List {
        /// Include internal topics (__consumer_offsets, ...).
        #[arg(long)]
        internal: bool,
    },
    /// A topic's partitions (leaders, offsets, sizes) and its configs.
    Describe { name: String },
    /// Delete a topic.
    Delete { name: String },
    /// Set configs of a topic, or return them to their defaults.
    AlterConfig {
        name: String,
        /// KEY=VALUE to set; repeatable.
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = key_value)]
        set: Vec<(String, String)>,
        /// KEY to return to its default; repeatable.
        #[arg(long = "delete", value_name = "KEY")]
        delete: Vec<String>,
    },
}

pub async fn run(admin: &Admin, command: TopicCommand, format: Format) -> Result<(), AdminError> {
    match command {
        TopicCommand::Create {
            name,
            partitions,
            replication_factor,
            config,
        } => {
            let id = admin
                .create_topic(&NewTopic {
                    name: name.clone(),
                    partitions,
                    replication_factor,
                    configs: config,
                })
                .await?;
            if format == Format::Json {
                print_json(&serde_json::json!({ "name": name, "id": id }));
            } else {
                say!("Created topic {name} ({id}).");
            }
        }
        TopicCommand::List { internal } => {
            let topics = admin.list_topics(internal).await?;
            if format == Format::Json {
                print_json(&topics);
                return Ok(());
            }
            let mut table = Table::new(&["TOPIC", "PARTITIONS", "REPLICATION", "ID"]);
            for t in &topics {
                table.row(vec![
                    t.name.clone(),
                    t.partitions.to_string(),
                    t.replication_factor.to_string(),
                    t.id.clone(),
                ]);
            }
            write_out(&table.render());
        }
        TopicCommand::Describe { name } => {
            let topic = admin.describe_topic(&name).await?;
            if format == Format::Json {
                print_json(&topic);
                return Ok(());
            }
            say!(
                "Topic: {}  Id: {}  Partitions: {}  Messages: {}  Size: {}",
                topic.name,
                topic.id,
                topic.partitions.len(),
                topic.messages(),
                or_dash(topic.size_bytes())
            );
            say!();
            let mut table = Table::new(&[
                "PARTITION",
                "LEADER",
                "REPLICAS",
                "ISR",
                "LOG-START",
                "HIGH-WATERMARK",
                "MESSAGES",
                "SIZE",
            ]);
            for p in &topic.partitions {
                let list = |ids: &[i32]| {
                    ids.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                };
                table.row(vec![
                    p.partition.to_string(),
                    p.leader.to_string(),
                    list(&p.replicas),
                    list(&p.isr),
                    p.log_start_offset.to_string(),
                    p.high_watermark.to_string(),
                    p.messages().to_string(),
                    or_dash(p.size_bytes),
                ]);
            }
            write_out(&table.render());
            say!();
            let mut configs = Table::new(&["CONFIG", "VALUE", "SOURCE"]);
            for c in &topic.configs {
                let value = if c.sensitive {
                    Some("(sensitive)")
                } else {
                    c.value.as_deref()
                };
                configs.row(vec![c.name.clone(), or_dash(value), c.source.to_string()]);
            }
            write_out(&configs.render());
        }
        TopicCommand::Delete { name } => {
            admin.delete_topic(&name).await?;
            if format == Format::Json {
                print_json(&serde_json::json!({ "deleted": name }));
            } else {
                say!("Deleted topic {name}.");
            }
        }
        TopicCommand::AlterConfig { name, set, delete } => {
            if set.is_empty() && delete.is_empty() {
                return Err(AdminError::Invalid(
                    "nothing to change: give --set KEY=VALUE or --delete KEY".into(),
                ));
            }
            admin.alter_topic_configs(&name, &set, &delete).await?;
            if format == Format::Json {
                print_json(
                    &serde_json::json!({ "topic": name, "set": set.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<std::collections::BTreeMap<_, _>>(), "deleted": delete }),
                );
            } else {
                say!("Altered the configs of topic {name}.");
            }
        }
    }
    Ok(())
}
