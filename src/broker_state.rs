//! The broker's lifecycle, in Kafka's `BrokerState` terms: STARTING while the HTTP
//! listener is up but nothing else, RECOVERY while the logs load, RUNNING once the Kafka
//! listeners accept requests, SHUTTING_DOWN from the stop signal on. `/health` answers 200
//! only in RUNNING; `kafka_server_kafkaserver_brokerstate` reports the value.
//!
//! Shared as `Arc<Lifecycle>` between the server and the HTTP listener: the state is an
//! atomic, the broker a `OnceLock` set once when it has loaded.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

use crate::broker::Broker;

/// Kafka's `org.apache.kafka.metadata.BrokerState`, with its numeric values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum BrokerState {
    NotRunning = 0,
    Starting = 1,
    Recovery = 2,
    Running = 3,
    PendingControlledShutdown = 6,
    ShuttingDown = 7,
}

impl BrokerState {
    fn from_value(value: u8) -> BrokerState {
        match value {
            1 => BrokerState::Starting,
            2 => BrokerState::Recovery,
            3 => BrokerState::Running,
            6 => BrokerState::PendingControlledShutdown,
            7 => BrokerState::ShuttingDown,
            _ => BrokerState::NotRunning,
        }
    }

    /// Kafka's name of the state (`RUNNING`).
    pub fn name(self) -> &'static str {
        match self {
            BrokerState::NotRunning => "NOT_RUNNING",
            BrokerState::Starting => "STARTING",
            BrokerState::Recovery => "RECOVERY",
            BrokerState::Running => "RUNNING",
            BrokerState::PendingControlledShutdown => "PENDING_CONTROLLED_SHUTDOWN",
            BrokerState::ShuttingDown => "SHUTTING_DOWN",
        }
    }

    pub fn value(self) -> u8 {
        self as u8
    }
}

#[derive(Default)]
pub struct Lifecycle {
    state: AtomicU8,
    broker: OnceLock<Arc<Broker>>,
}

impl std::fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lifecycle")
            .field("state", &self.state())
            .finish()
    }
}

impl Lifecycle {
    pub fn new() -> Lifecycle {
        Lifecycle {
            state: AtomicU8::new(BrokerState::Starting.value()),
            broker: OnceLock::new(),
        }
    }

    pub fn state(&self) -> BrokerState {
        BrokerState::from_value(self.state.load(Ordering::Acquire))
    }

    pub fn set(&self, state: BrokerState) {
        self.state.store(state.value(), Ordering::Release);
    }

    /// The loaded broker (set once, before RUNNING).
    pub fn set_broker(&self, broker: Arc<Broker>) {
        let _ = self.broker.set(broker);
    }

    /// The broker, once it has loaded.
    pub fn broker(&self) -> Option<Arc<Broker>> {
        self.broker.get().cloned()
    }

    /// The broker while it is RUNNING (requests may be served).
    pub fn running(&self) -> Option<Arc<Broker>> {
        (self.state() == BrokerState::Running)
            .then(|| self.broker())
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_keep_kafkas_values() {
        let l = Lifecycle::new();
        assert_eq!(l.state(), BrokerState::Starting);
        for s in [
            BrokerState::Recovery,
            BrokerState::Running,
            BrokerState::ShuttingDown,
        ] {
            l.set(s);
            assert_eq!(l.state(), s);
        }
        assert_eq!(BrokerState::Running.value(), 3);
        assert_eq!(BrokerState::ShuttingDown.name(), "SHUTTING_DOWN");
        assert!(l.running().is_none());
    }
}
