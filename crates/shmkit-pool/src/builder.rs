//! [`Builder`]: a pool's settings — Python's `Pool(processes, initializer, initargs,
//! maxtasksperchild)` plus the start method and the prefetch window.

use crate::error::{Error, Result};
use crate::func::{self, ChunkFn};
use crate::pool::Pool;
use crate::schedule::DEFAULT_PREFETCH;
use serde::Serialize;
use serde::de::DeserializeOwned;
use shmkit_process::StartMethod;

/// The initializer: its trampoline, the function, its encoded arguments.
pub(crate) type InitSpec = (ChunkFn, usize, Vec<u8>);

/// Settings of a [`Pool`] — Python's `Pool(processes, initializer, initargs,
/// maxtasksperchild)` plus the start method.
///
/// ```no_run
/// use shmkit_pool::Pool;
/// use shmkit_process::StartMethod;
///
/// fn setup(greeting: String) {
///     eprintln!("{greeting} from {}", std::process::id());
/// }
///
/// fn main() -> Result<(), shmkit_pool::Error> {
///     shmkit_process::init();
///     let pool = Pool::builder()
///         .processes(2)
///         .maxtasksperchild(100)
///         .start_method(StartMethod::Spawn)
///         .initializer(setup, "hello".to_string())
///         .build()?;
///     assert_eq!(pool.map(|x: u32| x + 1, [1, 2, 3])?, [2, 3, 4]);
///     Ok(())
/// }
/// ```
#[derive(Debug)]
pub struct Builder {
    pub(crate) processes: Option<usize>,
    pub(crate) max_tasks: Option<u64>,
    pub(crate) method: StartMethod,
    pub(crate) prefetch: usize,
    pub(crate) init: Option<InitSpec>,
    pub(crate) init_error: Option<Error>,
    pub(crate) strategy: shmkit_ring::WaitStrategy,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            processes: None,
            max_tasks: None,
            method: StartMethod::Spawn,
            prefetch: DEFAULT_PREFETCH,
            init: None,
            init_error: None,
            strategy: shmkit_ring::WaitStrategy::Blocking,
        }
    }
}

impl Builder {
    /// Number of worker processes (default: [`cpu_count`](shmkit_process::cpu_count)).
    pub fn processes(mut self, n: usize) -> Self {
        self.processes = Some(n);
        self
    }

    /// A worker exits after this many tasks (chunks, as in Python) and is replaced by a
    /// fresh one — for code that leaks. Default: never.
    pub fn maxtasksperchild(mut self, n: u64) -> Self {
        self.max_tasks = Some(n);
        self
    }

    /// How workers start: [`StartMethod::Spawn`] (default; needs `init()` in `main`) or
    /// [`StartMethod::Fork`].
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.method = method;
        self
    }

    /// Most chunks a worker holds at once (default 16), which hides the round trip to
    /// the pool between quick chunks. While chunks take 200 µs or longer, and before the
    /// first outcome, a worker holds at most 2 (or this, if smaller), so slow tasks
    /// spread evenly over the workers instead of queueing behind one.
    pub fn prefetch(mut self, chunks: usize) -> Self {
        self.prefetch = chunks;
        self
    }

    /// Run `f(args)` in each worker when it starts. If it panics, the pool stops and
    /// every pending task fails with [`Error::InitializerFailed`] (Python's pool keeps
    /// restarting workers forever instead).
    pub fn initializer<A: Serialize + DeserializeOwned>(mut self, f: fn(A), args: A) -> Self {
        match postcard::to_allocvec(&args) {
            Ok(bytes) => self.init = Some((func::init_call::<A>, f as usize, bytes)),
            Err(e) => {
                self.init_error = Some(Error::Encode {
                    type_name: std::any::type_name::<A>(),
                    reason: e.to_string(),
                })
            }
        }
        self
    }

    /// How workers wait for tasks and the pool waits for results (default:
    /// [`WaitStrategy::Blocking`](shmkit_ring::WaitStrategy::Blocking): idle workers
    /// sleep). `BusyPoll` keeps every idle worker and the pool's collector spinning, a
    /// core each: for latency-critical pools with cores to spare.
    pub fn wait(mut self, strategy: shmkit_ring::WaitStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Start the workers.
    pub fn build(self) -> Result<Pool> {
        Pool::start(self)
    }
}
