//! The files of a data directory in the order they are taken, and file names as they may be
//! printed.

use std::path::{Path, PathBuf};

/// The files under the data directory (hidden and Office lock files left out), by name.
pub(crate) fn list_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut files: Vec<(String, PathBuf)> = walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .filter(|e| !e.file_name().to_string_lossy().starts_with(['.', '~']))
        .map(|e| {
            let rel = e.path().strip_prefix(dir).expect("under data dir");
            (
                rel.to_string_lossy().replace('\\', "/"),
                e.path().to_path_buf(),
            )
        })
        .collect();
    files.sort_by_key(|f| copy_last(&f.0));
    files
}

/// Originals before their copies (`名册 - 副本.xlsx`, `名册(1).xlsx`, `copy of …`), so that an
/// identical copy is the one skipped; otherwise by name.
pub(crate) fn copy_last(rel: &str) -> (String, bool, usize, String) {
    let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
    let stem = name
        .rsplit_once('.')
        .map_or(name, |(s, _)| s)
        .to_lowercase();
    let copy = ["副本", "复制", "copy", "拷贝"]
        .iter()
        .any(|w| stem.contains(w))
        || stem.ends_with(')')
            && stem
                .rsplit_once('(')
                .is_some_and(|(_, n)| n[..n.len() - 1].chars().all(|c| c.is_ascii_digit()))
        || stem.ends_with('）');
    (
        dir.to_string(),
        copy,
        name.chars().count(),
        name.to_string(),
    )
}

/// A file name as it may be printed: control characters (a newline, an escape sequence) shown
/// escaped, so a name cannot forge report lines or terminal output.
pub fn printable(name: &str) -> String {
    if !name.chars().any(char::is_control) {
        return name.to_string();
    }
    name.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_sort_after_their_originals() {
        let mut names = [
            "d/名册(1).xlsx",
            "d/名册 - 副本.xlsx",
            "d/名册.xlsx",
            "d/Copy of 名册.xlsx",
        ];
        names.sort_by_key(|n| copy_last(n));
        assert_eq!(names[0], "d/名册.xlsx");
    }
}
