//! Rule parameters: typed values a city sets, rendered into SQL as literals (never spliced text).

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    Int,
    /// Yuan, up to two decimals.
    Money,
    /// A calendar month, YYYY-MM.
    Month,
    /// Comma-separated codes.
    TextList,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ParamDef {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ParamType,
    pub default: String,
    #[serde(default)]
    pub description: String,
}

impl ParamDef {
    /// The SQL literal for a value of this parameter.
    pub fn render(&self, raw: &str) -> Result<String, String> {
        let raw = raw.trim();
        match self.ty {
            ParamType::Int => raw
                .parse::<i64>()
                .map(|v| v.to_string())
                .map_err(|_| "not a whole number".into()),
            ParamType::Money => {
                let money = hedui_model::Money::parse(raw).map_err(|e| e.message)?;
                Ok(format!("CAST('{money}' AS DECIMAL(18, 2))"))
            }
            ParamType::Month => {
                let d = hedui_model::value::date::parse_month(raw).map_err(|e| e.message)?;
                Ok(format!("DATE '{}'", d.format("%Y-%m-%d")))
            }
            ParamType::TextList => {
                let items: Vec<&str> = raw
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect();
                if items.is_empty() {
                    return Err("an empty list".into());
                }
                if let Some(bad) = items.iter().find(|s| {
                    !s.chars()
                        .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
                }) {
                    return Err(format!("`{bad}` is not a code (letters, digits, `_`, `-`)"));
                }
                Ok(items
                    .iter()
                    .map(|s| format!("'{s}'"))
                    .collect::<Vec<_>>()
                    .join(", "))
            }
        }
    }
}

/// The `{{name}}` placeholders of a SQL text.
pub fn placeholders(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = sql;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                out.push(after[..end].trim().to_string());
                rest = &after[end + 2..];
            }
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(ty: ParamType) -> ParamDef {
        ParamDef {
            name: "x".into(),
            ty,
            default: String::new(),
            description: String::new(),
        }
    }

    #[test]
    fn values_become_literals_or_errors() {
        assert_eq!(p(ParamType::Int).render(" 3 ").unwrap(), "3");
        assert!(p(ParamType::Int).render("3; DROP TABLE x").is_err());
        assert_eq!(
            p(ParamType::Money).render("800").unwrap(),
            "CAST('800.00' AS DECIMAL(18, 2))"
        );
        assert_eq!(
            p(ParamType::Money).render("1,234.5").unwrap(),
            "CAST('1234.50' AS DECIMAL(18, 2))"
        );
        assert_eq!(
            p(ParamType::Month).render("2025-03").unwrap(),
            "DATE '2025-03-01'"
        );
        assert_eq!(
            p(ParamType::TextList)
                .render("passenger_car, truck")
                .unwrap(),
            "'passenger_car', 'truck'"
        );
        assert!(p(ParamType::TextList).render("car') OR ('1'='1").is_err());
        assert_eq!(placeholders("a {{x}} b {{ y }}"), vec!["x", "y"]);
    }
}
