//! cargo-fuzz target `request_json`: see `ruvector_fuzz::Target::RequestJson`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ruvector_fuzz::Target::RequestJson.check(data);
});
