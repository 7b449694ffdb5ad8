//! `remote::Queue` against a real `redis-server`: FIFO, bounds, join, many processes,
//! re-delivery after a SIGKILLed consumer, corrupt entries, and every connection error.

#![cfg(not(miri))] // real processes and sockets

mod support;

use shmkit_remote::{Error, Queue, TryRecvError, TrySendError};
use shmkit_testing::unique;
use std::time::{Duration, Instant};
use support::Durability;

shmkit_process::test_support!();

const LONG: Duration = Duration::from_secs(20);

#[test]
fn fifo_len_and_empty_errors() {
    let Some(srv) = support::server() else { return };
    let q = Queue::<String>::connect(&srv.url(), &unique("fifo")).unwrap();
    for s in ["a", "bb", "ccc"] {
        q.put(&s.to_owned()).unwrap();
    }
    assert_eq!(q.len().unwrap(), 3);
    assert_eq!(q.get().unwrap(), "a");
    assert_eq!(q.get_timeout(LONG).unwrap(), "bb");
    assert_eq!(q.try_get().unwrap(), "ccc");
    assert!(matches!(q.try_get(), Err(TryRecvError::Empty)));
    let t = Instant::now();
    assert!(matches!(
        q.get_timeout(Duration::from_millis(150)),
        Err(Error::Timeout)
    ));
    assert!(t.elapsed() >= Duration::from_millis(150) && t.elapsed() < LONG);
    assert_eq!(
        q.len().unwrap(),
        0,
        "a get acknowledges and deletes its item"
    );
    q.close();
    assert!(matches!(q.put(&"x".to_owned()), Err(Error::Closed)));
}

#[test]
fn batches_keep_order() {
    let Some(srv) = support::server() else { return };
    let q = Queue::<u64>::connect(&srv.url(), &unique("batch")).unwrap();
    let items: Vec<u64> = (0..100).collect();
    q.put_many(&items).unwrap();
    let mut got = Vec::new();
    while got.len() < 100 {
        let batch = q.get_many(32, LONG).unwrap();
        assert!(!batch.is_empty());
        got.extend(batch);
    }
    assert_eq!(got, items);
}

#[test]
fn maxsize_bounds_put() {
    let Some(srv) = support::server() else { return };
    let name = unique("bounded");
    let q = Queue::<u32>::builder(&srv.url(), &name)
        .maxsize(2)
        .connect()
        .unwrap();
    q.put(&1).unwrap();
    q.try_put(&2).unwrap();
    assert!(q.is_full().unwrap());
    assert!(matches!(q.try_put(&3), Err(TrySendError::Full)));
    assert!(matches!(
        q.put_timeout(&3, Duration::from_millis(100)),
        Err(Error::Timeout)
    ));
    // Another handle sees the bound recorded by the first.
    let other = Queue::<u32>::connect(&srv.url(), &name).unwrap();
    assert_eq!(other.maxsize(), Some(2));
    assert_eq!(other.get().unwrap(), 1);
    q.put_timeout(&3, LONG).unwrap();
    assert_eq!(q.len().unwrap(), 2);
}

#[test]
fn task_done_and_join() {
    let Some(srv) = support::server() else { return };
    let q = Queue::<u8>::connect(&srv.url(), &unique("join")).unwrap();
    q.put(&1).unwrap();
    q.put(&2).unwrap();
    assert!(matches!(
        q.join_timeout(Duration::from_millis(50)),
        Err(Error::Timeout)
    ));
    let c = q.try_clone().unwrap();
    let worker = std::thread::spawn(move || {
        for _ in 0..2 {
            c.get_timeout(LONG).unwrap();
            c.task_done().unwrap();
        }
    });
    q.join_timeout(LONG).unwrap();
    worker.join().unwrap();
    assert!(matches!(q.task_done(), Err(Error::TaskDoneTooMany)));
}

fn produce((url, name, from): (String, String, u32)) -> u32 {
    let q = Queue::<u32>::connect(&url, &name).unwrap();
    for i in from..from + 200 {
        q.put(&i).unwrap();
    }
    200
}

fn consume((url, name, n): (String, String, u32)) -> Vec<u32> {
    let q = Queue::<u32>::connect(&url, &name).unwrap();
    (0..n).map(|_| q.get_timeout(LONG).unwrap()).collect()
}

