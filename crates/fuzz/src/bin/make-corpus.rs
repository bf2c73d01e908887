//! Writes the seed inputs of every fuzz target (produced by the code
//! itself, see `ruvector_fuzz::seeds`) to `fuzz/corpus/<target>/seed-*`.
//! Run from the repository root after a format change:
//! `cargo run -p ruvector-fuzz --bin make-corpus`.

use std::path::Path;

use ruvector_fuzz::Target;
use ruvector_fuzz::seeds::seeds;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    for target in Target::ALL {
        let dir = root.join(target.name());
        std::fs::create_dir_all(&dir)?;
        for (name, bytes) in seeds(target) {
            std::fs::write(dir.join(format!("seed-{name}")), &bytes)?;
        }
        println!("{}: {} seeds", target.name(), seeds(target).len());
    }
    Ok(())
}
