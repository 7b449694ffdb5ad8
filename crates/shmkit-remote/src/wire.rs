//! Reading the server's stream replies. Replies come from a server other programs also
//! write to, so every shape is checked and a surprise is an error, never a panic.

use redis::Value;

/// One stream entry: its id and its field/value pairs (`None`: the entry was deleted
/// while it was pending, as `XCLAIM`/`XAUTOCLAIM`/`XREADGROUP 0` report it).
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) id: String,
    pub(crate) fields: Option<Vec<(Vec<u8>, Vec<u8>)>>,
}

impl Entry {
    /// The value of field `name`.
    pub(crate) fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .as_ref()?
            .iter()
            .find(|(k, _)| k == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    }

    /// The value of field `name` as UTF-8 text.
    pub(crate) fn text(&self, name: &str) -> Option<&str> {
        std::str::from_utf8(self.field(name)?).ok()
    }

    /// The value of field `name` as a decimal number.
    pub(crate) fn number(&self, name: &str) -> Option<u64> {
        self.text(name)?.parse().ok()
    }
}

fn bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.clone().into_bytes()),
        Value::Okay => Some(b"OK".to_vec()),
        Value::Int(i) => Some(i.to_string().into_bytes()),
        _ => None,
    }
}

pub(crate) fn text(v: &Value) -> Option<String> {
    String::from_utf8(bytes(v)?).ok()
}

pub(crate) fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        other => text(other)?.parse().ok(),
    }
}

pub(crate) fn array(v: &Value) -> Option<&[Value]> {
    match v {
        Value::Array(a) | Value::Set(a) => Some(a),
        _ => None,
    }
}

/// `[id, [field, value, ...]]` (or `[id, nil]` for a deleted entry).
fn entry(v: &Value) -> Option<Entry> {
    let a = array(v)?;
    let [id, fields] = a else { return None };
    let id = text(id)?;
    let fields = match fields {
        Value::Nil => None,
        f => {
            let flat = array(f)?;
            if flat.len() % 2 != 0 {
                return None;
            }
            Some(
                flat.chunks(2)
                    .map(|p| Some((bytes(&p[0])?, bytes(&p[1])?)))
                    .collect::<Option<Vec<_>>>()?,
            )
        }
    };
    Some(Entry { id, fields })
}

/// A list of entries (`XRANGE`, `XCLAIM`).
pub(crate) fn entries(v: &Value) -> Option<Vec<Entry>> {
    match v {
        Value::Nil => Some(Vec::new()),
        v => array(v)?.iter().map(entry).collect(),
    }
}

/// `XREAD`/`XREADGROUP` of one stream: nil, or `[[key, [entries]]]` (RESP3: a map).
pub(crate) fn read_reply(v: &Value) -> Option<Vec<Entry>> {
    match v {
        Value::Nil => Some(Vec::new()),
        Value::Map(m) => match m.as_slice() {
            [] => Some(Vec::new()),
            [(_, es)] => entries(es),
            _ => None,
        },
        v => match array(v)? {
            [] => Some(Vec::new()),
            [one] => {
                let kv = array(one)?;
                let [_, es] = kv else { return None };
                entries(es)
            }
            _ => None,
        },
    }
}

/// `XAUTOCLAIM`: `[cursor, [entries], [deleted ids]]`.
pub(crate) fn autoclaim_reply(v: &Value) -> Option<Vec<Entry>> {
    let a = array(v)?;
    entries(a.get(1)?)
}

/// One row of `XPENDING key group [IDLE ms] start end count`.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub(crate) id: String,
    pub(crate) consumer: String,
    pub(crate) idle_ms: u64,
    pub(crate) deliveries: u64,
}

pub(crate) fn pending_reply(v: &Value) -> Option<Vec<Pending>> {
    array(v)?
        .iter()
        .map(|row| {
            let r = array(row)?;
            let [id, consumer, idle, n] = r else {
                return None;
            };
            Some(Pending {
                id: text(id)?,
                consumer: text(consumer)?,
                idle_ms: int(idle)?.max(0) as u64,
                deliveries: int(n)?.max(0) as u64,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn read_replies_parse_and_odd_shapes_are_none() {
        let ok = Value::Array(vec![Value::Array(vec![
            b("k"),
            Value::Array(vec![Value::Array(vec![
                b("1-0"),
                Value::Array(vec![b("d"), b("x")]),
            ])]),
        ])]);
        let es = read_reply(&ok).unwrap();
        assert_eq!(es[0].id, "1-0");
        assert_eq!(es[0].field("d"), Some(&b"x"[..]));
        assert!(read_reply(&Value::Nil).unwrap().is_empty());
        assert!(read_reply(&Value::Int(3)).is_none());
        let odd = Value::Array(vec![Value::Array(vec![
            b("k"),
            Value::Array(vec![Value::Array(vec![
                b("1-0"),
                Value::Array(vec![b("d")]),
            ])]),
        ])]);
        assert!(read_reply(&odd).is_none(), "odd field list");
    }
}
