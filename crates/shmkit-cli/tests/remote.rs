//! `shmkit ls --url` / `shmkit inspect NAME --url` against a real `redis-server` on a
//! loopback port (skipped, saying so, without the binary).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server(Child, std::path::PathBuf);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn server() -> Option<(Server, String)> {
    let dir = std::env::temp_dir().join(format!("shmkit-cli-redis-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let Ok(child) = Command::new("redis-server")
        .args([
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ])
        .arg("--port")
        .arg(port.to_string())
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        eprintln!("skipped: redis-server not found (apt-get install -y redis-server)");
        return None;
    };
    let srv = Server(child, dir);
    let url = format!("redis://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some((srv, url))
}

fn shmkit(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_shmkit"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn ls_and_inspect_remote_queues() {
    let Some((_srv, url)) = server() else { return };
    let q = shmkit_remote::Queue::<u32>::connect(&url, "cli-jobs").unwrap();
    q.put_many(&[1, 2, 3]).unwrap();
    let _lease = q.take(Duration::from_secs(5)).unwrap();
    let out = shmkit(&["ls", "--url", &url, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["name"], "cli-jobs");
    assert_eq!(v[0]["kind"], "queue");
    assert_eq!(v[0]["depth"], 3);
    assert_eq!(v[0]["pending"][0]["entries"], 1);
    let out = shmkit(&["inspect", "cli-jobs", "--url", &url]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("depth:        3"), "{text}");
    assert!(text.contains(q.consumer()), "{text}");
    let out = shmkit(&["inspect", "nothing-here", "--url", &url]);
    assert_eq!(out.status.code(), Some(1));
}
