//! `interprocess` local sockets (the portable socket crate; on Linux a Unix stream socket
//! in the abstract namespace, so no file is left behind) carrying the same
//! length-prefixed frames as the pipe baseline of `benches/support/mod.rs`: `u32` LE
//! length + payload in one `write_all`, read through a 64 KiB `BufReader` on the child
//! side. A length of `u32::MAX` is a sync frame, answered with one byte.

use std::io::{BufReader, Read, Write};

use interprocess::local_socket::{
    GenericNamespaced, ListenerOptions, Stream, ToNsName, prelude::*,
};
use shmkit_process::Process;

const SYNC: u32 = u32::MAX;

fn connect(name: &str) -> Stream {
    let ns = name
        .to_ns_name::<GenericNamespaced>()
        .expect("local socket name");
    Stream::connect(ns).expect("connect local socket")
}

fn read_len(r: &mut impl Read) -> std::io::Result<u32> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    Ok(u32::from_le_bytes(len))
}

fn is_eof(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::UnexpectedEof
}

/// Child: read frames and drop them; answer sync frames with one byte.
pub fn sink(name: String) {
    let stream = connect(&name);
    let mut r = BufReader::with_capacity(1 << 16, &stream);
    let mut buf = Vec::new();
    loop {
        let len = match read_len(&mut r) {
            Ok(len) => len,
            Err(e) if is_eof(&e) => return,
            Err(e) => panic!("local socket sink: {e}"),
        };
        if len == SYNC {
            (&stream).write_all(&[1]).expect("ack");
            continue;
        }
        buf.resize(len as usize, 0);
        r.read_exact(&mut buf).expect("payload");
        std::hint::black_box(&buf);
    }
}

/// Child: send every frame straight back.
pub fn echo(name: String) {
    let stream = connect(&name);
    let mut r = BufReader::with_capacity(1 << 16, &stream);
    let mut frame = Vec::new();
    loop {
        let len = match read_len(&mut r) {
            Ok(len) => len,
            Err(e) if is_eof(&e) => return,
            Err(e) => panic!("local socket echo: {e}"),
        };
        frame.clear();
        frame.extend_from_slice(&len.to_le_bytes());
        frame.resize(4 + len as usize, 0);
        r.read_exact(&mut frame[4..]).expect("payload");
        (&stream).write_all(&frame).expect("echo");
    }
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
        self.frame.clear();
        self.frame
            .extend_from_slice(&(payload.len() as u32).to_le_bytes());
        self.frame.extend_from_slice(payload);
        let mut s = self.stream.as_ref().expect("open until drop");
        s.write_all(&self.frame).expect("local socket send");
    }

    /// Wait until the sink has read every frame sent so far.
    pub fn sync(&mut self) {
        let mut s = self.stream();
        s.write_all(&SYNC.to_le_bytes()).expect("sync");
        let mut ack = [0u8; 1];
        s.read_exact(&mut ack).expect("ack");
    }

    /// One round trip through an echo child.
    pub fn round_trip(&mut self, payload: &[u8], buf: &mut Vec<u8>) {
        self.send(payload);
        let mut s = self.stream();
        let len = read_len(&mut s).expect("echo header");
        buf.resize(len as usize, 0);
        s.read_exact(buf).expect("echo payload");
    }
}

impl Drop for LocalSocket {
    fn drop(&mut self) {
        // EOF tells the child to leave; reap it, bounded.
        self.stream = None;
        let _ = self.child.join_timeout(crate::LONG);
    }
}
