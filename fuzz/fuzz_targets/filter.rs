//! cargo-fuzz target `filter`: see `ruvector_fuzz::Target::Filter`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ruvector_fuzz::Target::Filter.check(data);
});
