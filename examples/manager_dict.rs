//! `Manager().dict()`: two processes insert into a shared dict — here without a server
//! process: the dict is a hash map in shared memory (readers take no lock, writers share
//! a robust one) that grows as Python's does.
//!
//! ```python
//! def f(d, i): d[i] = 100 + i
//! with Manager() as m:
//!     d = m.dict(); ps = [Process(target=f, args=(d, i)) for i in range(2)]; ...
//!     print(d)                          # {0: 100, 1: 101}
//! ```
//! Run: `cargo run --example manager_dict`

use shmkit::sync::Dict;

fn insert((d, i): (Dict<u32, u32>, u32)) {
    d.insert(i, 100 + i).expect("insert");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    shmkit::init();
    let d = Dict::<u32, u32>::anonymous()?;
    let ps = (0..2)
        .map(|i| shmkit::process::spawn(insert, (d.clone(), i)))
        .collect::<Result<Vec<_>, _>>()?;
    for p in ps {
        p.join()?;
    }
    println!("{:?}", d.snapshot()?);
    Ok(())
}
