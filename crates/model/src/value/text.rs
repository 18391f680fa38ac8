//! Text normalisation: full-width forms, names, free text.

/// Turn full-width ASCII forms (Ｕ+FF01..FF5E) into ASCII and the ideographic space into a space.
pub fn to_halfwidth(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' | '\u{00A0}' => ' ',
            _ => c,
        })
        .collect()
}

/// Characters departments use for the middle dot of ethnic-minority names (买买提·艾力).
const MIDDLE_DOTS: &[char] = &[
    '\u{00B7}', '\u{2022}', '\u{2027}', '\u{2219}', '\u{22C5}', '\u{30FB}', '\u{FF65}', '\u{FF0E}',
    '\u{0387}', '\u{16EB}', '\u{2E31}', '.',
];

/// A person's name as matched and shown: no surrounding or inner spaces (张　三 -> 张三), one
/// middle dot (U+00B7) whatever dot the department typed, full-width Latin letters as ASCII.
pub fn normalise_name(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_whitespace() && *c != '\u{200b}' && *c != '\u{feff}')
        .map(|c| {
            if MIDDLE_DOTS.contains(&c) {
                '\u{00B7}'
            } else {
                c
            }
        })
        .map(|c| match c {
            '\u{FF21}'..='\u{FF3A}' | '\u{FF41}'..='\u{FF5A}' => {
                char::from_u32(c as u32 - 0xFEE0).unwrap_or(c)
            }
            _ => c,
        })
        .collect()
}

/// Free text: trimmed, inner runs of spaces folded to one, full-width ASCII turned half-width.
pub fn normalise_text(raw: &str) -> String {
    let half = to_halfwidth(raw);
    half.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A header cell as matched against a mapping's source names: no spaces, no line breaks, no
/// asterisks that mark required columns, full-width ASCII folded.
pub fn normalise_header(raw: &str) -> String {
    to_halfwidth(raw)
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '*' && *c != '\u{feff}')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_departments_type_them() {
        assert_eq!(normalise_name("  张三 "), "张三");
        assert_eq!(normalise_name("张\u{3000}三"), "张三");
        for dot in ["·", "•", "‧", "・", "･", "．", "."] {
            assert_eq!(
                normalise_name(&format!("买买提{dot}艾力")),
                "买买提·艾力",
                "{dot}"
            );
        }
        assert_eq!(normalise_name("ＬＩ　Ｍｉｎｇ"), "LIMing");
    }

    #[test]
    fn halfwidth_and_headers() {
        assert_eq!(to_halfwidth("１２３ＡＢｃ"), "123ABc");
        assert_eq!(
            normalise_text("  宜昌市\u{3000}西陵区  学院街道 "),
            "宜昌市 西陵区 学院街道"
        );
        assert_eq!(normalise_header(" 身份证\n号码* "), "身份证号码");
        assert_eq!(normalise_header("\u{feff}个人编号"), "个人编号");
    }
}