/// Two producer processes and two consumer processes (plus this one): every item is
/// delivered exactly once.
#[test]
fn many_processes_each_item_once() {
    let Some(srv) = support::server() else { return };
    let name = unique("mpmc");
    let url = srv.url();
    let q = Queue::<u32>::connect(&url, &name).unwrap();
    let producers: Vec<_> = [0, 1000]
        .into_iter()
        .map(|from| shmkit_process::spawn(produce, (url.clone(), name.clone(), from)).unwrap())
        .collect();
    let consumers: Vec<_> = (0..2)
        .map(|_| shmkit_process::spawn(consume, (url.clone(), name.clone(), 150)).unwrap())
        .collect();
    let mut got: Vec<u32> = (0..100).map(|_| q.get_timeout(LONG).unwrap()).collect();
    for mut p in producers {
        assert_eq!(p.join_timeout(LONG).unwrap(), 200);
    }
    for mut c in consumers {
        got.extend(c.join_timeout(LONG).unwrap());
    }
    got.sort_unstable();
    let want: Vec<u32> = (0..200).chain(1000..1200).collect();
    assert_eq!(got, want);
    assert!(matches!(q.try_get(), Err(TryRecvError::Empty)));
}

/// Takes one item without acknowledging it, says so, and waits to be killed.
fn take_and_hang((url, name, flag): (String, String, String)) {
    let q = Queue::<String>::connect(&url, &name).unwrap();
    let lease = q.take(LONG).unwrap();
    assert_eq!(lease.item, "precious");
    let mut raw = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    redis::cmd("SET")
        .arg(&flag)
        .arg(1)
        .query::<()>(&mut raw)
        .unwrap();
    std::thread::sleep(LONG * 3);
}

