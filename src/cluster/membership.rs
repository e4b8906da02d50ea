//! Brokers in the cluster: this one heartbeats in PostgreSQL every
//! `broker.heartbeat.interval.ms`; the brokers that heartbeated within
//! `broker.session.timeout.ms` are the live ones, which Metadata lists. Every broker serves
//! every partition, so a partition's leader is only where clients are sent, placed by
//! `leaders.rs` from the live set; each topic's placement is kept until the set changes or
//! the topic is deleted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio_postgres::Client;
use uuid::Uuid;

use super::leaders;
use super::metadata::{self, BrokerRecord};

#[derive(Debug)]
pub struct Membership {
    pub me: BrokerRecord,
    pub incarnation: Uuid,
    /// The membership epoch and the live brokers it numbers.
    live: RwLock<(i32, Arc<Vec<BrokerRecord>>)>,
    /// The epoch again, for tasks that act when it changes (the coordinators' leadership).
    epoch_changes: watch::Sender<i32>,
    /// Asks for a heartbeat now rather than at the next interval (a coordinator was fenced).
    refresh: Notify,
    /// The last commit this broker's replica applied, reported with each heartbeat.
    applied: watch::Receiver<i64>,
    /// Each topic's leaders (with its partition count) under the live set they were
    /// placed on: computed once per topic and live set, not per partition asked.
    placements: Mutex<Placements>,
}

#[derive(Debug, Default)]
struct Placements {
    live: Option<Arc<Vec<BrokerRecord>>>,
    topics: HashMap<String, (i32, Arc<[i32]>)>,
}

impl Membership {
    pub fn new(me: BrokerRecord, applied: watch::Receiver<i64>) -> Membership {
        Membership {
            applied,
            live: RwLock::new((0, Arc::new(vec![me.clone()]))),
            me,
            incarnation: Uuid::new_v4(),
            epoch_changes: watch::channel(0).0,
            refresh: Notify::new(),
            placements: Mutex::new(Placements::default()),
        }
    }

    /// The membership epoch, marked changed whenever the live set this broker knows does.
    pub fn subscribe(&self) -> watch::Receiver<i32> {
        self.epoch_changes.subscribe()
    }

    /// Heartbeats at once: this broker's epoch is older than PostgreSQL's.
    pub fn refresh(&self) {
        self.refresh.notify_one();
    }

    /// The live brokers by node id (this one always among them).
    pub fn live(&self) -> Arc<Vec<BrokerRecord>> {
        self.live
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .1
            .clone()
    }

    /// The membership epoch of the live set this broker knows.
    pub fn epoch(&self) -> i32 {
        self.live
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
    }

    fn set_live(&self, epoch: i32, mut brokers: Vec<BrokerRecord>) {
        if !brokers.iter().any(|b| b.node_id == self.me.node_id) {
            // Our own heartbeat is not visible yet (or PostgreSQL's clock is behind).
            brokers.push(self.me.clone());
            brokers.sort_by_key(|b| b.node_id);
        }
        *self
            .live
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = (epoch, Arc::new(brokers));
        self.epoch_changes.send_if_modified(|e| {
            let changed = *e != epoch;
            *e = epoch;
            changed
        });
    }

    /// The membership epoch and the live set it numbers, read together.
    pub fn view(&self) -> (i32, Arc<Vec<BrokerRecord>>) {
        let view = self
            .live
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (view.0, view.1.clone())
    }

    /// The broker clients are sent to for `partition` of `topic`, which has `partitions`.
    pub fn leader(&self, topic: &str, partitions: i32, partition: i32) -> i32 {
        let live = self.live();
        let leaders = {
            let mut placements = self
                .placements
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !placements
                .live
                .as_ref()
                .is_some_and(|l| Arc::ptr_eq(l, &live))
            {
                placements.topics.clear();
                placements.live = Some(live.clone());
            }
            match placements.topics.get(topic) {
                Some((n, leaders)) if *n == partitions => leaders.clone(),
                _ => {
                    let leaders: Arc<[i32]> = leaders::assign(&live, topic, partitions).into();
                    placements
                        .topics
                        .insert(topic.to_string(), (partitions, leaders.clone()));
                    leaders
                }
            }
        };
        usize::try_from(partition)
            .ok()
            .and_then(|p| leaders.get(p).copied())
            .unwrap_or(self.me.node_id)
    }

