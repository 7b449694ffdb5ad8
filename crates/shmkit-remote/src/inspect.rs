//! What is on a server: every remote queue and pool, with its depth, the entries each
//! consumer or worker holds, and its dead letters (for `shmkit ls` / `inspect` given a
//! URL).

use crate::error::{Error, Result};
use crate::link::Link;
use crate::wire;

/// A queue or a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// A [`Queue`](crate::Queue).
    Queue,
    /// A [`Pool`](crate::Pool).
    Pool,
}

/// One remote queue or pool, as [`list`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Queue or pool.
    pub kind: Kind,
    /// Its name.
    pub name: String,
    /// Entries in its stream: items not yet taken (queue) or chunks not yet answered
    /// (pool), including the ones held below.
    pub depth: u64,
    /// Entries read and not yet acknowledged, per consumer (queue handle or worker),
    /// most first.
    pub pending: Vec<(String, u64)>,
    /// Entries in its dead-letter stream.
    pub dead_letters: u64,
}

/// Every queue and pool on the server at `url`, sorted by kind and name.
pub fn list(url: &str) -> Result<Vec<Summary>> {
    let mut link = Link::connect(url)?;
    let mut out = Vec::new();
    for (kind, prefix, group, stream_suffix) in [
        (Kind::Queue, "shmkit:queue:", "q", ""),
        (Kind::Pool, "shmkit:pool:", "workers", ":tasks"),
    ] {
        let mut cursor = 0u64;
        let mut names = Vec::new();
        loop {
            let (next, keys): (u64, Vec<String>) = link.query(
                prefix,
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(format!("{prefix}*:meta"))
                    .arg("COUNT")
                    .arg(500),
            )?;
            names.extend(keys.iter().filter_map(|k| {
                let name = k.strip_prefix(prefix)?.strip_suffix(":meta")?;
                (!name.contains(':')).then(|| name.to_owned())
            }));
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        names.sort();
        names.dedup();
        for name in names {
            let stream = format!("{prefix}{name}{stream_suffix}");
            let dead = format!("{prefix}{name}:dead");
            out.push(summarize(&mut link, kind, name, &stream, group, &dead)?);
        }
    }
    Ok(out)
}

/// The queue or pool `name` on the server at `url`.
pub fn inspect(url: &str, kind: Kind, name: &str) -> Result<Summary> {
    let mut link = Link::connect(url)?;
    let (prefix, group, suffix) = match kind {
        Kind::Queue => ("shmkit:queue:", "q", ""),
        Kind::Pool => ("shmkit:pool:", "workers", ":tasks"),
    };
    let stream = format!("{prefix}{name}{suffix}");
    let dead = format!("{prefix}{name}:dead");
    summarize(&mut link, kind, name.to_owned(), &stream, group, &dead)
}

fn summarize(
    link: &mut Link,
    kind: Kind,
    name: String,
    stream: &str,
    group: &str,
    dead: &str,
) -> Result<Summary> {
    let mut p = redis::pipe();
    p.cmd("XLEN").arg(stream).cmd("XLEN").arg(dead);
    let (depth, dead_letters): (u64, u64) = link.pipe(stream, &p)?;
    let pending = if depth == 0 {
        Vec::new()
    } else {
        match link.query::<redis::Value>(stream, redis::cmd("XPENDING").arg(stream).arg(group)) {
            // [count, min id, max id, [[consumer, count], ...]]
            Ok(v) => {
                let rows = wire::array(&v).and_then(|a| a.get(3)).and_then(wire::array);
                let mut per: Vec<(String, u64)> = rows
                    .unwrap_or(&[])
                    .iter()
                    .filter_map(|r| {
                        let r = wire::array(r)?;
                        Some((wire::text(r.first()?)?, wire::int(r.get(1)?)?.max(0) as u64))
                    })
                    .collect();
                per.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                per
            }
            Err(Error::Server { reason, .. }) if reason.contains("NOGROUP") => Vec::new(),
            Err(e) => return Err(e),
        }
    };
    Ok(Summary {
        kind,
        name,
        depth,
        pending,
        dead_letters,
    })
}
