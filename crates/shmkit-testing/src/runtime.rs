//! Tokio runtimes for the awaited forms' tests and benches (feature `tokio`): both
//! flavors, and a bound on every wait that also catches a lost wake-up.

use std::future::Future;
use std::time::{Duration, Instant};

/// How long an awaited wait in a test may take before it counts as hung.
pub const LONG: Duration = Duration::from_secs(30);

/// A current-thread runtime with the timer and I/O drivers.
pub fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
}

/// A multi-thread runtime of two workers (the test machines have two cores), with the
/// timer and I/O drivers.
pub fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a multi-thread runtime")
}

/// Run `f` on both runtimes, one after the other.
pub fn on_both<F: Future<Output = ()>>(f: impl Fn() -> F) {
    current_thread().block_on(f());
    multi_thread().block_on(f());
}

/// `f`, bounded by [`LONG`]. Also fails a wait that completes only because the
/// timeout's own wake-up polled it once more (tokio polls the inner future first): a
/// lost wake-up must not pass for a slow one.
pub async fn bounded<T>(f: impl Future<Output = T>) -> T {
    let t0 = Instant::now();
    let v = tokio::time::timeout(LONG, f)
        .await
        .expect("bounded wait hit its timeout");
    assert!(
        t0.elapsed() < LONG,
        "the wait ended only with its timeout's wake-up (a lost wake-up)"
    );
    v
}
