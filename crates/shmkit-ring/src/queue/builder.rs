//! [`QueueBuilder`]: how a [`Queue`] is made — a name or none, a bound in items or none,
//! a growing ring (the default) or a fixed one.

use super::growth::{DEFAULT_STEP, VIRTUAL_CAPACITY};
use crate::Queue;
use crate::error::{Error, Result};
use crate::raw::spsc;
use crate::wait::WaitStrategy;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;

/// The ring a queue is created with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    /// Ring capacity in bytes (a power of two).
    pub(crate) capacity: u64,
    /// A sparse ring that grows and shrinks (queue/growth.rs).
    pub(crate) growing: bool,
    /// Most items held (0: no bound).
    pub(crate) maxsize: u64,
    /// Bytes reserved or given back at a time (growing rings).
    pub(crate) growth_step: u32,
    /// How producers and consumers wait for each other.
    pub(crate) strategy: WaitStrategy,
}

impl Shape {
    /// A fixed ring of at least `capacity` bytes.
    pub(crate) fn fixed(capacity: usize) -> Result<Shape> {
        let cap = (capacity as u64).max(spsc::MIN_CAPACITY);
        let cap = cap.checked_next_power_of_two().unwrap_or(u64::MAX);
        if !spsc::valid_capacity(cap) {
            return Err(Error::InvalidCapacity {
                capacity: capacity as u64,
                why: "a queue's ring holds at most 1 TiB",
            });
        }
        Ok(Shape {
            capacity: cap,
            growing: false,
            maxsize: 0,
            growth_step: DEFAULT_STEP,
            strategy: WaitStrategy::Blocking,
        })
    }

    fn growing() -> Shape {
        Shape {
            capacity: VIRTUAL_CAPACITY,
            growing: true,
            maxsize: 0,
            growth_step: DEFAULT_STEP,
            strategy: WaitStrategy::Blocking,
        }
    }
}

/// Makes a [`Queue`]: `Queue::<T>::builder().name("jobs").maxsize(1000).create()`.
///
/// By default the queue is anonymous and has no bound, like Python's `Queue()`: `put`
/// never blocks, memory grows with what is unconsumed and is given back once it is
/// consumed. [`maxsize`](Self::maxsize) bounds it in items, like `Queue(maxsize)`.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `create`"]
pub struct QueueBuilder<T> {
    name: Option<String>,
    shape: Shape,
    /// A fixed-ring capacity that did not validate (reported by `create`).
    bad_capacity: Option<usize>,
    _t: PhantomData<fn(T) -> T>,
}

impl<T: Serialize + DeserializeOwned + 'static> QueueBuilder<T> {
    pub(crate) fn new() -> Self {
        QueueBuilder {
            name: None,
            shape: Shape::growing(),
            bad_capacity: None,
            _t: PhantomData,
        }
    }

    /// A name in `/dev/shm`, so that other programs can [`Queue::open`] it (default:
    /// anonymous, shared with children by passing a handle).
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// At most `maxsize` items in the queue: `put` waits beyond, `try_put` returns
    /// [`TrySendError::Full`](crate::TrySendError::Full) (Python's `Queue(maxsize)`). 0: no bound (the default).
    pub fn maxsize(mut self, maxsize: usize) -> Self {
        self.shape.maxsize = maxsize as u64;
        self
    }

    /// A fixed ring of at least `bytes` (rounded up to a power of two) instead of a
    /// growing one: its memory is reserved at once and never grows; `put` waits while
    /// it is full. The fastest shape when the bytes in flight are known.
    pub fn capacity_bytes(mut self, bytes: usize) -> Self {
        match Shape::fixed(bytes) {
            Ok(fixed) => {
                self.shape = Shape {
                    maxsize: self.shape.maxsize,
                    growth_step: self.shape.growth_step,
                    strategy: self.shape.strategy,
                    ..fixed
                }
            }
            Err(_) => self.bad_capacity = Some(bytes),
        }
        self
    }

    /// A growing queue reserves and gives back memory `bytes` at a time (rounded up to
    /// 4 KiB; default 256 KiB): smaller steps follow the items more closely, larger
    /// ones make fewer system calls.
    pub fn growth_step(mut self, bytes: usize) -> Self {
        let step = bytes.clamp(4096, 1 << 30).next_multiple_of(4096);
        self.shape.growth_step = step as u32;
        self
    }

    /// How producers and consumers wait for each other (default:
    /// [`WaitStrategy::Blocking`]); recorded in the queue's header.
    pub fn wait(mut self, strategy: WaitStrategy) -> Self {
        self.shape.strategy = strategy;
        self
    }

    /// Create the queue; this handle is its first.
    pub fn create(self) -> Result<Queue<T>> {
        if let Some(bytes) = self.bad_capacity {
            Shape::fixed(bytes)?; // the error it gave
        }
        Queue::create_in(self.name.as_deref(), self.shape)
    }
}
