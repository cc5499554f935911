//! Arbitrary bodies into the Instagram connector's `handle_webhook`: an error or
//! well-formed events, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nexiom_fuzz::{INSTAGRAM, check_normalizer};

fuzz_target!(|body: &[u8]| check_normalizer(&*INSTAGRAM, body));
