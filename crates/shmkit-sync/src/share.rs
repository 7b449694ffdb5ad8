//! Passing a primitive to another process by passing the primitive itself.
//!
//! Every primitive of this crate is shared, never owned by one process: like
//! `Process(target=f, args=(lock, value))` in Python, a program hands a clone of it to a
//! child as a [`shmkit_process::spawn`](https://docs.rs/shmkit-process) argument, and the
//! child's function takes it by type. Serializing writes what names the segment (its
//! [`Handle`]) and has no effect on the primitive; deserializing opens it, a new
//! registration of the receiving process. A clone is another registration in this
//! process (`try_clone` reports a full registration table as an error; `clone` panics).
//!
//! ```
//! use shmkit_sync::Value;
//! let v = Value::anonymous(7u32)?;
//! let bytes = postcard::to_allocvec(&v).unwrap();         // what spawn(f, v.clone()) sends
//! let in_child: Value<u32> = postcard::from_bytes(&bytes).unwrap();
//! in_child.set(8)?;
//! assert_eq!(v.get()?, 8);                                   // the same value
//! # Ok::<(), shmkit_sync::Error>(())
//! ```

use bytemuck::Pod;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use serde::de::DeserializeOwned;

use crate::{Array, Barrier, Condvar, Dict, Event, Handle, Mutex, RLock, Semaphore, Value};

macro_rules! shared_by_handle {
    ($(impl[$($g:tt)*] $ty:ty;)*) => {$(
        impl<$($g)*> $ty {
            /// Another handle to the same primitive in this process (a new registration),
            /// for example to pass to a child process and keep this one.
            pub fn try_clone(&self) -> crate::Result<Self> {
                self.handle().open()
            }
        }

        impl<$($g)*> Clone for $ty {
            /// [`try_clone`](Self::try_clone); panics only if the primitive's table of
            /// registrations is full.
            fn clone(&self) -> Self {
                self.try_clone()
                    .unwrap_or_else(|e| panic!("clone of a shmkit-sync primitive: {e}"))
            }
        }

        impl<$($g)*> Serialize for $ty {
            /// Writes the segment's handle; this primitive is unaffected.
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.handle().serialize(s)
            }
        }

        impl<'de, $($g)*> Deserialize<'de> for $ty {
            /// Opens the primitive the handle names (a new registration here).
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Handle::<$ty>::deserialize(d)?
                    .open()
                    .map_err(serde::de::Error::custom)
            }
        }
    )*};
}

shared_by_handle! {
    impl[T: Pod] Mutex<T>;
    impl[T: Pod] Value<T>;
    impl[T: Pod] Array<T>;
    impl[] RLock;
    impl[] Condvar;
    impl[] Event;
    impl[] Semaphore;
    impl[] Barrier;
    impl[K: Serialize + DeserializeOwned + 'static, V: Serialize + DeserializeOwned + 'static] Dict<K, V>;
}
