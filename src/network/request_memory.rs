//! `queued.max.request.bytes` (Kafka's `MemoryPool` for requests): bytes of requests read but
//! not yet answered, over all connections. A connection reserves a request's size after its
//! 4-byte size prefix and before reading the body, and gives it back when the answer has been
//! written; at the cap, reading waits instead of allocating more.
//!
//! Shared as `Arc<RequestMemoryPool>`; a tokio semaphore of bytes, so waiters are served in
//! order and none spins.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct RequestMemoryPool {
    /// `None`: no cap (-1, Kafka's default).
    bytes: Option<(Arc<Semaphore>, usize)>,
}

/// Bytes of one request, held until its answer is written.
pub struct RequestMemory(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

impl RequestMemoryPool {
    pub fn new(cap: Option<usize>) -> RequestMemoryPool {
        RequestMemoryPool {
            bytes: cap.map(|cap| {
                let cap = cap.clamp(1, Semaphore::MAX_PERMITS);
                (Arc::new(Semaphore::new(cap)), cap)
            }),
        }
    }

    #[cfg(test)]
    pub fn unbounded() -> RequestMemoryPool {
        RequestMemoryPool::new(None)
    }

    /// Waits until `size` bytes are free and takes them. The config makes every request fit
    /// (`queued.max.request.bytes` >= `socket.request.max.bytes`); a bigger one waits for the
    /// whole pool.
    pub async fn reserve(&self, size: usize) -> RequestMemory {
        let Some((semaphore, cap)) = &self.bytes else {
            return RequestMemory(None);
        };
        let n = size.clamp(1, *cap).min(u32::MAX as usize) as u32;
        // The semaphore is never closed, so acquiring only waits.
        RequestMemory(semaphore.clone().acquire_many_owned(n).await.ok())
    }

    /// Bytes free now (tests).
    #[cfg(test)]
    pub fn available(&self) -> Option<usize> {
        self.bytes.as_ref().map(|(s, _)| s.available_permits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn reading_waits_at_the_cap_until_an_answer_frees_memory() {
        let pool = Arc::new(RequestMemoryPool::new(Some(100)));
        let first = pool.reserve(60).await;
        assert_eq!(pool.available(), Some(40));
        let waiting = tokio::spawn({
            let pool = pool.clone();
            async move { pool.reserve(60).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !waiting.is_finished(),
            "a second 60-byte request fit in 40 free bytes"
        );
        drop(first);
        let second = waiting.await.unwrap();
        assert_eq!(pool.available(), Some(40));
        drop(second);
        // A request bigger than the whole pool waits for all of it, then proceeds.
        let big = pool.reserve(1000).await;
        assert_eq!(pool.available(), Some(0));
        drop(big);
        assert_eq!(pool.available(), Some(100));
        assert!(RequestMemoryPool::unbounded().available().is_none());
    }
}
