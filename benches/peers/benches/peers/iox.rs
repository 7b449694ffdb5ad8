//! iceoryx2, set up the way its own `benchmarks/publish-subscribe` and
//! `benchmarks/event` programs do: `ipc::Service`, `[u8]` slices loaned from the
//! publisher (written in place, no copy through a buffer of ours), subscribers that
//! busy-poll `receive()`, and `Listener::blocking_wait` for the event service.
//!
//! Service names are `shmkit-peers-iox-{pid}-{n}/{leg}`, unique per run, and iceoryx2
//! removes a service when the last node that uses it drops. The run also has its own
//! file prefix (`iox2_shmkit_peers_{pid}_`) and root directory
//! (`/tmp/iceoryx2-shmkit-peers-{pid}`), which [`cleanup`] removes at the end, so
//! nothing stays in `/dev/shm` or `/tmp`.

use std::hint::black_box;

use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::*;
use shmkit_process::Process;

use crate::{LONG, spin_until};

type Ipc = ipc::Service;
use iceoryx2::service::port_factory::{event, publish_subscribe};
type BytesService = publish_subscribe::PortFactory<Ipc, [u8], ()>;
type EventService = event::PortFactory<Ipc>;

/// Control samples are shorter than every payload (8 B and up).
const SYNC_LEN: usize = 0;
const STOP_LEN: usize = 1;
/// The stop signal of the event ping-pong; pings use the notifier's default id 0.
const STOP_EVENT: usize = 1;

/// Carries the bench's run tag (the parent's pid) to its children, so every process of
/// one run uses the same iceoryx2 prefix and root directory.
const TAG_ENV: &str = "SHMKIT_PEERS_IOX_TAG";

fn tag() -> String {
    std::env::var(TAG_ENV).unwrap_or_else(|_| std::process::id().to_string())
}

fn prefix() -> String {
    format!("iox2_shmkit_peers_{}_", tag())
}

fn root_dir() -> String {
    format!("/tmp/iceoryx2-shmkit-peers-{}/", tag())
}

/// Call in the bench's `main` before any child starts: fixes the run tag for the
/// children and keeps iceoryx2's logger to errors (its warnings would interleave with
/// criterion's output).
pub fn setup() {
    set_log_level(LogLevel::Error);
    if std::env::var(TAG_ENV).is_err() {
        // SAFETY: called from `main` before criterion, iceoryx2 or any child starts: no
        // other thread reads the environment yet.
        unsafe { std::env::set_var(TAG_ENV, std::process::id().to_string()) };
    }
}

