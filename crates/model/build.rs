//! Embed every canonical dataset definition of `schemas/` in the binary.

fn main() {
    hedui_build_embed::embed_toml_dir("../../schemas", "schemas.rs", "SCHEMA_FILES");
}
