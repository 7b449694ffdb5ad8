//! Functions known by name: the program registers them, a task names one, a worker
//! calls it only if its own program registered that name. No code travels and nothing
//! a task says can make a worker call anything else.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock, RwLock};

/// One item's outcome, as the worker sends it: the encoded result or a panic message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Item {
    Ok(Vec<u8>),
    Panicked(String),
}

/// Runs a chunk: decodes the postcard `Vec` of arguments, calls the function on each.
type Call = Box<dyn Fn(&[u8]) -> Result<Vec<Item>, String> + Send + Sync>;

pub(crate) struct Registered {
    /// The function's address in this process, to find the name of an `fn` given to
    /// `Pool::map`.
    addr: usize,
    /// Whether it takes two arguments (`starmap`).
    star: bool,
    /// `type_name` of its argument (a tuple for two) and of its result: a task says
    /// which types it encoded, and a mismatch fails the task instead of decoding one
    /// type's bytes as another (postcard does not describe its types).
    pub(crate) arg_type: &'static str,
    pub(crate) ret_type: &'static str,
    call: Call,
}

impl Registered {
    pub(crate) fn call(&self, input: &[u8]) -> Result<Vec<Item>, String> {
        (self.call)(input)
    }
}

type Table = RwLock<HashMap<String, Arc<Registered>>>;

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| RwLock::new(HashMap::new()))
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}

fn each<T: DeserializeOwned, R: Serialize>(
    input: &[u8],
    mut g: impl FnMut(T) -> R,
) -> Result<Vec<Item>, String> {
    let args: Vec<T> = postcard::from_bytes(input).map_err(|e| {
        format!(
            "could not decode the arguments as Vec<{}>: {e}",
            std::any::type_name::<T>()
        )
    })?;
    args.into_iter()
        .map(
            |a| match std::panic::catch_unwind(AssertUnwindSafe(|| g(a))) {
                Ok(r) => postcard::to_allocvec(&r).map(Item::Ok).map_err(|e| {
                    format!(
                        "could not encode the result as {}: {e}",
                        std::any::type_name::<R>()
                    )
                }),
                Err(p) => Ok(Item::Panicked(panic_message(p))),
            },
        )
        .collect()
}

fn insert(name: &str, r: Registered) {
    table()
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .insert(name.to_owned(), Arc::new(r));
}

/// Make `f` callable by remote pools under `name`, in this process: the program that
/// submits tasks and the workers that run them (the same binary, or any binary that
/// registers the same names with the same types) both call this before using a pool.
/// Registering a name again replaces it.
///
/// ```
/// fn square(x: u64) -> u64 { x * x }
/// shmkit_remote::register("square", square);
/// ```
pub fn register<A, R>(name: &str, f: fn(A) -> R)
where
    A: Serialize + DeserializeOwned + 'static,
    R: Serialize + DeserializeOwned + 'static,
{
    insert(
        name,
        Registered {
            addr: f as usize,
            star: false,
            arg_type: std::any::type_name::<A>(),
            ret_type: std::any::type_name::<R>(),
            call: Box::new(move |input| each(input, |a: A| f(a))),
        },
    );
}

/// [`register`] for a two-argument function, for [`Pool::starmap`](crate::Pool::starmap).
pub fn register_star<A, B, R>(name: &str, f: fn(A, B) -> R)
where
    A: Serialize + DeserializeOwned + 'static,
    B: Serialize + DeserializeOwned + 'static,
    R: Serialize + DeserializeOwned + 'static,
{
    insert(
        name,
        Registered {
            addr: f as usize,
            star: true,
            arg_type: std::any::type_name::<(A, B)>(),
            ret_type: std::any::type_name::<R>(),
            call: Box::new(move |input| each(input, |(a, b): (A, B)| f(a, b))),
        },
    );
}

/// The function registered under `name`.
pub(crate) fn lookup(name: &str) -> Option<Arc<Registered>> {
    table()
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(name)
        .cloned()
}

/// The name `f` was registered under (`star`: as a two-argument function).
pub(crate) fn name_of(addr: usize, star: bool) -> Option<String> {
    table()
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .find(|(_, r)| r.addr == addr && r.star == star)
        .map(|(n, _)| n.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn triple(x: u32) -> u32 {
        assert!(x != 7, "seven");
        3 * x
    }

    #[test]
    fn registered_functions_run_by_name_and_panics_are_items() {
        register("func-test-triple", triple);
        assert_eq!(
            name_of(triple as fn(u32) -> u32 as usize, false).as_deref(),
            Some("func-test-triple")
        );
        let r = lookup("func-test-triple").unwrap();
        let out = r
            .call(&postcard::to_allocvec(&vec![1u32, 7]).unwrap())
            .unwrap();
        assert!(matches!(&out[0], Item::Ok(b) if postcard::from_bytes::<u32>(b).unwrap() == 3));
        assert!(matches!(&out[1], Item::Panicked(m) if m.contains("seven")));
        assert!(r.call(b"\xff\xff\xff").is_err(), "garbage arguments");
        assert!(lookup("func-test-nobody").is_none());
    }
}
