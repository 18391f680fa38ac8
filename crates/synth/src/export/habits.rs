//! How people and systems in departments spell the same values differently.

use chrono::NaiveDate;
use hedui_model::ResidentId;

use crate::rng::Rng;

fn fullwidth(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                char::from_u32(c as u32 + 0xFEE0).unwrap_or(c)
            } else {
                c
            }
        })
        .collect()
}

/// The ID as a clerk or a system may have written it; each form normalises to the same ID.
pub fn id(rng: &mut Rng, id: &ResidentId, legacy: bool) -> String {
    let s = id.as_str();
    if let Some(old) = id.legacy_15().filter(|_| legacy) {
        return old;
    }
    match rng.below(400) {
        0..=5 => format!("'{s}"),
        6..=9 => format!("{} {} {}", &s[..6], &s[6..14], &s[14..]),
        10..=12 => fullwidth(s),
        13..=18 => format!(" {s} "),
        19..=40 if s.ends_with('X') => s.replace('X', "x"),
        _ => s.to_string(),
    }
}

/// A name with the spaces and dots people type.
pub fn name(rng: &mut Rng, name: &str) -> String {
    if name.contains('·') {
        let dots = ["·", "•", "・", "．", "‧"];
        return name.replace('·', dots[rng.below(dots.len())]);
    }
    match rng.below(300) {
        0..=2 if name.chars().count() == 2 => {
            let mut c = name.chars();
            format!(
                "{}\u{3000}{}",
                c.next().unwrap_or(' '),
                c.next().unwrap_or(' ')
            )
        }
        3..=6 => format!("{name} "),
        _ => name.to_string(),
    }
}

/// A date in one of the forms the department's staff use.
pub fn date(rng: &mut Rng, d: NaiveDate, forms: &[&str]) -> String {
    let form = forms[rng.below(forms.len())];
    match form {
        "cn" => d.format("%Y年%-m月%-d日").to_string(),
        "slash" => d.format("%Y/%-m/%-d").to_string(),
        "dot" => d.format("%Y.%m.%d").to_string(),
        "compact" => d.format("%Y%m%d").to_string(),
        _ => d.format("%Y-%m-%d").to_string(),
    }
}

/// A year-month period in one of the department's forms.
pub fn month(rng: &mut Rng, y: i32, m: u32, forms: &[&str]) -> String {
    match forms[rng.below(forms.len())] {
        "compact" => format!("{y}{m:02}"),
        "cn" => format!("{y}年{m:02}月"),
        _ => format!("{y}-{m:02}"),
    }
}

/// Money as the department writes it.
pub fn money(rng: &mut Rng, cents: i64, thousands: bool) -> String {
    let plain = crate::city::yuan(cents);
    if thousands && cents >= 100_000 && rng.chance(0.5) {
        let (int, frac) = plain.split_once('.').expect("two decimals");
        let mut out = String::new();
        for (i, c) in int.chars().enumerate() {
            if i > 0 && (int.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        return format!("{out}.{frac}");
    }
    if rng.chance(0.1) {
        plain.trim_end_matches(".00").to_string()
    } else {
        plain
    }
}

/// Ways to break a row's ID so that the check always catches it.
pub fn broken_id(id: &ResidentId) -> String {
    let s = id.as_str();
    let last = s.as_bytes()[17];
    let changed = match last {
        b'X' => b'0',
        b'9' => b'X',
        d => d + 1,
    };
    format!("{}{}", &s[..17], changed as char)
}
