//! One connection to the server, reopened on the call after it broke.
//!
//! Every error the `redis` client reports is sorted here into the crate's typed errors,
//! so the rest of the crate never sees a `RedisError`.

use crate::error::{Error, Result};
use redis::{Client, Connection, ErrorKind, RedisError};
use std::time::{Duration, Instant};

/// How long connecting may take before it is [`Error::Connect`].
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A reply slower than this (beyond a blocking command's own wait) counts as a lost
/// connection, so a server that hangs never hangs the caller.
pub(crate) const REPLY_GRACE: Duration = Duration::from_secs(10);

/// `url` with its password replaced by `***`, for messages.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some((a, h)) => (a, h),
        None => return url.to_owned(),
    };
    match auth.split_once(':') {
        Some((user, _pw)) => format!("{scheme}://{user}:***@{host}"),
        None => format!("{scheme}://***@{host}"),
    }
}

/// A connection that reconnects on the next call after a failure.
pub(crate) struct Link {
    client: Client,
    url: String,
    conn: Option<Connection>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("url", &self.url)
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

impl Link {
    /// Parse `url` and connect now, so a wrong URL, a server that is down or a wrong
    /// password is an error here and not at the first call.
    pub(crate) fn connect(url: &str) -> Result<Link> {
        let shown = redact(url);
        let client = Client::open(url).map_err(|e| Error::InvalidUrl {
            url: shown.clone(),
            reason: e.to_string(),
        })?;
        let mut link = Link {
            client,
            url: shown,
            conn: None,
        };
        link.conn()?;
        Ok(link)
    }

    /// Another connection to the same server.
    pub(crate) fn try_clone(&self) -> Result<Link> {
        let mut link = Link {
            client: self.client.clone(),
            url: self.url.clone(),
            conn: None,
        };
        link.conn()?;
        Ok(link)
    }

    fn conn(&mut self) -> Result<&mut Connection> {
        if self.conn.is_none() {
            let c = self
                .client
                .get_connection_with_timeout(CONNECT_TIMEOUT)
                .map_err(|e| self.classify_connect(e))?;
            self.conn = Some(c);
        }
        // Just filled above when it was empty.
        Ok(self.conn.as_mut().expect("connected above"))
    }

    fn classify_connect(&self, e: RedisError) -> Error {
        let reason = e.to_string();
        let auth = e.kind() == ErrorKind::AuthenticationFailed
            || e.code().is_some_and(|c| c == "WRONGPASS" || c == "NOAUTH")
            || reason.contains("WRONGPASS")
            || reason.contains("NOAUTH");
        if auth {
            Error::Auth {
                url: self.url.clone(),
                reason,
            }
        } else if e.kind() == ErrorKind::InvalidClientConfig {
            Error::InvalidUrl {
                url: self.url.clone(),
                reason,
            }
        } else {
            Error::Connect {
                url: self.url.clone(),
                reason,
            }
        }
    }

    /// Sort an error of a call on `key`; drop the connection if it is no longer usable.
    fn classify(&mut self, e: RedisError, key: &str) -> Error {
        let reason = e.to_string();
        // A server that restarts answers `LOADING` until its data set is back in memory:
        // as transient as a refused connection, and retried the same way.
        let loading = e.kind() == ErrorKind::Server(redis::ServerErrorKind::BusyLoading)
            || e.code() == Some("LOADING")
            || reason.contains("BusyLoading")
            || reason.contains("LOADING");
        if loading
            || e.is_io_error()
            || e.is_connection_dropped()
            || e.is_timeout()
            || e.is_unrecoverable_error()
        {
            self.conn = None;
            return Error::ConnectionLost {
                url: self.url.clone(),
                reason,
            };
        }
        if e.kind() == ErrorKind::AuthenticationFailed {
            self.conn = None;
            return Error::Auth {
                url: self.url.clone(),
                reason,
            };
        }
        Error::Server {
            url: self.url.clone(),
            key: key.to_owned(),
            reason,
        }
    }

    /// Run `f` on the connection, with replies allowed to take `wait` plus a grace
    /// period (`wait` is a blocking command's own `BLOCK` time).
    pub(crate) fn run<T>(
        &mut self,
        key: &str,
        wait: Duration,
        f: impl FnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T> {
        let c = self.conn()?;
        if let Err(e) = c.set_read_timeout(Some(wait + REPLY_GRACE)) {
            return Err(self.classify(e, key));
        }
        match f(c) {
            Ok(v) => Ok(v),
            Err(e) => Err(self.classify(e, key)),
        }
    }

    /// [`run`](Self::run) for a quick command.
    pub(crate) fn query<T: redis::FromRedisValue>(
        &mut self,
        key: &str,
        cmd: &redis::Cmd,
    ) -> Result<T> {
        self.run(key, Duration::ZERO, |c| cmd.query(c))
    }

    /// [`run`](Self::run) for a pipeline.
    pub(crate) fn pipe<T: redis::FromRedisValue>(
        &mut self,
        key: &str,
        p: &redis::Pipeline,
    ) -> Result<T> {
        self.run(key, Duration::ZERO, |c| p.query(c))
    }

    /// Run `f`, and while it fails with a connection error, reconnect and run it again,
    /// until `give_up`: for the long waits of a pool (a map across a server restart).
    pub(crate) fn persist<T>(
        &mut self,
        give_up: Instant,
        mut f: impl FnMut(&mut Link) -> Result<T>,
    ) -> Result<T> {
        let mut pause = Duration::from_millis(20);
        loop {
            match f(self) {
                Err(e) if e.is_connection_error() && Instant::now() < give_up => {
                    std::thread::sleep(
                        pause.min(give_up.saturating_duration_since(Instant::now())),
                    );
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                r => return r,
            }
        }
    }
}

/// Check a queue or pool name: `[A-Za-z0-9._-]`, 1..=200 bytes (DESIGN rule 4).
pub(crate) fn check_name(name: &str) -> Result<()> {
    let ok = (1..=200).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName {
            name: name.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("redis://u:secret@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(redact("redis://:secret@h"), "redis://:***@h");
        assert_eq!(redact("redis://h:6379"), "redis://h:6379");
        assert_eq!(redact("nonsense"), "nonsense");
    }

    /// A restarted server answers `LOADING` while it reads its append-only file; that
    /// must be retried like a lost connection (it once failed a worker mid-map in
    /// `server_killed_and_restarted_mid_map`), while other server errors are not.
    #[test]
    fn loading_is_a_transient_error() {
        let mut link = Link {
            client: Client::open("redis://127.0.0.1:1").unwrap(),
            url: "redis://127.0.0.1:1".to_owned(),
            conn: None,
        };
        let loading = RedisError::from((
            ErrorKind::Server(redis::ServerErrorKind::BusyLoading),
            "LOADING Redis is loading the dataset in memory",
        ));
        assert!(link.classify(loading, "k").is_connection_error());
        let other = RedisError::from((ErrorKind::Server(redis::ServerErrorKind::NoPerm), "NOPERM"));
        assert!(matches!(link.classify(other, "k"), Error::Server { .. }));
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("jobs-1.a_b").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name(&"x".repeat(201)).is_err());
    }
}
