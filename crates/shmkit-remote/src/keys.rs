//! A pool's keys in Redis, its settings as stored there, the reply shape, and the
//! reclaim of tasks whose worker went silent (used by the pool and by idle workers).
//!
//! | key | type | holds |
//! |---|---|---|
//! | `shmkit:pool:NAME:tasks` | stream | one entry per chunk: `f` name, `a` args, `r` reply stream, `s` seq, `n` attempt; consumer group `workers` |
//! | `shmkit:pool:NAME:reply:CLIENT` | stream | outcomes for one `Pool` handle: `s` seq, `o` outcome |
//! | `shmkit:pool:NAME:dead` | stream | tasks past their retries: the task's fields plus `worker`, `idle_ms`, `attempts` |
//! | `shmkit:pool:NAME:meta` | hash | `kind` = `pool`, `reclaim_ms`, `retries` |
//! | `shmkit:pool:NAME:stop` | string | set by [`Pool::stop_workers`](crate::Pool::stop_workers) |

use crate::error::{Error, Result};
use crate::func::Item;
use crate::link::Link;
use crate::wire::{self, Entry};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The consumer group of a pool's workers.
pub(crate) const GROUP: &str = "workers";
/// Default idle time after which a silent worker's task is reclaimed.
pub const DEFAULT_RECLAIM_AFTER: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub(crate) struct Keys {
    pub(crate) tasks: String,
    pub(crate) meta: String,
    pub(crate) dead: String,
    pub(crate) stop: String,
    pub(crate) reply_prefix: String,
}

impl Keys {
    pub(crate) fn new(name: &str) -> Keys {
        let base = format!("shmkit:pool:{name}");
        Keys {
            tasks: format!("{base}:tasks"),
            meta: format!("{base}:meta"),
            dead: format!("{base}:dead"),
            stop: format!("{base}:stop"),
            reply_prefix: format!("{base}:reply:"),
        }
    }

    /// Whether `key` is a reply stream of this pool (a task's `r` field is untrusted:
    /// nobody may make a worker write into an arbitrary key).
    pub(crate) fn is_reply(&self, key: &str) -> bool {
        key.strip_prefix(&self.reply_prefix)
            .is_some_and(|rest| !rest.is_empty() && !rest.contains(':'))
    }
}

/// A chunk's outcome, postcard-encoded in a reply's `o` field.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Outcome {
    /// One outcome per item, in order.
    Done(Vec<Item>),
    /// The worker has no function of this name.
    Unknown(String),
    /// The chunk failed outside the function (arguments did not decode).
    Failed(String),
    /// Reclaimed from a silent worker with no retry left.
    Died {
        worker: String,
        idle_ms: u64,
        attempts: u32,
    },
    /// Given up by the caller's `Pool::terminate` (never sent by a worker).
    Terminated,
}

impl Outcome {
    /// The error every item of the chunk gets, if the chunk failed as a whole.
    pub(crate) fn chunk_error(&self) -> Option<Error> {
        match self {
            Outcome::Done(_) => None,
            Outcome::Unknown(name) => Some(Error::UnknownFunction {
                name: name.clone(),
                where_: "in the worker",
            }),
            Outcome::Failed(m) => Some(Error::Failed { message: m.clone() }),
            Outcome::Died {
                worker,
                idle_ms,
                attempts,
            } => Some(Error::WorkerDied {
                worker: worker.clone(),
                idle_ms: *idle_ms,
                attempts: *attempts,
            }),
            Outcome::Terminated => Some(Error::Terminated),
        }
    }
}

/// The settings a pool stores for its workers and reapers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) reclaim_after: Duration,
    pub(crate) retries: u32,
}

impl Settings {
    pub(crate) fn load(link: &mut Link, keys: &Keys) -> Result<Settings> {
        let (ms, retries): (Option<u64>, Option<u32>) = link.query(
            &keys.meta,
            redis::cmd("HMGET")
                .arg(&keys.meta)
                .arg("reclaim_ms")
                .arg("retries"),
        )?;
        Ok(Settings {
            reclaim_after: ms.map_or(DEFAULT_RECLAIM_AFTER, Duration::from_millis),
            retries: retries.unwrap_or(0),
        })
    }
}

