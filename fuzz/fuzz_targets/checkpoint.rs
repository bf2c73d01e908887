//! cargo-fuzz target `checkpoint`: see `ruvector_fuzz::Target::Checkpoint`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ruvector_fuzz::Target::Checkpoint.check(data);
});
