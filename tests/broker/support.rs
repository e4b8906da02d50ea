//! Starting and stopping real `gregor` processes for the tests: each gets a temp data
//! directory (owned by the test) and a free loopback port, found from the line the broker
//! prints when it is ready.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Reads from `s` until EOF; true if the broker closed the connection (EOF or a reset),
/// false if the read timed out first.
pub fn closed_by_broker(s: &mut std::net::TcpStream) -> bool {
    use std::io::Read;
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// The name the HTTP listener's line is passed under (no Kafka listener has it).
const HTTP: &str = " http";

pub struct Broker {
    child: Child,
    /// The first listener's address.
    pub addr: String,
    /// Every listener's address, by listener name.
    pub listeners: std::collections::HashMap<String, String>,
    /// The HTTP listener's address (each test broker takes a free port).
    pub http: Option<String>,
    pub data_dir: PathBuf,
}

impl Broker {
    /// Starts a broker on 127.0.0.1 (a free port) with `data_dir` and extra `-o KEY=VALUE`s.
    /// Its log goes to the test's stderr at `warn`, or `GREGOR_TEST_LOG_LEVEL` (a filter).
    pub fn start(data_dir: &Path, overrides: &[&str]) -> Broker {
        Broker::start_with_env(data_dir, overrides, &[])
    }

    /// Like [`Broker::start`], with extra environment variables.
    pub fn start_with_env(data_dir: &Path, overrides: &[&str], env: &[(&str, &str)]) -> Broker {
        let level = std::env::var("GREGOR_TEST_LOG_LEVEL").unwrap_or_else(|_| "warn".into());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gregor"));
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-level",
            &level,
            "--data-dir",
        ])
        .arg(data_dir)
        .args(["-o", "http.listen=127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        for o in overrides {
            cmd.args(["-o", o]);
        }
        cmd.envs(env.iter().copied());
        let mut child = cmd.spawn().expect("spawn gregor");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some(addr) = line.strip_prefix("gregor http listening on ") {
                    let _ = tx.send((Some(HTTP.to_string()), addr.trim().to_string()));
                } else if let Some(named) = line.strip_prefix("gregor listener ") {
                    if let Some((name, addr)) = named.split_once(" listening on ") {
                        let _ = tx.send((Some(name.to_string()), addr.trim().to_string()));
                    }
                } else if let Some(addr) = line.strip_prefix("gregor listening on ") {
                    let _ = tx.send((None, addr.trim().to_string()));
                }
            }
        });
        // The named listeners come first, then the first listener's line alone.
        let mut listeners = std::collections::HashMap::new();
        let addr = loop {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok((Some(name), addr)) => {
                    listeners.insert(name, addr);
                }
                Ok((None, addr)) => break addr,
                Err(_) => {
                    let _ = child.kill();
                    panic!("gregor did not start within 60 s");
                }
            }
        };
        let http = listeners.remove(HTTP);
        Broker {
            child,
            addr,
            listeners,
            http,
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// Anonymous resident memory of the broker process (`RssAnon`), in bytes.
    pub fn rss_anon_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("RssAnon:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("RssAnon in /proc/<pid>/status")
            * 1024
    }

    /// SIGKILL: no chance to flush or checkpoint.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        for _ in 0..600 {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "gregor exited with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("gregor did not stop within 30 s of SIGTERM");
    }

    /// Restarts on the same data directory (the port may change).
    pub fn restart_after<F: FnOnce(Broker)>(self, stop: F, overrides: &[&str]) -> Broker {
        let dir = self.data_dir.clone();
        stop(self);
        Broker::start(&dir, overrides)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking HTTP/1.1 request to `addr` (`127.0.0.1:port`): the status and the body.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the HTTP listener");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    s.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Runs `gregor ARGS` (the admin commands) with `stdin`: success, standard output, standard error.
pub fn gregor_cli(args: &[&str], stdin: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gregor");
    // A command that does not read its input may have exited already.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = child.wait_with_output().expect("gregor ran");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