/// Reclaim up to 32 tasks idle longer than `reclaim_after`: each is re-queued (one
/// attempt more) while it has retries left, else copied to the dead-letter stream and answered
/// `Died`. `XCLAIM` with the same minimum idle time makes each decision once, however
/// many reapers run: the first claim resets the idle time, so later claims get nothing.
/// Returns how many tasks were reclaimed.
pub(crate) fn reap(link: &mut Link, keys: &Keys, s: Settings, reaper: &str) -> Result<usize> {
    let ms = s.reclaim_after.as_millis() as u64;
    let v: redis::Value = link.query(
        &keys.tasks,
        redis::cmd("XPENDING")
            .arg(&keys.tasks)
            .arg(GROUP)
            .arg("IDLE")
            .arg(ms)
            .arg("-")
            .arg("+")
            .arg(32),
    )?;
    let rows = wire::pending_reply(&v).ok_or_else(|| Error::Corrupt {
        stream: keys.tasks.clone(),
        id: "-".to_owned(),
        what: format!("unexpected XPENDING reply shape: {v:?}"),
    })?;
    let mut reclaimed = 0;
    for row in rows {
        let v: redis::Value = link.query(
            &keys.tasks,
            redis::cmd("XCLAIM")
                .arg(&keys.tasks)
                .arg(GROUP)
                .arg(reaper)
                .arg(ms)
                .arg(&row.id),
        )?;
        let Some(entry) = wire::entries(&v).and_then(|mut es| es.pop()) else {
            continue; // claimed by another reaper, or touched by a heartbeat
        };
        settle(link, keys, s, &row, &entry)?;
        reclaimed += 1;
    }
    Ok(reclaimed)
}

fn settle(link: &mut Link, keys: &Keys, s: Settings, row: &wire::Pending, e: &Entry) -> Result<()> {
    let attempt = e.number("n").unwrap_or(1).min(u64::from(u32::MAX)) as u32;
    let mut p = redis::pipe();
    p.atomic();
    if e.fields.is_some() && attempt <= s.retries {
        let mut add = redis::cmd("XADD");
        add.arg(&keys.tasks).arg("*");
        for (k, v) in e.fields.iter().flatten() {
            if k != b"n" {
                add.arg(k).arg(v);
            }
        }
        add.arg("n").arg(attempt + 1);
        p.add_command(add).ignore();
    } else {
        let mut dead = redis::cmd("XADD");
        dead.arg(&keys.dead).arg("*");
        for (k, v) in e.fields.iter().flatten() {
            dead.arg(k).arg(v);
        }
        dead.arg("worker")
            .arg(&row.consumer)
            .arg("idle_ms")
            .arg(row.idle_ms)
            .arg("attempts")
            .arg(attempt)
            .arg("deliveries")
            .arg(row.deliveries)
            .arg("task_id")
            .arg(&e.id);
        p.add_command(dead).ignore();
        if let (Some(reply), Some(seq)) = (e.text("r"), e.number("s"))
            && keys.is_reply(reply)
        {
            let o = Outcome::Died {
                worker: row.consumer.clone(),
                idle_ms: row.idle_ms,
                attempts: attempt,
            };
            let bytes = postcard::to_allocvec(&o).map_err(|err| Error::Encode {
                type_name: "Outcome",
                reason: err.to_string(),
            })?;
            p.cmd("XADD")
                .arg(reply)
                .arg("*")
                .arg("s")
                .arg(seq)
                .arg("o")
                .arg(bytes)
                .ignore();
        }
    }
    p.cmd("XACK")
        .arg(&keys.tasks)
        .arg(GROUP)
        .arg(&e.id)
        .ignore();
    p.cmd("XDEL").arg(&keys.tasks).arg(&e.id).ignore();
    link.pipe::<()>(&keys.tasks, &p)
}
