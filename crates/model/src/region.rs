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
}
