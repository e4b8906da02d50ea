//! The state every request handler shares: configuration, the log manager, and the address
//! this broker advertises. Immutable after start-up; shared as `Arc<Broker>`.

use std::sync::Arc;

use crate::config::BrokerConfig;
use crate::coordinator::GroupCoordinator;
use crate::log_manager::LogManager;
use crate::producer_ids::ProducerIdManager;
use crate::transaction::TransactionCoordinator;

#[derive(Clone)]
pub struct Broker {
    pub config: Arc<BrokerConfig>,
    pub logs: Arc<LogManager>,
    pub groups: Arc<GroupCoordinator>,
    pub producer_ids: Arc<ProducerIdManager>,
    pub txns: Arc<TransactionCoordinator>,
    /// Host and port given to clients in Metadata (the bound port when configured as 0).
    pub advertised_host: String,
    pub advertised_port: u16,
}

impl Broker {
    pub fn node_id(&self) -> i32 {
        self.config.node_id
    }
}
