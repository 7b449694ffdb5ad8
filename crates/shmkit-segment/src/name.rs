//! Segment names (DESIGN rule 4) and removing one.

use crate::{Error, Result, sys};

/// Longest accepted name, in bytes.
pub const MAX_NAME_LEN: usize = 200;

/// Remove the name `name` from the system (`shm_unlink`), whatever the file holds —
/// for cleaning up after a process that died before it could unlink what it created.
/// Processes that have it mapped keep their mapping. [`Error::NotFound`] if no such name.
///
/// ```
/// let name = format!("shmkit-doc-remove-{}", std::process::id());
/// let mut seg = shmkit_segment::Segment::create(&name, 64)?;
/// seg.set_unlink_on_drop(false);
/// drop(seg);
/// shmkit_segment::remove(&name)?;
/// assert!(matches!(shmkit_segment::remove(&name), Err(shmkit_segment::Error::NotFound { .. })));
/// # Ok::<(), shmkit_segment::Error>(())
/// ```
pub fn remove(name: &str) -> Result<()> {
    validate_name(name)?;
    sys::unlink(name).map_err(|e| Error::from_io(name, "unlink", e, 0))
}

/// Check a segment name against DESIGN rule 4: `[A-Za-z0-9._-]`, 1..=200 bytes, not `.`/`..`.
///
/// ```
/// assert!(shmkit_segment::validate_name("jobs-1.ring").is_ok());
/// assert!(shmkit_segment::validate_name("a/b").is_err());
/// ```
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("it is longer than 200 bytes");
    }
    if name == "." || name == ".." {
        return bad("'.' and '..' are not names");
    }
    match name.bytes().find(|&b| !allowed(b)) {
        None => Ok(()),
        Some(b) => bad(disallowed(b)),
    }
}

fn allowed(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

/// What is wrong with a name holding byte `b` (the first one not allowed): said in
/// words, since the name itself is printed next to it.
fn disallowed(b: u8) -> &'static str {
    match b {
        b'/' => "it contains '/': a name is one file in /dev/shm, not a path",
        b if !b.is_ascii() => {
            "it contains a non-ASCII character (only A-Z a-z 0-9 . _ - are allowed)"
        }
        b if b.is_ascii_whitespace() => {
            "it contains whitespace (only A-Z a-z 0-9 . _ - are allowed)"
        }
        b if b.is_ascii_control() => {
            "it contains a control character (only A-Z a-z 0-9 . _ - are allowed)"
        }
        _ => "it contains punctuation other than . _ - (only A-Z a-z 0-9 . _ - are allowed)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_follow_design_rule_4() {
        for good in [
            "a",
            "jobs",
            "psm_ab12",
            "x.y-z_1",
            &"n".repeat(MAX_NAME_LEN),
        ] {
            assert!(validate_name(good).is_ok(), "{good:?}");
        }
        for bad in [
            "", ".", "..", "a/b", "/abs", "sp ace", "tab\t", "ümlaut", "nul\0",
        ] {
            assert!(
                matches!(validate_name(bad), Err(Error::InvalidName { .. })),
                "{bad:?}"
            );
        }
        let long = "n".repeat(MAX_NAME_LEN + 1);
        let err = validate_name(&long).unwrap_err();
        assert!(err.to_string().contains("longer than 200 bytes"), "{err}");
    }

    /// Issue 15: "ümlaut" was refused with "(no '/')", which says nothing about it.
    #[test]
    fn each_refusal_says_what_is_wrong_with_that_name() {
        let reason = |name: &str| match validate_name(name) {
            Err(Error::InvalidName { reason, .. }) => reason,
            other => panic!("{name:?}: {other:?}"),
        };
        assert!(reason("ümlaut").starts_with("it contains a non-ASCII character"));
        assert!(!reason("ümlaut").contains("'/'"));
        assert!(reason("a/b").starts_with("it contains '/'"));
        assert!(reason("sp ace").starts_with("it contains whitespace"));
        assert!(reason("nul\0").starts_with("it contains a control character"));
        assert!(reason("a:b").starts_with("it contains punctuation other than . _ -"));
        assert_eq!(reason(""), "it is empty");
        let err = validate_name("ümlaut").unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid segment name \"ümlaut\": it contains a non-ASCII character \
             (only A-Z a-z 0-9 . _ - are allowed)"
        );
    }

    proptest! {
        /// validate_name agrees with a one-line model of the rule.
        #[test]
        #[cfg_attr(miri, ignore)] // proptest persists failures to files
        fn name_validation_matches_the_model(name in "[A-Za-z0-9._/ -]{0,210}") {
            let model = (1..=MAX_NAME_LEN).contains(&name.len())
                && name != "." && name != ".."
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_".contains(&b));
            prop_assert_eq!(validate_name(&name).is_ok(), model);
        }
    }
}
