//! cargo-fuzz target `index_snapshot`: see `ruvector_fuzz::Target::IndexSnapshot`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ruvector_fuzz::Target::IndexSnapshot.check(data);
});
