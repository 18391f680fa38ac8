//! Used by build scripts to embed a directory of TOML files (`schemas/`, `rules/`, `connectors/`)
//! in a crate, so that adding one is adding a file.

use std::path::{Path, PathBuf};
use std::{env, fs};

/// Write `$OUT_DIR/<out_file>` declaring `pub static <static_name>: &[(&str, &str)]`: the name
/// and text of every `*.toml` file directly in `dir` (relative to the crate), sorted by name.
pub fn embed_toml_dir(dir: &str, out_file: &str, static_name: &str) {
    let dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("run from a build script")).join(dir);
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut out = format!("pub static {static_name}: &[(&str, &str)] = &[\n");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .to_string();
        let path = f.canonicalize().expect("canonical path");
        out.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            path.display().to_string()
        ));
    }
    out.push_str("];\n");
    let target = Path::new(&env::var("OUT_DIR").expect("OUT_DIR")).join(out_file);
    fs::write(target, out).expect("write embedded list");
}
