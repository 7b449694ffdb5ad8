//! ipc-channel (Servo): typed channels between processes. The child makes the channels
//! and hands the parent its ends through an `IpcOneShotServer`, the crate's documented
//! way to connect two processes; then values cross as serde (bincode) messages over a
//! Unix socket.

use std::hint::black_box;

use ipc_channel::ipc::{self, IpcOneShotServer, IpcReceiver, IpcSender};
use serde::Serialize;
use serde::de::DeserializeOwned;
use shmkit_process::Process;

use crate::LONG;

/// A message type with two values set aside for control: sync (answer with an ack)
/// and stop. Payloads never take them.
pub trait Control: Serialize + DeserializeOwned + 'static {
    /// "Ack when you have read everything before me."
    fn sync() -> Self;
    /// "Leave."
    fn stop() -> Self;
    /// Whether this is [`Control::sync`].
    fn is_sync(&self) -> bool;
    /// Whether this is [`Control::stop`].
    fn is_stop(&self) -> bool;
}

/// Bytes: empty is sync, one byte is stop (payloads are 8 bytes and up).
impl Control for Vec<u8> {
    fn sync() -> Self {
        Vec::new()
    }
    fn stop() -> Self {
        vec![0]
    }
    fn is_sync(&self) -> bool {
        self.is_empty()
    }
    fn is_stop(&self) -> bool {
        self.len() == 1
    }
}

/// Integers: the two largest values.
impl Control for u64 {
    fn sync() -> Self {
        u64::MAX
    }
    fn stop() -> Self {
        u64::MAX - 1
    }
    fn is_sync(&self) -> bool {
        *self == u64::MAX
    }
    fn is_stop(&self) -> bool {
        *self == u64::MAX - 1
    }
}

type Bootstrap<T, R> = (IpcSender<T>, IpcReceiver<R>);

fn connect<T: Control, R: Control>(server: String) -> (IpcReceiver<T>, IpcSender<R>) {
    let (tx, rx) = ipc::channel::<T>().expect("channel");
    let (back_tx, back_rx) = ipc::channel::<R>().expect("channel");
    let boot = IpcSender::<Bootstrap<T, R>>::connect(server).expect("connect");
    boot.send((tx, back_rx)).expect("bootstrap");
    (rx, back_tx)
}

/// Child: drop every value; answer sync with an ack. Leaves on stop or when the parent
/// is gone (`recv` fails).
fn sink<T: Control>(server: String) {
    let (rx, ack) = connect::<T, u64>(server);
    while let Ok(v) = rx.recv() {
        if v.is_sync() {
            ack.send(1).expect("ack");
        } else if v.is_stop() {
            return;
        } else {
            black_box(&v);
        }
    }
}

/// Child: send every value straight back.
fn echo<T: Control>(server: String) {
    let (rx, back) = connect::<T, T>(server);
    while let Ok(v) = rx.recv() {
        if v.is_stop() {
            return;
        }
        back.send(v).expect("echo");
    }
}

/// The parent's ends of a pair of ipc-channel channels to a child.
pub struct Peer<T: Control, R: Control> {
    tx: IpcSender<T>,
    rx: IpcReceiver<R>,
    child: Option<Process<()>>,
}

fn spawn<T: Control, R: Control>(role: fn(String)) -> Peer<T, R> {
    let (server, name) = IpcOneShotServer::<Bootstrap<T, R>>::new().expect("one-shot server");
    let child = shmkit_process::spawn(role, name).expect("spawn ipc-channel child");
    let (_, (tx, rx)) = server.accept().expect("accept ipc-channel child");
    Peer {
        tx,
        rx,
        child: Some(child),
    }
}

impl<T: Control> Peer<T, u64> {
    /// A child that drops what it receives.
    pub fn sink() -> Self {
        spawn(sink::<T>)
    }

    /// Wait until the sink has received everything sent so far.
    pub fn sync(&self) {
        self.tx.send(T::sync()).expect("sync");
        self.rx.try_recv_timeout(LONG).expect("ack");
    }
}

impl<T: Control> Peer<T, T> {
    /// A child that sends everything back.
    pub fn echo() -> Self {
        spawn(echo::<T>)
    }

    /// One value there and back.
    pub fn round_trip(&self, v: T) -> T {
        self.tx.send(v).expect("send");
        self.rx.recv().expect("echo")
    }
}

impl<T: Control, R: Control> Peer<T, R> {
    /// Send one value.
    pub fn send(&self, v: T) {
        self.tx.send(v).expect("send");
    }
}

impl<T: Control, R: Control> Drop for Peer<T, R> {
    fn drop(&mut self) {
        let _ = self.tx.send(T::stop());
        if let Some(mut child) = self.child.take() {
            child.join_timeout(LONG).expect("ipc-channel child stops");
        }
    }
}
