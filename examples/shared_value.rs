//! `multiprocessing.Value`: a child sets a shared integer, the parent prints it.
//!
//! ```python
//! def f(n): n.value = 100
//! num = Value('i', 0); p = Process(target=f, args=(num,)); p.start(); p.join()
//! print(num.value)                      # 100
//! ```
//! Run: `cargo run --example shared_value`

use shmkit::sync::Value;

fn set_to_100(n: Value<i32>) {
    n.set(100).expect("set");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    shmkit::init();
    let num = Value::anonymous(0i32)?;
    shmkit::process::spawn(set_to_100, num.clone())?.join()?;
    println!("{}", num.get()?);
    Ok(())
}
