//! A transactional id's state as the transaction coordinator keeps it (Kafka's
//! `TransactionMetadata`), and its record in `__transaction_state`.
//!
//! States (Kafka's `TransactionState`) and what leads where:
//!
//! | state | meaning | next |
//! |---|---|---|
//! | Empty | a producer id and epoch, no transaction | Ongoing (AddPartitionsToTxn / AddOffsetsToTxn) |
//! | Ongoing | partitions added, data may be written | PrepareCommit / PrepareAbort (EndTxn, timeout, fencing) |
//! | PrepareCommit, PrepareAbort | decided and durable; markers being written | CompleteCommit / CompleteAbort once every partition has its marker |
//! | CompleteCommit, CompleteAbort | done | Ongoing (next transaction), or a new epoch (InitProducerId) |
//!
//! A Prepare state found at start-up is completed (its markers written again: a marker for a
//! transaction that is already closed on a partition changes nothing there); an Ongoing one
//! is aborted with a bumped epoch, which fences the producer that was running it.
//!
//! ```text
//! key   : i16 version 0 | string transactional_id
//! value : i16 version 0 | i64 producer_id | i16 producer_epoch | i32 timeout_ms | i8 state
//!         | i64 start_ms | i64 last_update_ms | i32 count | count x (string topic | i32 partition)
//! string: i16 length + UTF-8
//! ```

use std::collections::BTreeSet;

use crate::coordinator::internal_topic::{put_string, Reader};
use crate::log::TopicPartition;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
}

impl TxnState {
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
        }
    }

    fn code(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
        }
    }

    fn from_code(c: i8) -> Option<TxnState> {
        Some(match c {
            0 => TxnState::Empty,
            1 => TxnState::Ongoing,
            2 => TxnState::PrepareCommit,
            3 => TxnState::PrepareAbort,
            4 => TxnState::CompleteCommit,
            5 => TxnState::CompleteAbort,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<TopicPartition>,
    pub start_ms: i64,
    pub last_update_ms: i64,
}

pub fn encode_key(transactional_id: &str) -> Vec<u8> {
    let mut out = 0i16.to_be_bytes().to_vec();
    put_string(&mut out, transactional_id);
    out
}

pub fn encode_value(t: &TxnMetadata) -> Vec<u8> {
    let mut out = 0i16.to_be_bytes().to_vec();
    out.extend_from_slice(&t.producer_id.to_be_bytes());
    out.extend_from_slice(&t.producer_epoch.to_be_bytes());
    out.extend_from_slice(&t.timeout_ms.to_be_bytes());
    out.push(t.state.code() as u8);
    out.extend_from_slice(&t.start_ms.to_be_bytes());
    out.extend_from_slice(&t.last_update_ms.to_be_bytes());
    out.extend_from_slice(&(t.partitions.len() as i32).to_be_bytes());
    for tp in &t.partitions {
        put_string(&mut out, &tp.topic);
        out.extend_from_slice(&tp.partition.to_be_bytes());
    }
    out
}

/// Decodes a `__transaction_state` record: the id, and its state (`None`: deleted).
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Option<(String, Option<TxnMetadata>)> {
    let mut k = Reader::new(key);
    if k.i16()? != 0 {
        return None;
    }
    let id = k.string()?;
    let Some(value) = value else {
        return Some((id, None));
    };
    let mut r = Reader::new(value);
    r.i16()?;
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let timeout_ms = r.i32()?;
    let state = TxnState::from_code(r.take(1)?[0] as i8)?;
    let start_ms = r.i64()?;
    let last_update_ms = r.i64()?;
    let count = r.i32()?.max(0) as usize;
    let mut partitions = BTreeSet::new();
    for _ in 0..count.min(value.len()) {
        let topic = r.string()?;
        let partition = r.i32()?;
        partitions.insert(TopicPartition { topic, partition });
    }
    Some((
        id.clone(),
        Some(TxnMetadata {
            transactional_id: id,
            producer_id,
            producer_epoch,
            timeout_ms,
            state,
            partitions,
            start_ms,
            last_update_ms,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let mut partitions = BTreeSet::new();
        partitions.insert(TopicPartition {
            topic: "t".into(),
            partition: 3,
        });
        let t = TxnMetadata {
            transactional_id: "tx".into(),
            producer_id: 9,
            producer_epoch: 2,
            timeout_ms: 60_000,
            state: TxnState::PrepareCommit,
            partitions,
            start_ms: 5,
            last_update_ms: 6,
        };
        let (id, back) = decode(&encode_key("tx"), Some(&encode_value(&t))).unwrap();
        assert_eq!(id, "tx");
        assert_eq!(back, Some(t));
        assert_eq!(decode(&encode_key("tx"), None).unwrap().1, None);
    }
}
