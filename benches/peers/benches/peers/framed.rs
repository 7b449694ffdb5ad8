//! `interprocess` local sockets (the portable socket crate; on Linux a Unix stream socket
//! in the abstract namespace, so no file is left behind) carrying the same
//! length-prefixed frames as the pipe baseline of `benches/support/mod.rs` (both use
//! `crates/shmkit-cli/src/frame.rs`): `u32` LE length + payload in one `write_all`, read
//! through a 64 KiB `BufReader` on the child side. A length of `u32::MAX` is a sync
//! frame, answered with one byte.

use std::io::{BufReader, Read, Write};

use interprocess::local_socket::{
    GenericNamespaced, ListenerOptions, Stream, ToNsName, prelude::*,
};
use shmkit_process::Process;

use crate::support::frame;

const SYNC: u32 = u32::MAX;

fn connect(name: &str) -> Stream {
    let ns = name
        .to_ns_name::<GenericNamespaced>()
        .expect("local socket name");
    Stream::connect(ns).expect("connect local socket")
}

/// Child: read frames until the parent closes the socket; `ack` answers each sync frame
/// (the sink), `data` gets each other frame, header included (the echo writes it back).
fn serve(name: &str, mut ack: impl FnMut(&Stream), mut data: impl FnMut(&Stream, &[u8])) {
    let stream = connect(name);
    let mut r = BufReader::with_capacity(frame::BUF_CAPACITY, &stream);
    let mut wire = Vec::new();
    loop {
        let len = match frame::read_len(&mut r) {
            Ok(len) => len,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return,
            Err(e) => panic!("local socket child: {e}"),
        };
        if len == SYNC {
            ack(&stream);
            continue;
        }
        frame::read_whole(&mut r, len, &mut wire).expect("payload");
        data(&stream, &wire);
    }
}

/// Child: read frames and drop them; answer sync frames with one byte.
pub fn sink(name: String) {
    serve(
        &name,
        |mut s| s.write_all(&[1]).expect("ack"),
        |_, wire| {
            std::hint::black_box(wire);
        },
    );
}

/// Child: send every frame straight back.
pub fn echo(name: String) {
    serve(
        &name,
        |_| panic!("an echo gets no sync frames"),
        |mut s, wire| s.write_all(wire).expect("echo"),
    );
}

/// The parent's end of a local socket to a sink or echo child.
pub struct LocalSocket {
    stream: Option<Stream>,
    child: Process<()>,
    frame: Vec<u8>,
}

impl LocalSocket {
    /// Listen on a fresh name, start `role` (`sink` or `echo`) in a child, accept it.
    pub fn spawn(role: fn(String)) -> LocalSocket {
        let name = format!("{}.sock", crate::unique_name("ls"));
        let ns = name
            .clone()
            .to_ns_name::<GenericNamespaced>()
            .expect("local socket name");
        let listener = ListenerOptions::new()
            .name(ns)
            .create_sync()
            .expect("listen on local socket");
        let child = shmkit_process::spawn(role, name).expect("spawn local socket child");
        let stream = listener.accept().expect("accept local socket child");
        LocalSocket {
            stream: Some(stream),
            child,
            frame: Vec::new(),
        }
    }

    fn stream(&self) -> &Stream {
        self.stream.as_ref().expect("open until drop")
    }

    /// Send one frame (header and payload in one write).
    pub fn send(&mut self, payload: &[u8]) {
        let mut s = self.stream.as_ref().expect("open until drop");
        frame::write(&mut s, &mut self.frame, payload).expect("local socket send");
    }

    /// Wait until the sink has read every frame sent so far.
    pub fn sync(&mut self) {
        let mut s = self.stream();
        frame::write_control(&mut s, SYNC).expect("sync");
        let mut ack = [0u8; 1];
        s.read_exact(&mut ack).expect("ack");
    }

    /// Send `iters` frames of `payload`, then [`sync`](Self::sync): the time it took.
    pub fn stream_for(&mut self, iters: u64, payload: &[u8]) -> std::time::Duration {
        let t0 = std::time::Instant::now();
        for _ in 0..iters {
            self.send(payload);
        }
        self.sync();
        t0.elapsed()
    }

    /// One round trip through an echo child.
    pub fn round_trip(&mut self, payload: &[u8], buf: &mut Vec<u8>) {
        self.send(payload);
        let mut s = self.stream();
        let len = frame::read_len(&mut s).expect("echo header");
        frame::read_payload(&mut s, len, buf).expect("echo payload");
    }
}

impl Drop for LocalSocket {
    fn drop(&mut self) {
        // EOF tells the child to leave; reap it, bounded.
        self.stream = None;
        let _ = self.child.join_timeout(crate::LONG);
    }
}
