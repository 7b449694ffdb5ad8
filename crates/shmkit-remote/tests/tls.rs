//! `rediss://` against a real `redis-server` with TLS on a loopback port, its
//! certificate signed by a CA made for this test (trusted through `SSL_CERT_FILE`).
//! Needs the `tls` feature: `cargo test -p shmkit-remote --features tls --test tls`.

#![cfg(not(miri))]

use shmkit_remote::{Error, Queue};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Tls {
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for Tls {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(dir: &Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A CA and a server certificate for 127.0.0.1.
fn certificates(dir: &Path) -> bool {
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=shmkit test CA",
        ],
    ) && run(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    ) && run(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "1",
            "-extfile",
            "san.ext",
        ],
    )
}

fn start() -> Option<(Tls, u16)> {
    let have = |bin: &str| {
        Command::new(bin)
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    if !have("redis-server") || !have("openssl") {
        eprintln!(
            "skipped: redis-server or openssl not found (apt-get install -y redis-server openssl)"
        );
        return None;
    }
    let dir = std::env::temp_dir().join(format!("shmkit-redis-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    assert!(
        certificates(&dir),
        "openssl could not make the test certificates"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(["--daemonize", "no", "--tls-auth-clients", "no"])
        .arg("--tls-port")
        .arg(port.to_string())
        .arg("--tls-cert-file")
        .arg(dir.join("server.pem"))
        .arg("--tls-key-file")
        .arg(dir.join("server.key"))
        .arg("--tls-ca-cert-file")
        .arg(dir.join("ca.pem"))
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The client trusts the test CA through the system roots' override, which
    // rustls-native-certs reads when a connection is made.
    // SAFETY: this test binary holds one test and starts no thread before this point, so
    // nothing reads or writes the environment concurrently.
    unsafe { std::env::set_var("SSL_CERT_FILE", dir.join("ca.pem")) };
    Some((Tls { child, dir }, port))
}

#[test]
fn rediss_urls_work_with_the_tls_feature() {
    let Some((_srv, port)) = start() else { return };
    let url = format!("rediss://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let q = loop {
        match Queue::<String>::connect(&url, "tls-queue") {
            Ok(q) => break q,
            Err(Error::Connect { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("{e}"),
        }
    };
    q.put(&"over TLS".to_owned()).unwrap();
    assert_eq!(q.get_timeout(Duration::from_secs(10)).unwrap(), "over TLS");
}
