//! `log.cleaner.io.max.bytes.per.second` (Kafka's `Throttler`): the cleaner threads report
//! the bytes they read and write, and sleep when they are ahead of the rate.
//!
//! Synchronisation: shared by the cleaner threads; a mutex guards the window's count.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a measurement window lasts before it starts over.
const WINDOW: Duration = Duration::from_millis(300);

pub struct Throttler {
    bytes_per_second: f64,
    window: Mutex<(Instant, f64)>,
}

impl Throttler {
    pub fn new(bytes_per_second: f64) -> Throttler {
        Throttler {
            bytes_per_second,
            window: Mutex::new((Instant::now(), 0.0)),
        }
    }

    /// Counts `bytes` of I/O and sleeps as long as it takes to stay within the rate.
    pub fn acquire(&self, bytes: u64) {
        if !self.bytes_per_second.is_finite() || self.bytes_per_second >= f64::MAX / 2.0 {
            return;
        }
        let pause = {
            let mut window = self
                .window
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            window.1 += bytes as f64;
            let elapsed = window.0.elapsed();
            let due = Duration::from_secs_f64(window.1 / self.bytes_per_second);
            if elapsed >= WINDOW && due <= elapsed {
                *window = (Instant::now(), 0.0);
            }
            due.saturating_sub(elapsed)
        };
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lower bound only (a sleep never ends early), so the test holds on a busy machine.
    #[test]
    fn io_beyond_the_rate_waits() {
        // Before `new`, where the throttle's window starts.
        let started = Instant::now();
        let limited = Throttler::new(1_000_000.0);
        limited.acquire(300_000);
        assert!(
            started.elapsed() >= Duration::from_millis(290),
            "300 kB at 1 MB/s took {:?}",
            started.elapsed()
        );
    }
}
