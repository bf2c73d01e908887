//! cargo-fuzz target `wal_records`: see `ruvector_fuzz::Target::WalRecords`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ruvector_fuzz::Target::WalRecords.check(data);
});
