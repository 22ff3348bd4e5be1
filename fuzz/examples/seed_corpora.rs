//! Writes seed inputs for every fuzz target under `<dir>/<target>/`
//! (default `fuzz/corpus`, which is git-ignored).
//!
//! Run from the repository root:
//! `cargo run --manifest-path fuzz/Cargo.toml --example seed_corpora [-- DIR]`

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let root = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus"));
    for (target, inputs) in covenant_fuzz::seeds::all() {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        for (i, input) in inputs.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:02}")), input)?;
        }
        eprintln!("{target}: {} seeds in {}", inputs.len(), dir.display());
    }
    Ok(())
}
