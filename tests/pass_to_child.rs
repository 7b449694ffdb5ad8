//! One way to hand any shmkit object to a child, for the objects of every crate: pass the
//! object itself. A shared object is passed as a clone (this process keeps its own); a
//! single-owner role (an SPSC producer or consumer, a pipe end) moves with an explicit
//! `transfer()`, and serializing one that was not transferred is refused. Real
//! processes; every wait bounded.
#![cfg(not(miri))] // real processes

use std::time::Duration;

use shmkit::prelude::*;
use shmkit::ring::spsc;

shmkit::process::test_support!();

const LONG: Duration = Duration::from_secs(20);

type Objects = (
    Segment,
    Queue<String>,
    PodQueue<u64>,
    Connection,
    spsc::Producer,
    Value<u32>,
    Dict<String, u32>,
);

/// Uses each object it was given; the parent checks what arrived.
fn use_each(args: Objects) -> u64 {
    let (segment, queue, pod_queue, conn, mut producer, value, dict) = args;
    segment.write(0, &0xC0FFEEu64).unwrap();
    queue.put(&"from the child".to_owned()).unwrap();
    pod_queue.put(&7).unwrap();
    conn.send(&"over the pipe").unwrap();
    producer.send(b"over the ring").unwrap();
    value.set(99).unwrap();
    dict.insert("child".into(), 7).unwrap();
    segment.read::<u64>(0).unwrap()
}

#[test]
fn every_kind_of_object_passes_to_a_child_as_itself() {
    let segment = Segment::anonymous(64).unwrap();
    let queue = Queue::<String>::anonymous(1 << 12).unwrap();
    let pod_queue = PodQueue::<u64>::anonymous(1 << 12).unwrap();
    let (here, there) = Pipe::new().unwrap();
    let (producer, mut consumer) = spsc::channel_anonymous(1 << 12).unwrap();
    let value = Value::anonymous(0u32).unwrap();
    let dict = Dict::<String, u32>::anonymous().unwrap();
    let mut child = spawn(
        use_each,
        (
            segment.clone(),
            queue.clone(),
            pod_queue.clone(),
            there.transfer(),
            producer.transfer(),
            value.clone(),
            dict.clone(),
        ),
    )
    .unwrap();
    assert_eq!(child.join_timeout(LONG).unwrap(), 0xC0FFEE);
    assert_eq!(segment.read::<u64>(0).unwrap(), 0xC0FFEE);
    assert_eq!(queue.get_timeout(LONG).unwrap(), "from the child");
    assert_eq!(pod_queue.get_timeout(LONG).unwrap(), 7);
    assert_eq!(here.recv_timeout::<String>(LONG).unwrap(), "over the pipe");
    let mut buf = Vec::new();
    consumer.recv_into_timeout(&mut buf, LONG).unwrap();
    assert_eq!(buf, b"over the ring");
    assert_eq!(value.get().unwrap(), 99);
    assert_eq!(dict.get(&"child".to_owned()).unwrap(), Some(7));
}

#[test]
fn a_role_that_was_not_transferred_does_not_serialize() {
    let (producer, consumer) = spsc::channel_anonymous(1 << 12).unwrap();
    let err = postcard::to_allocvec(&consumer).unwrap_err();
    assert!(matches!(err, postcard::Error::SerdeSerCustom), "{err:?}");
    let (a, _b) = Pipe::new().unwrap();
    assert!(postcard::to_allocvec(&a).is_err());
    // Refusing leaves the role working here.
    let mut producer = producer;
    producer.send(b"still mine").unwrap();
    let mut consumer = consumer;
    let mut buf = Vec::new();
    consumer.recv_into_timeout(&mut buf, LONG).unwrap();
    assert_eq!(buf, b"still mine");
    a.send(&1u8).unwrap();
}

#[test]
fn a_transferred_role_is_closed_here() {
    let (producer, _consumer) = spsc::channel_anonymous(1 << 12).unwrap();
    let mut moved = producer.transfer();
    assert!(matches!(moved.send(b"x"), Err(RingError::Closed)));
}
