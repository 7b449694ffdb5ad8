//! The awaited forms of the rings' waits: [`Queue`], [`PodQueue`], [`Connection`] and the
//! SPSC [`Producer`] and [`Consumer`].

use crate::park::{Wait, WaitFuture, not_now};
use crate::wrapper::Async;
use serde::Serialize;
use serde::de::DeserializeOwned;
use shmkit_ring::spsc::{Consumer, Producer, ReadGrant};
use shmkit_ring::wait_side::WaitSide;
use shmkit_ring::{Connection, Error, PodQueue, Queue, Result};
use shmkit_sync::SpinPolicy;
use std::future::Future;
use std::time::Duration;

/// Await `op` (see [`WaitFuture`]).
fn wait<W: Wait + Unpin>(op: W, spin: SpinPolicy) -> WaitFuture<W> {
    WaitFuture::new(op, spin)
}

struct QueueGet<'a, T>(&'a Queue<T>);

impl<T: Serialize + DeserializeOwned + 'static> Wait for QueueGet<'_, T> {
    type Output = T;
    #[inline]
    fn attempt(&mut self) -> Result<Option<T>> {
        // Not `try_get`: that asks the kernel whether a producer is left every time the
        // queue is empty; the wait asks once before sleeping and once per slice.
        self.0.try_take()
    }
    fn side(&self) -> Result<WaitSide<'_>> {
        Ok(self.0.readable_side())
    }
    fn ready(&self) -> bool {
        !self.0.is_empty()
    }
}

struct QueuePut<'a, T>(&'a Queue<T>, &'a T);

impl<T: Serialize + DeserializeOwned + 'static> Wait for QueuePut<'_, T> {
    type Output = ();
    #[inline]
    fn attempt(&mut self) -> Result<Option<()>> {
        not_now(self.0.try_put(self.1))
    }
    fn side(&self) -> Result<WaitSide<'_>> {
        self.0.writable_side(self.1)
    }
}

struct QueueJoin<'a, T>(&'a Queue<T>);

impl<T: Serialize + DeserializeOwned + 'static> Wait for QueueJoin<'_, T> {
    type Output = ();
    #[inline]
    fn attempt(&mut self) -> Result<Option<()>> {
        match self.0.join_timeout(Duration::ZERO) {
            Ok(()) => Ok(Some(())),
            Err(Error::Timeout) => Ok(None),
            Err(e) => Err(e),
        }
    }
    fn side(&self) -> Result<WaitSide<'_>> {
        Ok(self.0.join_side())
    }
}

impl<T: Serialize + DeserializeOwned + 'static> Async<Queue<T>> {
    /// Take the next item, waiting (without blocking the thread) while the queue is
    /// empty; [`Error::Disconnected`] once it is empty and no other handle can put (see
    /// [`Queue::get`]). Cancel-safe: an item is taken only by the poll that returns it.
    pub async fn get(&self) -> Result<T> {
        wait(QueueGet(self), self.spin).await
    }

    /// Put `item`, waiting while the queue is full (only a queue with a bound or a fixed
    /// ring is ever full). Cancel-safe: the item is put only by the poll that returns.
    pub async fn put(&self, item: &T) -> Result<()> {
        wait(QueuePut(self, item), self.spin).await
    }

    /// Wait until every item put has been marked [`task_done`](Queue::task_done)
    /// (`JoinableQueue.join`), like [`Queue::join`]. Cancel-safe (it takes nothing).
    pub async fn join(&self) -> Result<()> {
        wait(QueueJoin(self), self.spin).await
    }
}

struct PodGet<'a, T>(&'a PodQueue<T>);

impl<T: bytemuck::Pod> Wait for PodGet<'_, T> {
    type Output = T;
    #[inline]
    fn attempt(&mut self) -> Result<Option<T>> {
        not_now(self.0.try_get())
    }
    fn side(&self) -> Result<WaitSide<'_>> {
        Ok(self.0.readable_side())
    }
    fn ready(&self) -> bool {
        !self.0.is_empty()
    }
}

struct PodPut<'a, T>(&'a PodQueue<T>, &'a T);

impl<T: bytemuck::Pod> Wait for PodPut<'_, T> {
    type Output = ();
    #[inline]
    fn attempt(&mut self) -> Result<Option<()>> {
        not_now(self.0.try_put(self.1))
    }
    fn side(&self) -> Result<WaitSide<'_>> {
        Ok(self.0.writable_side())
    }
}

impl<T: bytemuck::Pod> Async<PodQueue<T>> {
    /// Take the next item, waiting while the queue is empty (see [`PodQueue::get`]).
    /// Cancel-safe.
    pub async fn get(&self) -> Result<T> {
        wait(PodGet(self), self.spin).await
    }

    /// Put `item`, waiting while every slot is taken. Cancel-safe.
    pub async fn put(&self, item: &T) -> Result<()> {
        wait(PodPut(self, item), self.spin).await
    }
}

struct ConnRecv<'a>(&'a Connection, &'a mut Vec<u8>);

impl Wait for ConnRecv<'_> {
    type Output = ();
    #[inline]
    fn attempt(&mut self) -> Result<Option<()>> {
        not_now(self.0.try_recv_bytes_into(self.1))
    }
    fn side(&self) -> Result<WaitSide<'_>> {
        self.0.readable_side()
    }
}