    /// Drops a deleted topic's placement (the replica applies the deletion), so that
    /// topics created and deleted under one live set do not pile up in the cache.
    pub fn forget(&self, topic: &str) {
        self.placements
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .topics
            .remove(topic);
    }

    /// Registers this broker and reads the live set once.
    pub async fn join(
        &self,
        db: &mut Client,
        session_timeout_ms: u64,
    ) -> Result<(), tokio_postgres::Error> {
        let applied = *self.applied.borrow();
        let (epoch, live) =
            metadata::heartbeat(db, &self.me, self.incarnation, applied, session_timeout_ms)
                .await?;
        self.set_live(epoch, live);
        Ok(())
    }

    /// Heartbeats until `shutdown`, then leaves the cluster.
    pub async fn run(
        self: Arc<Self>,
        url: String,
        mut db: Client,
        interval: Duration,
        session_timeout_ms: u64,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = self.refresh.notified() => {}
                _ = shutdown.changed() => {
                    if let Err(e) = metadata::unregister(&mut db, self.me.node_id, self.incarnation).await {
                        tracing::warn!(error = %e, "could not leave the cluster; others drop this broker after broker.session.timeout.ms");
                    }
                    return;
                }
            }
            if db.is_closed() {
                match super::connect(&url).await {
                    Ok(fresh) => db = fresh,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot reconnect to PostgreSQL to heartbeat");
                        continue;
                    }
                }
            }
            if let Err(e) = self.join(&mut db, session_timeout_ms).await {
                tracing::warn!(error = %e, "heartbeat failed");
            }
        }
    }
}

/// One of `brokers` (never empty) for `topic`'s `partition`, the partitions taken in turn
/// from a place fixed by the topic's name: a rack's read replica (KIP-392), where spreading
/// matters and moves do not.
pub fn spread_among(brokers: &[BrokerRecord], topic: &str, partition: i32) -> i32 {
    let start = crc32c::crc32c(topic.as_bytes()) as usize;
    brokers[(start + partition.max(0) as usize) % brokers.len()].node_id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(node_id: i32) -> BrokerRecord {
        BrokerRecord {
            node_id,
            endpoints: vec![("PLAINTEXT".into(), "127.0.0.1".into(), 9092)],
            rack: None,
        }
    }

    #[test]
    fn leaders_spread_over_the_live_brokers_the_same_way_everywhere() {
        let a = Membership::new(broker(1), watch::channel(0).1);
        a.set_live(1, vec![broker(1), broker(2), broker(3)]);
        let b = Membership::new(broker(3), watch::channel(0).1);
        b.set_live(1, vec![broker(1), broker(2), broker(3)]);
        let leaders: Vec<i32> = (0..6).map(|p| a.leader("t", 6, p)).collect();
        assert_eq!(
            leaders,
            (0..6).map(|p| b.leader("t", 6, p)).collect::<Vec<_>>()
        );
        for node in 1..=3 {
            assert_eq!(leaders.iter().filter(|&&l| l == node).count(), 2);
        }
        // A broker that left takes no partitions; its own view always has itself.
        b.set_live(2, vec![broker(2), broker(3)]);
        assert!((0..6).all(|p| b.leader("t", 6, p) != 1));
        // The topic grew: placed again for its new partition count.
        assert_eq!(
            (0..9).map(|p| b.leader("t", 9, p)).collect::<Vec<_>>(),
            leaders::assign(&b.live(), "t", 9)
        );
        b.set_live(3, vec![broker(1)]);
        assert_eq!(b.live().len(), 2, "this broker is always live to itself");
        assert_eq!(b.epoch(), 3);
    }

    /// A deleted topic's placement leaves the cache; asked again (a topic created under
    /// that name), it is placed the same way.
    #[test]
    fn a_deleted_topics_placement_is_forgotten() {
        let m = Membership::new(broker(1), watch::channel(0).1);
        m.set_live(1, vec![broker(1), broker(2), broker(3)]);
        let cached = |m: &Membership| {
            m.placements
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .topics
                .len()
        };
        let first: Vec<i32> = (0..4).map(|p| m.leader("gone", 4, p)).collect();
        m.leader("kept", 1, 0);
        assert_eq!(cached(&m), 2);
        m.forget("gone");
        assert_eq!(cached(&m), 1);
        assert_eq!(
            (0..4).map(|p| m.leader("gone", 4, p)).collect::<Vec<_>>(),
            first
        );
    }
}
