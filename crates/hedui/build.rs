//! Embed the shipped connector mappings so `hedui demo` works from any directory.

fn main() {
    hedui_build_embed::embed_toml_dir("../../connectors", "connectors.rs", "CONNECTORS");
}
