//! Administrative division codes (GB/T 2260): just enough to check the shape of an address code.

/// Two-digit province-level codes in use since 1999 (71 Taiwan, 81 Hong Kong, 82 Macao included:
/// numbers with these prefixes are issued and appear in registries).
const PROVINCES: &[u8] = &[
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52,
    53, 54, 61, 62, 63, 64, 65, 71, 81, 82,
];

/// True when `code` is six ASCII digits with a known province prefix.
pub fn is_valid_address_code(code: &str) -> bool {
    let b = code.as_bytes();
    if b.len() != 6 || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let province = (b[0] - b'0') * 10 + (b[1] - b'0');
    PROVINCES.contains(&province)
}

/// The county-level divisions of the city (宜昌市, GB/T 2260) by code, name and the names and codes
/// they had before (宜昌县 became 夷陵区 in 2001, 枝城市 became 宜都市 in 1998): departments write a
/// place as a code, a full name (`湖北省宜昌市夷陵区`), a short one (`夷陵区`, `夷陵`) or an old one.
const REGIONS: &[(&str, &str, &[&str])] = &[
    ("420500", "宜昌市", &[]),
    ("420502", "西陵区", &[]),
    ("420503", "伍家岗区", &[]),
    ("420504", "点军区", &[]),
    ("420505", "猇亭区", &[]),
    ("420506", "夷陵区", &["宜昌县", "420521"]),
    ("420525", "远安县", &[]),
    ("420526", "兴山县", &[]),
    ("420527", "秭归县", &[]),
    ("420528", "长阳土家族自治县", &["长阳县", "长阳"]),
    ("420529", "五峰土家族自治县", &["五峰县", "五峰"]),
    ("420581", "宜都市", &["枝城市", "420520"]),
    ("420582", "当阳市", &[]),
    ("420583", "枝江市", &[]),
];

/// The region code a department means by `text`: a valid code (a retired one becomes today's),
/// or a name of the region table. `None` when neither.
pub fn code_of(text: &str) -> Option<String> {
    let t: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if t.bytes().all(|b| b.is_ascii_digit()) {
        let renamed = REGIONS.iter().find(|(_, _, old)| old.contains(&t.as_str()));
        return match renamed {
            Some((code, _, _)) => Some((*code).to_string()),
            None => is_valid_address_code(&t).then_some(t),
        };
    }
    let mut rest = t.as_str();
    for prefix in ["湖北省", "湖北"] {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    if rest == "宜昌市" || rest == "宜昌" {
        return Some("420500".into());
    }
    rest = rest.strip_prefix("宜昌市").unwrap_or(rest);
    REGIONS.iter().find_map(|(code, name, old)| {
        let short = name.trim_end_matches(['区', '县', '市']);
        let matches =
            rest == *name || (short.chars().count() >= 2 && rest == short) || old.contains(&rest);
        matches.then(|| (*code).to_string())
    })
}

/// The name of a region code of the city, if the table has it.
pub fn name_of(code: &str) -> Option<&'static str> {
    REGIONS
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, n, _)| *n)
}

/// The prefixes of an address code at each level: province (2), prefecture (4), county (6).
pub fn levels(code: &str) -> (&str, &str, &str) {
    (&code[..2], &code[..4], &code[..6])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_codes_and_rejects_shapes() {
        assert!(is_valid_address_code("420502"));
        assert!(is_valid_address_code("110105"));
        assert!(!is_valid_address_code("990502"), "no province 99");
        assert!(!is_valid_address_code("42050"), "too short");
        assert!(!is_valid_address_code("42a502"));
        assert_eq!(levels("420502"), ("42", "4205", "420502"));
    }

    #[test]
    fn places_are_read_as_codes_through_the_region_table() {
        for text in [
            "420506",
            "宜昌市夷陵区",
            "湖北省宜昌市夷陵区",
            "夷陵区",
            "夷陵",
            "宜昌县",
            "420521",
            " 夷陵区 ",
        ] {
            assert_eq!(code_of(text).as_deref(), Some("420506"), "{text}");
        }
        assert_eq!(code_of("枝城市").as_deref(), Some("420581"));
        assert_eq!(code_of("长阳土家族自治县").as_deref(), Some("420528"));
        assert_eq!(
            code_of("110105").as_deref(),
            Some("110105"),
            "codes of elsewhere stay"
        );
        assert_eq!(code_of("火星"), None);
        assert_eq!(name_of("420582"), Some("当阳市"));
    }
}
