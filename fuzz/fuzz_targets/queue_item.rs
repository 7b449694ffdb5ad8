//! A `Queue` item's ring bytes come from the fuzzer (a peer can write any record):
//! `codec::decode` must refuse or accept exactly what postcard refuses or accepts, give
//! the same value, and never panic — for the byte-buffer fast paths (`Vec<u8>`,
//! `Box<[u8]>`), the numbers written by hand (varints, zigzag, float bits) and the
//! general path alike. Whatever decodes is encoded again through
//! `codec::encode`, which must write postcard's bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use shmkit_ring::codec;
use std::fmt::Debug;

fn check<T>(bytes: &[u8])
where
    T: Serialize + DeserializeOwned + PartialEq + Debug + 'static,
{
    let ours = codec::decode::<T>(bytes);
    let theirs = postcard::from_bytes::<T>(bytes);
    match (&ours, &theirs) {
        // (Debug text too: NaN is not equal to itself.)
        (Ok(a), Ok(b)) => assert!(a == b || format!("{a:?}") == format!("{b:?}")),
        (Err(_), Err(_)) => {}
        _ => panic!("codec {ours:?} but postcard {theirs:?} for {bytes:?}"),
    }
    if let Ok(v) = ours {
        let mut scratch = codec::Scratch::new();
        let e = codec::encode(&v, &mut scratch).expect("a decoded value encodes");
        let mut out = vec![0u8; e.len()];
        e.write(&mut out);
        assert_eq!(out, postcard::to_stdvec(&v).expect("postcard encodes"));
    }
}

fuzz_target!(|data: &[u8]| {
    check::<Vec<u8>>(data);
    check::<Box<[u8]>>(data);
    check::<String>(data);
    check::<Box<str>>(data);
    check::<u64>(data);
    check::<u16>(data);
    check::<u32>(data);
    check::<usize>(data);
    check::<i16>(data);
    check::<i32>(data);
    check::<i64>(data);
    check::<isize>(data);
    check::<f32>(data);
    check::<f64>(data);
    check::<(u32, Vec<u8>, String)>(data);
    check::<Vec<Vec<u8>>>(data);
});
