//! `multiprocessing.Event`: one process waits until another sets the event.
//!
//! ```python
//! def waiter(e): e.wait(); print("event seen")
//! def setter(e): time.sleep(0.1); e.set()
//! ```
//! Run: `cargo run --example event_wait` — prints `event seen`.

use std::time::Duration;

use shmkit::sync::Event;

fn waiter(e: Event) -> bool {
    e.wait_timeout(Duration::from_secs(30))
}

fn setter(e: Event) {
    std::thread::sleep(Duration::from_millis(100));
    e.set();
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    shmkit::init();
    let event = Event::anonymous()?;
    let w = shmkit::process::spawn(waiter, event.clone())?;
    let s = shmkit::process::spawn(setter, event.clone())?;
    s.join()?;
    if w.join()? {
        println!("event seen");
    }
    Ok(())
}
