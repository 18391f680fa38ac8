//! Embed the built-in rule packs of `rules/`: they ship in the binary.

fn main() {
    hedui_build_embed::embed_toml_dir("../../rules", "rules.rs", "RULE_FILES");
}
