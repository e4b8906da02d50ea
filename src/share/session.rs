//! Share sessions (KIP-932's ShareFetch sessions, Kafka's `ShareSessionCache`): one per
//! (group, member) on this broker, holding the partitions the member fetches and the epoch
//! its next ShareFetch or ShareAcknowledge must carry. Epoch 0 opens a session (replacing
//! one the member had), -1 closes it; in between every request carries the next epoch (1,
//! 2, ..., wrapping to 1). A session belongs to the connection that opened it: when that
//! connection closes, the session goes and the member's records are released.
//!
//! Synchronisation: the cache sits behind the share manager's mutex; nothing here awaits.

use std::collections::{BTreeSet, HashMap};

use uuid::Uuid;

/// A topic partition, by topic id.
pub type TopicIdPartition = (Uuid, i32);

/// Why a session request was refused (top-level errors of ShareFetch/ShareAcknowledge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// SHARE_SESSION_NOT_FOUND.
    NotFound,
    /// INVALID_SHARE_SESSION_EPOCH.
    InvalidEpoch,
    /// SHARE_SESSION_LIMIT_REACHED (`group.share.max.share.sessions`).
    LimitReached,
}

#[derive(Debug, Clone)]
pub struct ShareSession {
    /// The epoch the next request must carry.
    pub epoch: i32,
    pub partitions: BTreeSet<TopicIdPartition>,
    /// The connection that opened it.
    pub connection: u64,
}

#[derive(Debug)]
pub struct ShareSessions {
    sessions: HashMap<(String, String), ShareSession>,
    max: usize,
}

fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

impl ShareSessions {
    pub fn new(max: usize) -> ShareSessions {
        ShareSessions {
            sessions: HashMap::new(),
            max,
        }
    }

    /// Epoch 0: a new session of `partitions` for `member`, replacing its old one.
    pub fn open(
        &mut self,
        group: &str,
        member: &str,
        partitions: BTreeSet<TopicIdPartition>,
        connection: u64,
    ) -> Result<(), SessionError> {
        let key = (group.to_string(), member.to_string());
        if !self.sessions.contains_key(&key) && self.sessions.len() >= self.max {
            return Err(SessionError::LimitReached);
        }
        self.sessions.insert(
            key,
            ShareSession {
                epoch: 1,
                partitions,
                connection,
            },
        );
        Ok(())
    }

    /// A ShareFetch at `epoch` > 0: adds `added`, drops `forgotten`, and returns every
    /// partition of the session.
    pub fn fetch(
        &mut self,
        group: &str,
        member: &str,
        epoch: i32,
        added: &[TopicIdPartition],
        forgotten: &[TopicIdPartition],
    ) -> Result<BTreeSet<TopicIdPartition>, SessionError> {
        let session = self.current(group, member, epoch)?;
        session.partitions.extend(added.iter().copied());
        for p in forgotten {
            session.partitions.remove(p);
        }
        session.epoch = next_epoch(session.epoch);
        Ok(session.partitions.clone())
    }

    /// A ShareAcknowledge at `epoch` > 0: the session moves on to the next epoch.
    pub fn acknowledge(
        &mut self,
        group: &str,
        member: &str,
        epoch: i32,
    ) -> Result<(), SessionError> {
        let session = self.current(group, member, epoch)?;
        session.epoch = next_epoch(session.epoch);
        Ok(())
    }

    fn current(
        &mut self,
        group: &str,
        member: &str,
        epoch: i32,
    ) -> Result<&mut ShareSession, SessionError> {
        let session = self
            .sessions
            .get_mut(&(group.to_string(), member.to_string()))
            .ok_or(SessionError::NotFound)?;
        if session.epoch != epoch {
            return Err(SessionError::InvalidEpoch);
        }
        Ok(session)
    }

    /// Epoch -1: the session ends; its partitions are returned (the member's records on
    /// them are released).
    pub fn close(&mut self, group: &str, member: &str) -> Result<ShareSession, SessionError> {
        self.sessions
            .remove(&(group.to_string(), member.to_string()))
            .ok_or(SessionError::NotFound)
    }

    /// The sessions `connection` opened, removed: (group, member, session).
    pub fn close_connection(&mut self, connection: u64) -> Vec<(String, String, ShareSession)> {
        let keys: Vec<(String, String)> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.connection == connection)
            .map(|(k, _)| k.clone())
            .collect();
        keys.into_iter()
            .filter_map(|k| {
                let s = self.sessions.remove(&k)?;
                Some((k.0, k.1, s))
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_follow_each_other_and_a_session_is_closed_with_its_connection() {
        let tp = (Uuid::from_u128(1), 0);
        let mut s = ShareSessions::new(1);
        s.open("g", "m", BTreeSet::from([tp]), 7).unwrap();
        assert_eq!(
            s.open("g", "other", BTreeSet::new(), 7),
            Err(SessionError::LimitReached)
        );
        assert_eq!(
            s.fetch("g", "m", 2, &[], &[]),
            Err(SessionError::InvalidEpoch)
        );
        assert_eq!(
            s.fetch("g", "m", 1, &[], &[]).unwrap(),
            BTreeSet::from([tp])
        );
        s.acknowledge("g", "m", 2).unwrap();
        let tp2 = (Uuid::from_u128(2), 1);
        assert_eq!(
            s.fetch("g", "m", 3, &[tp2], &[tp]).unwrap(),
            BTreeSet::from([tp2])
        );
        assert_eq!(s.fetch("g", "x", 1, &[], &[]), Err(SessionError::NotFound));
        // Reopening replaces it.
        s.open("g", "m", BTreeSet::new(), 8).unwrap();
        assert!(s.close_connection(7).is_empty());
        assert_eq!(s.close_connection(8).len(), 1);
        assert_eq!(s.close("g", "m").unwrap_err(), SessionError::NotFound);
    }
}
