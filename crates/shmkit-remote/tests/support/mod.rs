//! A real `redis-server` per test, on a random loopback port in a temporary directory,
//! killed and its directory removed on drop (also when the test fails).

#![allow(dead_code)] // each test file uses part of it

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How the server keeps its data.
#[derive(Clone, Copy, Debug)]
pub enum Durability {
    /// No persistence at all.
    None,
    /// Append-only file, `appendfsync always`.
    AofAlways,
}

pub struct Server {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
    durability: Durability,
    password: Option<String>,
}

fn find_binary() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A free loopback port (the kernel's choice; released just before the server binds it).
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    l.local_addr().expect("local addr").port()
}

/// Start a server, or `None` (after printing why) when `redis-server` is not installed.
pub fn server() -> Option<Server> {
    start(Durability::None, None)
}

pub fn start(durability: Durability, password: Option<&str>) -> Option<Server> {
    if !find_binary() {
        eprintln!(
            "skipped: redis-server not found (install with `apt-get install -y redis-server`, \
             or run ci/redis.sh)"
        );
        return None;
    }
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("shmkit-redis-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut s = Server {
        child: None,
        port: 0,
        dir,
        durability,
        password: password.map(str::to_owned),
    };
    // A port picked free can be taken before the server binds it: try a few.
    for _ in 0..5 {
        s.port = free_port();
        if s.launch() {
            return Some(s);
        }
    }
    panic!(
        "redis-server did not start on any of 5 ports (see its log in {:?})",
        s.dir
    );
}

impl Server {
    pub fn url(&self) -> String {
        match &self.password {
            Some(pw) => format!("redis://:{pw}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    fn launch(&mut self) -> bool {
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--save")
            .arg("")
            .arg("--daemonize")
            .arg("no")
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.dir.join("redis.log"));
        match self.durability {
            Durability::None => {
                cmd.arg("--appendonly").arg("no");
            }
            Durability::AofAlways => {
                cmd.arg("--appendonly")
                    .arg("yes")
                    .arg("--appendfsync")
                    .arg("always");
            }
        }
        if let Some(pw) = &self.password {
            cmd.arg("--requirepass").arg(pw);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        // Ready when it answers PING (bounded).
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                return false; // exited: port taken
            }
            if let Ok(client) = redis::Client::open(self.url())
                && let Ok(mut c) = client.get_connection_with_timeout(Duration::from_millis(200))
                && redis::cmd("PING").query::<String>(&mut c).is_ok()
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        false
    }

    /// SIGKILL the server (no shutdown save), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same port and directory (its append-only file is loaded).
    pub fn restart(&mut self) {
        self.kill();
        assert!(
            self.launch(),
            "redis-server did not restart on port {}",
            self.port
        );
    }

    /// A plain client connection, for tests that write to Redis behind the crate's back.
    pub fn raw(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .expect("url")
            .get_connection_with_timeout(Duration::from_secs(5))
            .expect("connect")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
