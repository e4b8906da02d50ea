//! A progress line on standard error for long reads and writes, drawn only when standard
//! error is a terminal (scripts and pipes get nothing) and at most ten times a second.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Progress {
    what: &'static str,
    total: Option<u64>,
    done: u64,
    started: Instant,
    last_drawn: Option<Instant>,
    enabled: bool,
}

impl Progress {
    /// Progress of `what` (`records`), out of `total` if known.
    pub fn new(what: &'static str, total: Option<u64>) -> Progress {
        Progress {
            what,
            total,
            done: 0,
            started: Instant::now(),
            last_drawn: None,
            enabled: std::io::stderr().is_terminal(),
        }
    }

    pub fn add(&mut self, n: u64) {
        self.done += n;
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if self
            .last_drawn
            .is_some_and(|t| now.duration_since(t) < Duration::from_millis(100))
        {
            return;
        }
        self.last_drawn = Some(now);
        let line = self.line(now.duration_since(self.started));
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
    }

    /// The line as drawn after `elapsed`.
    pub fn line(&self, elapsed: Duration) -> String {
        let rate = self.done as f64 / elapsed.as_secs_f64().max(0.001);
        match self.total {
            Some(total) if total > 0 => {
                let fraction = (self.done as f64 / total as f64).min(1.0);
                let filled = (fraction * 30.0) as usize;
                format!(
                    "[{}{}] {:>3}% {}/{} {} ({:.0}/s)",
                    "#".repeat(filled),
                    " ".repeat(30 - filled),
                    (fraction * 100.0) as u32,
                    self.done,
                    total,
                    self.what,
                    rate
                )
            }
            _ => format!("{} {} ({:.0}/s)", self.done, self.what, rate),
        }
    }

    /// Clears the line.
    pub fn finish(&mut self) {
        if self.enabled && self.last_drawn.is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_a_bar_when_the_total_is_known() {
        let mut p = Progress::new("records", Some(200));
        p.enabled = false;
        p.add(50);
        let line = p.line(Duration::from_secs(1));
        assert!(line.starts_with("[#######"), "{line}");
        assert!(line.contains(" 25% 50/200 records (50/s)"), "{line}");
        let mut open = Progress::new("records", None);
        open.enabled = false;
        open.add(7);
        assert_eq!(open.line(Duration::from_secs(1)), "7 records (7/s)");
    }
}