struct ConnSend<'a>(&'a Connection, &'a [u8]);

impl Wait for ConnSend<'_> {
    type Output = ();
    #[inline]
    fn attempt(&mut self) -> Result<Option<()>> {
        not_now(self.0.try_send_bytes(self.1))
    }
    fn side(&self) -> Result<WaitSide<'_>> {
        self.0.writable_side(self.1.len())
    }
}

impl Async<Connection> {
    /// Receive raw bytes into `buf` (cleared first), waiting while nothing is there;
    /// [`Error::Disconnected`] once the other end is closed, dropped or dead and
    /// everything it sent has been received. Cancel-safe.
    pub fn recv_bytes_into<'a>(
        &'a self,
        buf: &'a mut Vec<u8>,
    ) -> impl Future<Output = Result<()>> + 'a {
        wait(ConnRecv(self, buf), self.spin)
    }

    /// Receive raw bytes. Cancel-safe.
    pub async fn recv_bytes(&self) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.recv_bytes_into(&mut v).await?;
        Ok(v)
    }

    /// Receive a serde value (postcard-encoded, as [`Connection::send`] sends it).
    /// Cancel-safe.
    pub async fn recv<T: DeserializeOwned>(&self) -> Result<T> {
        let bytes = self.recv_bytes().await?;
        postcard::from_bytes(&bytes).map_err(Error::Decode)
    }

    /// Send raw bytes, waiting while the pipe is full. Cancel-safe: sent only by the poll
    /// that returns.
    pub fn send_bytes<'a>(&'a self, bytes: &'a [u8]) -> impl Future<Output = Result<()>> + 'a {
        wait(ConnSend(self, bytes), self.spin)
    }

    /// Send a serde value (postcard-encoded). Cancel-safe.
    pub async fn send<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        let bytes = postcard::to_allocvec(value).map_err(Error::Encode)?;
        self.send_bytes(&bytes).await
    }
}

struct ConsRecv<'a>(&'a mut Consumer, &'a mut Vec<u8>);

impl Wait for ConsRecv<'_> {
    type Output = ();
    #[inline]
    fn attempt(&mut self) -> Result<Option<()>> {
        not_now(self.0.try_recv_into(self.1))
    }
    fn side(&self) -> Result<WaitSide<'_>> {
        Ok(self.0.readable_side())
    }
    fn ready(&self) -> bool {
        !self.0.is_empty()
    }
}

/// Waits until the consumer has a message in place (taking nothing).
struct ConsReadable<'a>(&'a mut Consumer);

impl Wait for ConsReadable<'_> {
    type Output = ();
    #[inline]
    fn attempt(&mut self) -> Result<Option<()>> {
        // A grant dropped without `release` leaves the message where it is.
        not_now(self.0.try_read().map(drop))
    }
    fn side(&self) -> Result<WaitSide<'_>> {
        Ok(self.0.readable_side())
    }
    fn ready(&self) -> bool {
        !self.0.is_empty()
    }
}

impl Async<Consumer> {
    /// Receive one message into `buf` (cleared first), waiting while the ring is empty;
    /// [`Error::Disconnected`] once the producer is gone and everything it committed was
    /// received. Cancel-safe.
    pub fn recv_into<'a>(
        &'a mut self,
        buf: &'a mut Vec<u8>,
    ) -> impl Future<Output = Result<()>> + 'a {
        wait(ConsRecv(&mut self.inner, buf), self.spin)
    }

    /// Receive one message as a new `Vec`. Cancel-safe.
    pub async fn recv_vec(&mut self) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.recv_into(&mut v).await?;
        Ok(v)
    }

    /// The next message in place (zero-copy), waiting while the ring is empty;
    /// [`release`](ReadGrant::release) it when done. Cancel-safe: a grant dropped
    /// without `release` leaves the message in the ring.
    pub async fn read(&mut self) -> Result<ReadGrant<'_>> {
        wait(ConsReadable(&mut self.inner), self.spin).await?;
        // The single consumer: the message found is still first in line.
        self.inner.try_read().map_err(Error::from)
    }
}

struct ProdSend<'a>(&'a mut Producer, &'a [u8]);

impl Wait for ProdSend<'_> {
    type Output = ();
    #[inline]
    fn attempt(&mut self) -> Result<Option<()>> {
        not_now(self.0.try_send(self.1))
    }
    fn side(&self) -> Result<WaitSide<'_>> {
        Ok(self.0.writable_side(self.1.len()))
    }
}

impl Async<Producer> {
    /// Send one message, waiting while the ring is full; [`Error::Disconnected`] if the
    /// consumer is gone, [`Error::TooLarge`] if it can never fit. Cancel-safe.
    pub async fn send(&mut self, msg: &[u8]) -> Result<()> {
        let max = self.inner.max_message();
        if msg.len() > max {
            return Err(Error::TooLarge {
                name: self.inner.name().to_owned(),
                len: msg.len(),
                max,
            });
        }
        wait(ProdSend(&mut self.inner, msg), self.spin).await
    }
}