/// Remove what iceoryx2 keeps after its last node is gone (the global management
/// segment, empty directories). Everything this run made carries its own prefix and
/// root directory, so nothing of another iceoryx2 user is touched.
pub fn cleanup() {
    let prefix = prefix();
    if let Ok(dir) = std::fs::read_dir("/dev/shm") {
        for entry in dir.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let _ = std::fs::remove_dir_all(root_dir());
}

/// A node with this run's prefix and root directory (instead of the shared defaults
/// `iox2_` and `/tmp/iceoryx2`).
fn node() -> Node<Ipc> {
    set_log_level(LogLevel::Error);
    let mut config = Config::default();
    config.global.prefix = FileName::new(prefix().as_bytes()).expect("iceoryx2 prefix");
    let root = Path::new(root_dir().as_bytes()).expect("iceoryx2 root path");
    config.global.set_root_path(&root);
    NodeBuilder::new()
        .config(&config)
        .create::<Ipc>()
        .expect("iceoryx2 node")
}

fn service_name(prefix: &str, leg: &str) -> ServiceName {
    ServiceName::new(&format!("{prefix}/{leg}")).expect("iceoryx2 service name")
}

fn bytes_service(
    node: &Node<Ipc>,
    prefix: &str,
    leg: &str,
    buffer: usize,
    safe_overflow: bool,
) -> BytesService {
    node.service_builder(&service_name(prefix, leg))
        .publish_subscribe::<[u8]>()
        .max_publishers(1)
        .max_subscribers(1)
        .history_size(0)
        .subscriber_max_buffer_size(buffer)
        .enable_safe_overflow(safe_overflow)
        .create()
        .expect("create iceoryx2 publish-subscribe service")
}

fn open_bytes_service(node: &Node<Ipc>, prefix: &str, leg: &str) -> BytesService {
    node.service_builder(&service_name(prefix, leg))
        .publish_subscribe::<[u8]>()
        .open()
        .expect("open iceoryx2 publish-subscribe service")
}

/// Loan `payload.len()` bytes, write the payload in place, publish.
fn publish(tx: &Publisher<Ipc, [u8], ()>, payload: &[u8]) {
    let sample = tx.loan_slice_uninit(payload.len()).expect("loan");
    sample.write_from_slice(payload).send().expect("send");
}

fn receive(rx: &Subscriber<Ipc, [u8], ()>) -> iceoryx2::sample::Sample<Ipc, [u8], ()> {
    spin_until(|| rx.receive().expect("receive"))
}

// --- throughput ------------------------------------------------------------------------

/// Child of [`Stream`]: busy-poll the data service, look at each sample in place (first
/// and last byte) and release it; answer a sync sample on the ack service.
fn sink(args: (String, usize)) {
    let (prefix, max_len) = args;
    let node = node();
    let data = open_bytes_service(&node, &prefix, "data");
    let ack = open_bytes_service(&node, &prefix, "ack");
    let rx = data.subscriber_builder().create().expect("subscriber");
    let ack_tx = ack
        .publisher_builder()
        .initial_max_slice_len(max_len.max(8))
        .create()
        .expect("ack publisher");
    publish(&ack_tx, &[1]); // ready: our subscriber exists
    loop {
        let sample = receive(&rx);
        match sample.payload().len() {
            SYNC_LEN => publish(&ack_tx, &[1]),
            STOP_LEN => return,
            n => {
                black_box((sample.payload()[0], sample.payload()[n - 1]));
            }
        }
    }
}

/// A publisher in this process streaming to a busy-polling subscriber child. The data
/// service does not overflow: a full subscriber buffer makes `send` retry
/// (`BackpressureStrategy::RetryUntilDelivered`), like a full ring makes shmkit wait.
pub struct Stream {
    tx: Publisher<Ipc, [u8], ()>,
    ack_rx: Subscriber<Ipc, [u8], ()>,
    child: Option<Process<()>>,
    _services: (BytesService, BytesService),
    _node: Node<Ipc>,
}

impl Stream {
    /// Services for messages of up to `max_len` bytes, `buffer` samples in flight.
    pub fn spawn(max_len: usize, buffer: usize) -> Stream {
        let prefix = crate::unique_name("iox");
        let node = node();
        let data = bytes_service(&node, &prefix, "data", buffer, false);
        let ack = bytes_service(&node, &prefix, "ack", 1, true);
        let tx = data
            .publisher_builder()
            .initial_max_slice_len(max_len)
            .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
            .create()
            .expect("publisher");
        let ack_rx = ack.subscriber_builder().create().expect("ack subscriber");
        let child = shmkit_process::spawn(sink, (prefix, 8)).expect("spawn iceoryx2 sink");
        receive(&ack_rx); // the child's subscriber is connected
        Stream {
            tx,
            ack_rx,
            child: Some(child),
            _services: (data, ack),
            _node: node,
        }
    }

    /// Loan, write in place, publish.
    pub fn send(&self, payload: &[u8]) {
        publish(&self.tx, payload);
    }

    /// Wait until the child has received everything published so far.
    pub fn sync(&self) {
        publish(&self.tx, &[0u8; SYNC_LEN]);
        receive(&self.ack_rx);
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        publish(&self.tx, &[0u8; STOP_LEN]);
        if let Some(mut child) = self.child.take() {
            child.join_timeout(LONG).expect("iceoryx2 sink stops");
        }
    }
}

// --- publish-subscribe round trip ------------------------------------------------------

/// Child of [`PubSubPingPong`]: busy-poll `ping`, answer each sample on `pong`.
fn pubsub_echo(prefix: String) {
    let node = node();
    let ping = open_bytes_service(&node, &prefix, "ping");
    let pong = open_bytes_service(&node, &prefix, "pong");
    let rx = ping.subscriber_builder().create().expect("subscriber");
    let tx = pong
        .publisher_builder()
        .initial_max_slice_len(8)
        .create()
        .expect("publisher");
    publish(&tx, &[0u8; 8]); // ready
    loop {
        let sample = receive(&rx);
        if sample.payload().len() == STOP_LEN {
            return;
        }
        publish(&tx, sample.payload());
    }
}

/// Two one-slot services, history 0, safe overflow on — iceoryx2's own round-trip setup.
pub struct PubSubPingPong {
    tx: Publisher<Ipc, [u8], ()>,
    rx: Subscriber<Ipc, [u8], ()>,
    child: Option<Process<()>>,
    _services: (BytesService, BytesService),
    _node: Node<Ipc>,
}

impl PubSubPingPong {
    /// Create both services, start the echo child and wait until it is connected.
    pub fn spawn() -> PubSubPingPong {
        let prefix = crate::unique_name("iox");
        let node = node();
        let ping = bytes_service(&node, &prefix, "ping", 1, true);
        let pong = bytes_service(&node, &prefix, "pong", 1, true);
        let tx = ping
            .publisher_builder()
            .initial_max_slice_len(8)
            .create()
            .expect("publisher");
        let rx = pong.subscriber_builder().create().expect("subscriber");
        let child = shmkit_process::spawn(pubsub_echo, prefix).expect("spawn iceoryx2 echo");
        receive(&rx);
        PubSubPingPong {
            tx,
            rx,
            child: Some(child),
            _services: (ping, pong),
            _node: node,
        }
    }

    /// 8 bytes there and back, both sides busy-waiting.
    pub fn round_trip(&self, payload: &[u8]) {
        publish(&self.tx, payload);
        black_box(receive(&self.rx).payload()[0]);
    }
}

impl Drop for PubSubPingPong {
    fn drop(&mut self) {
        publish(&self.tx, &[0u8; STOP_LEN]);
        if let Some(mut child) = self.child.take() {
            child.join_timeout(LONG).expect("iceoryx2 echo stops");
        }
    }
}

// --- event round trip --------------------------------------------------------------------

fn event_service(node: &Node<Ipc>, prefix: &str, leg: &str) -> EventService {
    node.service_builder(&service_name(prefix, leg))
        .event()
        .max_notifiers(1)
        .max_listeners(1)
        .event_id_max_value(128)
        .disable_notifier_created_event()
        .disable_notifier_dropped_event()
        .disable_notifier_dead_event()
        .create()
        .expect("create iceoryx2 event service")
}

fn open_event_service(node: &Node<Ipc>, prefix: &str, leg: &str) -> EventService {
    node.service_builder(&service_name(prefix, leg))
        .event()
        .open()
        .expect("open iceoryx2 event service")
}

/// Child of [`EventPingPong`]: wait on `ping`, notify `pong`, until the stop id comes.
fn event_echo(prefix: String) {
    let node = node();
    let ping = open_event_service(&node, &prefix, "ping");
    let pong = open_event_service(&node, &prefix, "pong");
    let listener = ping.listener_builder().create().expect("listener");
    let notifier = pong.notifier_builder().create().expect("notifier");
    notifier.notify().expect("ready");
    loop {
        let mut stop = false;
        let n = listener
            .blocking_wait(|a| stop |= a.id == EventId::new(STOP_EVENT))
            .expect("wait");
        if stop {
            return;
        }
        if n > 0 {
            notifier.notify().expect("notify");
        }
    }
}

/// iceoryx2's event service between two processes: notify, then `blocking_wait` for
/// the answer (the listener sleeps in the kernel; on Linux the `ipc` service wakes it
/// through a Unix datagram socket).
pub struct EventPingPong {
    notifier: iceoryx2::port::notifier::Notifier<Ipc>,
    listener: iceoryx2::port::listener::Listener<Ipc>,
    child: Option<Process<()>>,
    _services: (EventService, EventService),
    _node: Node<Ipc>,
}

impl EventPingPong {
    /// Create both services, start the echo child and wait until it listens.
    pub fn spawn() -> EventPingPong {
        let prefix = crate::unique_name("iox");
        let node = node();
        let ping = event_service(&node, &prefix, "ping");
        let pong = event_service(&node, &prefix, "pong");
        let notifier = ping.notifier_builder().create().expect("notifier");
        let listener = pong.listener_builder().create().expect("listener");
        let child = shmkit_process::spawn(event_echo, prefix).expect("spawn iceoryx2 event echo");
        let mut pp = EventPingPong {
            notifier,
            listener,
            child: Some(child),
            _services: (ping, pong),
            _node: node,
        };
        pp.wait();
        pp
    }

    fn wait(&mut self) {
        while self.listener.blocking_wait(|_| {}).expect("wait") == 0 {}
    }

    /// Notify the child and sleep until it notifies back.
    pub fn round_trip(&mut self) {
        self.notifier.notify().expect("notify");
        self.wait();
    }
}

impl Drop for EventPingPong {
    fn drop(&mut self) {
        let _ = self
            .notifier
            .notify_with_custom_event_id(EventId::new(STOP_EVENT));
        if let Some(mut child) = self.child.take() {
            child.join_timeout(LONG).expect("iceoryx2 event echo stops");
        }
    }
}