/// A consumer SIGKILLed while it holds an unacknowledged item: the item is re-delivered
/// to the next `get` once `reclaim_after` has passed, and to nobody before.
#[test]
fn item_of_a_killed_consumer_is_redelivered() {
    let Some(srv) = support::server() else { return };
    let name = unique("lease");
    let url = srv.url();
    let q = Queue::<String>::builder(&url, &name)
        .reclaim_after(Duration::from_millis(400))
        .connect()
        .unwrap();
    q.put(&"precious".to_owned()).unwrap();
    let flag = format!("{name}-taken");
    // The child's read happens after this instant, and re-delivery comes at least
    // `reclaim_after` after that read.
    let spawned_at = Instant::now();
    let child =
        shmkit_process::spawn(take_and_hang, (url.clone(), name.clone(), flag.clone())).unwrap();
    let mut raw = srv.raw();
    let deadline = Instant::now() + LONG;
    while redis::cmd("GET")
        .arg(&flag)
        .query::<Option<String>>(&mut raw)
        .unwrap()
        .is_none()
    {
        assert!(Instant::now() < deadline, "the child never took the item");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    assert_eq!(q.len().unwrap(), 1, "still pending, not lost");
    assert_eq!(q.get_timeout(LONG).unwrap(), "precious");
    assert!(
        spawned_at.elapsed() >= Duration::from_millis(400),
        "re-delivered before the idle time"
    );
    assert!(matches!(q.try_get(), Err(TryRecvError::Empty)));
    assert_eq!(q.len().unwrap(), 0);
}

#[test]
fn a_lease_is_acknowledged_once() {
    let Some(srv) = support::server() else { return };
    let q = Queue::<u32>::connect(&srv.url(), &unique("ack")).unwrap();
    q.put(&7).unwrap();
    let lease = q.take(LONG).unwrap();
    assert_eq!(q.len().unwrap(), 1);
    assert_eq!(q.ack(lease).unwrap(), 7);
    assert_eq!(q.len().unwrap(), 0);
}

/// Entries the crate did not write: a typed error naming the stream and the entry id,
/// the entry moved to the dead-letter stream, and the next item served normally.
#[test]
fn foreign_and_corrupt_entries_are_typed_errors() {
    let Some(srv) = support::server() else { return };
    let q = Queue::<u64>::connect(&srv.url(), &unique("corrupt")).unwrap();
    let mut raw = srv.raw();
    let foreign: String = redis::cmd("XADD")
        .arg(q.key())
        .arg("*")
        .arg("hello")
        .arg("world")
        .query(&mut raw)
        .unwrap();
    let bad: String = redis::cmd("XADD")
        .arg(q.key())
        .arg("*")
        .arg("d")
        .arg(&[0xffu8; 11][..]) // a varint that never ends
        .query(&mut raw)
        .unwrap();
    q.put(&5).unwrap();
    match q.get_timeout(LONG) {
        Err(Error::Corrupt { stream, id, what }) => {
            assert_eq!(stream, q.key());
            assert_eq!(id, foreign);
            assert!(what.contains("\"d\""), "{what}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    match q.try_get() {
        Err(TryRecvError::Failed(Error::Corrupt { id, what, .. })) => {
            assert_eq!(id, bad);
            assert!(what.contains("u64"), "{what}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(q.get_timeout(LONG).unwrap(), 5);
    assert_eq!(q.dead_letters().unwrap(), 2);
}

#[test]
fn another_item_type_is_refused() {
    let Some(srv) = support::server() else { return };
    let name = unique("typed");
    let _q = Queue::<u32>::connect(&srv.url(), &name).unwrap();
    match Queue::<String>::connect(&srv.url(), &name) {
        Err(Error::Foreign {
            expected, found, ..
        }) => {
            assert!(expected.contains("String"), "{expected}");
            assert!(found.contains("u32"), "{found}");
        }
        other => panic!("expected Foreign, got {other:?}"),
    }
    let mut raw = srv.raw();
    redis::cmd("SET")
        .arg("shmkit:queue:plain-string")
        .arg("x")
        .query::<()>(&mut raw)
        .unwrap();
    assert!(matches!(
        Queue::<u32>::connect(&srv.url(), "plain-string"),
        Err(Error::Foreign { .. })
    ));
    assert!(matches!(
        Queue::<u32>::connect(&srv.url(), "bad/name"),
        Err(Error::InvalidName { .. })
    ));
}

#[test]
fn wrong_url_server_down_and_wrong_password_fail_at_once() {
    let t = Instant::now();
    assert!(matches!(
        Queue::<u32>::connect("http://127.0.0.1:1", "x"),
        Err(Error::InvalidUrl { .. })
    ));
    assert!(matches!(
        Queue::<u32>::connect("not a url", "x"),
        Err(Error::InvalidUrl { .. })
    ));
    #[cfg(not(feature = "tls"))]
    match Queue::<u32>::connect("rediss://127.0.0.1:1", "x") {
        Err(Error::InvalidUrl { reason, .. }) => assert!(reason.contains("TLS"), "{reason}"),
        other => panic!("expected InvalidUrl for rediss:// without the tls feature, got {other:?}"),
    }
    // Nothing listens on a port we just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    match Queue::<u32>::connect(&format!("redis://127.0.0.1:{port}"), "x") {
        Err(e @ Error::Connect { .. }) => assert!(e.to_string().contains(&port.to_string())),
        other => panic!("expected Connect, got {other:?}"),
    }
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "not immediate: {:?}",
        t.elapsed()
    );

    let Some(srv) = support::start(Durability::None, Some("s3cret")) else {
        return;
    };
    Queue::<u32>::connect(&srv.url(), "ok").unwrap();
    let wrong = format!("redis://:nope@127.0.0.1:{}", srv.port);
    match Queue::<u32>::connect(&wrong, "x") {
        Err(e @ Error::Auth { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("***") && !msg.contains("nope"), "{msg}");
        }
        other => panic!("expected Auth, got {other:?}"),
    }
}

/// The server dies during a blocking `get` and between calls: the call in progress is
/// `ConnectionLost`, and once the server is back the next call reconnects by itself.
#[test]
fn a_lost_connection_is_typed_and_the_next_call_reconnects() {
    let Some(mut srv) = support::start(Durability::AofAlways, None) else {
        return;
    };
    let q = std::sync::Arc::new(Queue::<u32>::connect(&srv.url(), &unique("reconnect")).unwrap());
    q.put(&1).unwrap();
    let qq = q.clone();
    let blocked = std::thread::spawn(move || {
        assert_eq!(qq.get_timeout(LONG).unwrap(), 1);
        qq.get_timeout(LONG) // blocks: the queue is empty
    });
    // Wait until the thread blocks in its second get (bounded).
    let mut raw = srv.raw();
    let deadline = Instant::now() + LONG;
    loop {
        let blocked_clients: String = redis::cmd("INFO").arg("clients").query(&mut raw).unwrap();
        if blocked_clients.contains("blocked_clients:1") {
            break;
        }
        assert!(Instant::now() < deadline, "get never blocked");
        std::thread::sleep(Duration::from_millis(5));
    }
    srv.kill();
    match blocked.join().unwrap() {
        Err(e @ Error::ConnectionLost { .. }) => assert!(e.is_connection_error()),
        other => panic!("expected ConnectionLost, got {other:?}"),
    }
    assert!(
        q.put(&2).unwrap_err().is_connection_error(),
        "server still down"
    );
    srv.restart();
    q.put(&3).unwrap();
    assert_eq!(q.get_timeout(LONG).unwrap(), 3);
}

/// An ACL user limited to shmkit's keys (the rules docs/remote.md recommends) can use a
/// queue; its wrong password is `Auth`; a key outside its pattern is `Server` (NOPERM).
#[test]
fn acl_users_with_the_documented_rules() {
    let Some(srv) = support::server() else { return };
    let mut raw = srv.raw();
    redis::cmd("ACL")
        .arg("SETUSER")
        .arg("shmkit")
        .arg("on")
        .arg(">pw-1")
        .arg("~shmkit:*")
        .arg("+@stream")
        .arg("+@hash")
        .arg("+get")
        .arg("+set")
        .arg("+del")
        .arg("+eval")
        .arg("+ping")
        .arg("+multi")
        .arg("+exec")
        .query::<()>(&mut raw)
        .unwrap();
    let url = format!("redis://shmkit:pw-1@127.0.0.1:{}", srv.port);
    let q = Queue::<u32>::builder(&url, &unique("acl"))
        .maxsize(10)
        .connect()
        .unwrap();
    q.put(&1).unwrap();
    q.put_many(&[2, 3]).unwrap();
    assert_eq!(q.get_timeout(LONG).unwrap(), 1);
    q.task_done().unwrap();
    assert_eq!(q.get_many(5, LONG).unwrap(), [2, 3]);
    let bad = format!("redis://shmkit:nope@127.0.0.1:{}", srv.port);
    assert!(matches!(
        Queue::<u32>::connect(&bad, "x"),
        Err(Error::Auth { .. })
    ));
    // Pools work under the same rules.
    let pool = shmkit_remote::Pool::connect(&url, &unique("acl-pool")).unwrap();
    pool.stop_workers().unwrap();
    pool.resume_workers().unwrap();
    assert!(pool.dead_letters().unwrap().is_empty());
}

/// `inspect::list` finds queues and pools with their depth, pending entries per
/// consumer, and dead letters.
#[test]
fn list_shows_depth_pending_and_dead_letters() {
    use shmkit_remote::inspect::{self, Kind};
    let Some(srv) = support::server() else { return };
    let qname = unique("listed");
    let q = Queue::<u32>::connect(&srv.url(), &qname).unwrap();
    q.put_many(&[1, 2, 3]).unwrap();
    let lease = q.take(LONG).unwrap();
    redis::cmd("XADD")
        .arg(q.key())
        .arg("*")
        .arg("junk")
        .arg("1")
        .query::<String>(&mut srv.raw())
        .unwrap();
    let pname = unique("listed-pool");
    let _pool = shmkit_remote::Pool::connect(&srv.url(), &pname).unwrap();
    let s = inspect::inspect(&srv.url(), Kind::Queue, &qname).unwrap();
    assert_eq!(s.depth, 4);
    assert_eq!(s.pending, vec![(q.consumer().to_owned(), 1)]);
    q.ack(lease).unwrap();
    assert_eq!(q.get().unwrap(), 2);
    assert_eq!(q.get().unwrap(), 3);
    assert!(matches!(q.get(), Err(Error::Corrupt { .. })));
    let all = inspect::list(&srv.url()).unwrap();
    let qs = all.iter().find(|s| s.name == qname).unwrap();
    assert_eq!((qs.kind, qs.depth, qs.dead_letters), (Kind::Queue, 0, 1));
    let ps = all.iter().find(|s| s.name == pname).unwrap();
    assert_eq!((ps.kind, ps.depth, ps.dead_letters), (Kind::Pool, 0, 0));
}
