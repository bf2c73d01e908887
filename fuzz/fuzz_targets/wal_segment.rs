//! cargo-fuzz target `wal_segment`: see `ruvector_fuzz::Target::WalSegment`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ruvector_fuzz::Target::WalSegment.check(data);
});
