//! A child sends three greetings over a pipe and closes its end; the parent receives
//! until end-of-stream — the `multiprocessing.Pipe` example of the Python guide.
//!
//! ```python
//! def f(conn):
//!     for w in ["Hello", "World", "Bye"]: conn.send(w)
//!     conn.close()
//! parent, child = Pipe()
//! ```
//!
//! Run: `cargo run --example pipe`. Prints `["Hello", "World", "Bye"]`.

use shmkit::prelude::*;

fn child(conn: Connection) {
    for w in ["Hello", "World", "Bye"] {
        conn.send(w).expect("send");
    }
    conn.close();
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    shmkit::init();
    let (parent_end, child_end) = Pipe::new()?;
    let p = spawn(child, child_end.transfer())?;
    let mut got: Vec<String> = Vec::new();
    loop {
        match parent_end.recv_timeout(std::time::Duration::from_secs(10)) {
            Ok(s) => got.push(s),
            Err(RingError::Disconnected) => break, // Python's EOFError
            Err(e) => return Err(e.into()),
        }
    }
    p.join()?;
    println!("{got:?}");
    Ok(())
}
