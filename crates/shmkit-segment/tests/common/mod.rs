//! Test helpers: unique names (shmkit-testing's), a guard that removes a name even when a test fails, and
//! a child process that is this test binary re-executed to run one role.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub use shmkit_testing::unique;

/// Removes `/dev/shm/<name>` on drop, whatever happened in the test.
pub struct Cleanup(pub String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(format!("/dev/shm/{}", self.0));
    }
}

pub const ROLE_ENV: &str = "SHMKIT_SEGMENT_TEST_ROLE";

/// A child running `role` (dispatched by the `child_entry` test of the calling test
/// file), whose stdout lines arrive on a channel so every wait can be bounded.
pub struct ChildRole {
    pub child: Child,
    lines: mpsc::Receiver<String>,
}

impl ChildRole {
    pub fn start(role: &str, arg: &str) -> ChildRole {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "child_entry",
                "--exact",
                "--nocapture",
                "--test-threads=1",
                "-q",
            ])
            .env(ROLE_ENV, role)
            .env("SHMKIT_SEGMENT_TEST_ARG", arg)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("re-exec test binary");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        ChildRole { child, lines }
    }

    /// Wait (at most 10 s) for a line starting with `prefix`; returns the rest.
    pub fn expect_line(&self, prefix: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line[prefix.len()..].to_owned(),
                Ok(_) => continue,
                Err(e) => panic!("child never printed {prefix:?}: {e}"),
            }
        }
    }

    /// Wait (at most 10 s) for the child to exit; returns whether it succeeded.
    pub fn wait(mut self) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("child did not exit within 10 s");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// The child's role and argument, if this process is a child.
pub fn role() -> Option<(String, String)> {
    let role = std::env::var(ROLE_ENV).ok()?;
    Some((
        role,
        std::env::var("SHMKIT_SEGMENT_TEST_ARG").unwrap_or_default(),
    ))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
