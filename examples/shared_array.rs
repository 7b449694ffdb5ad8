//! `multiprocessing.Array`: a child fills a shared array, the parent prints it.
//!
//! ```python
//! def f(a):
//!     for i in range(len(a)): a[i] = i * 2
//! arr = Array('i', 5); p = Process(target=f, args=(arr,)); p.start(); p.join()
//! print(arr[:])                         # [0, 2, 4, 6, 8]
//! ```
//! Run: `cargo run --example shared_array`

use shmkit::sync::Array;

fn fill(a: Array<i32>) {
    let mut elems = a.lock().expect("lock");
    for (i, e) in elems.iter_mut().enumerate() {
        *e = i as i32 * 2;
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    shmkit::init();
    let arr = Array::<i32>::anonymous_zeroed(5)?;
    shmkit::process::spawn(fill, arr.clone())?.join()?;
    println!("{:?}", arr.to_vec()?);
    Ok(())
}
