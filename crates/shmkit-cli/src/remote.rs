//! `shmkit ls --url URL` and `shmkit inspect NAME --url URL`: remote queues and pools on
//! a Redis server (shmkit-remote), with depth, entries held per consumer, dead letters.

use shmkit_remote::inspect::{self, Kind, Summary};

fn kind(k: Kind) -> &'static str {
    match k {
        Kind::Queue => "queue",
        _ => "pool",
    }
}

fn to_json(s: &Summary) -> serde_json::Value {
    serde_json::json!({
        "kind": kind(s.kind),
        "name": s.name,
        "depth": s.depth,
        "pending": s.pending.iter().map(|(c, n)| serde_json::json!({"consumer": c, "entries": n})).collect::<Vec<_>>(),
        "dead_letters": s.dead_letters,
    })
}

/// Every remote queue and pool on the server.
pub(crate) fn ls(url: &str, json: bool) -> Result<(), String> {
    let all = inspect::list(url).map_err(|e| e.to_string())?;
    if json {
        let v: Vec<_> = all.iter().map(to_json).collect();
        println!("{}", serde_json::Value::Array(v));
        return Ok(());
    }
    println!(
        "{:<6} {:<32} {:>8} {:>8} {:>6}",
        "KIND", "NAME", "DEPTH", "PENDING", "DEAD"
    );
    for s in &all {
        let pending: u64 = s.pending.iter().map(|p| p.1).sum();
        println!(
            "{:<6} {:<32} {:>8} {:>8} {:>6}",
            kind(s.kind),
            s.name,
            s.depth,
            pending,
            s.dead_letters
        );
    }
    Ok(())
}

/// One remote queue or pool (a queue if both exist under the name).
pub(crate) fn show(url: &str, name: &str, json: bool) -> Result<(), String> {
    let all = inspect::list(url).map_err(|e| e.to_string())?;
    let s = all
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| format!("no remote queue or pool named {name:?} at that URL"))?;
    if json {
        println!("{}", to_json(s));
        return Ok(());
    }
    println!("{} {}", kind(s.kind), s.name);
    println!("  depth:        {}", s.depth);
    println!("  dead letters: {}", s.dead_letters);
    if s.pending.is_empty() {
        println!("  pending:      none");
    }
    for (consumer, n) in &s.pending {
        println!("  pending:      {n} held by {consumer}");
    }
    Ok(())
}
