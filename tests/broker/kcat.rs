//! Debian's kcat (librdkafka 2.0.2, an older client) against Gregor: -L, -P and -C.
//! kcat comes from `make deps` (a Debian package); without it these tests say SKIPPED.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::Broker;

/// Whether kcat is installed; if not, the caller skips (tests never install packages).
fn kcat_available(test: &str) -> bool {
    let found = Command::new("kcat").arg("-V").output().is_ok();
    if !found {
        eprintln!("SKIPPED {test}: kcat is not installed (`make deps` installs it)");
    }
    found
}

/// Runs kcat with `input` on stdin: `Ok(stdout)` or `Err(stderr)`. Cargo's
/// LD_LIBRARY_PATH is removed, or kcat would load the rdkafka crate's own librdkafka (built
/// without OpenSSL) instead of Debian's.
pub fn run_kcat(args: &[&str], input: Option<&str>) -> Result<String, String> {
    let mut child = Command::new("timeout")
        .arg("30")
        .arg("kcat")
        .args(args)
        .env_remove("LD_LIBRARY_PATH")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kcat");
    {
        let mut stdin = child.stdin.take().unwrap();
        if let Some(input) = input {
            stdin.write_all(input.as_bytes()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn kcat(args: &[&str], input: Option<&str>) -> String {
    run_kcat(args, input).unwrap_or_else(|stderr| panic!("kcat {args:?} failed: {stderr}"))
}

#[test]
fn kcat_lists_produces_and_consumes() {
    if !kcat_available("kcat_lists_produces_and_consumes") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &["num.partitions=2"]);
    let b = broker.addr.as_str();

    let input: String = (0..100).fold(String::new(), |mut s, i| {
        use std::fmt::Write as _;
        let _ = writeln!(s, "key{i}:value{i}");
        s
    });
    kcat(&["-b", b, "-P", "-t", "kc", "-K:", "-p", "0"], Some(&input));
    kcat(
        &["-b", b, "-P", "-t", "kc", "-p", "1"],
        Some("one\ntwo\nthree\n"),
    );

    let listing = kcat(&["-b", b, "-L", "-t", "kc"], None);
    assert!(listing.contains("1 brokers:"), "{listing}");
    assert!(
        listing.contains("topic \"kc\" with 2 partitions"),
        "{listing}"
    );

    let out = kcat(
        &[
            "-b",
            b,
            "-C",
            "-t",
            "kc",
            "-p",
            "0",
            "-e",
            "-f",
            "%k=%s@%o\n",
        ],
        None,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 100, "{out}");
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(*line, format!("key{i}=value{i}@{i}"));
    }
    let out = kcat(
        &[
            "-b", b, "-C", "-t", "kc", "-p", "1", "-o", "1", "-e", "-f", "%s@%o\n",
        ],
        None,
    );
    assert_eq!(out, "two@1\nthree@2\n");
    // The last message by negative offset (ListOffsets latest).
    let out = kcat(
        &[
            "-b", b, "-C", "-t", "kc", "-p", "0", "-o", "-1", "-e", "-f", "%s\n",
        ],
        None,
    );
    assert_eq!(out, "value99\n");
    broker.stop();
}
