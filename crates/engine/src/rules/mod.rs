//! Rule packs: each rule is SQL over the canonical datasets plus metadata (rules.md gives the
//! meaning). Built-in rules ship in the binary; a city adds or overrides rules from a directory.
//! Every rule is checked (metadata, parameters, SQL planned against the catalog) before any runs.

mod params;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use params::{ParamDef, ParamType};

use crate::{Error, Result};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/rules.rs"));
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// The subject is a canonical 18-character resident ID.
    Person,
    /// The subject is a dibao household number.
    Household,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlSection {
    query: String,
}

/// A named query a rule defines for its own SQL and for other readers of the same definition
/// (household verification reads R5's `member_income` and `member_assets`).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleView {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub query: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    id: String,
    version: u32,
    title_zh: String,
    title_en: String,
    subject: SubjectKind,
    legal_basis: String,
    #[serde(default)]
    description: String,
    /// The role whose reviewers work this rule's cases (default: `reviewer`).
    #[serde(default = "default_reviewer_role")]
    reviewer_role: String,
    #[serde(default, rename = "parameter")]
    parameters: Vec<ParamDef>,
    #[serde(default, rename = "view")]
    views: Vec<RuleView>,
    sql: SqlSection,
}

fn default_reviewer_role() -> String {
    "reviewer".into()
}

/// A checked rule.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RuleDef {
    pub id: String,
    pub version: u32,
    pub title_zh: String,
    pub title_en: String,
    pub subject: SubjectKind,
    pub legal_basis: String,
    pub description: String,
    pub parameters: Vec<ParamDef>,
    /// The role whose reviewers work this rule's cases: social-security clerks (`reviewer`) or
    /// civil-affairs dibao reviewers (`dibao_reviewer`).
    pub reviewer_role: String,
    /// Named queries the SQL (and other readers) can use as tables.
    pub views: Vec<RuleView>,
    pub sql: String,
    /// Where the rule came from: `builtin:<file>` or the city's file path.
    pub origin: String,
}

impl RuleDef {
    fn parse(origin: &str, text: &str) -> Result<RuleDef> {
        let bad = |message: String| Error::Rule {
            origin: origin.to_string(),
            message,
        };
        let f: RuleFile = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        if f.id.is_empty()
            || !f
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(bad(format!(
                "rule id `{}` must be letters, digits, `_` or `-`",
                f.id
            )));
        }
        for p in &f.parameters {
            p.render(&p.default)
                .map_err(|m| bad(format!("default of parameter `{}`: {m}", p.name)))?;
        }
        for v in &f.views {
            if v.name.is_empty()
                || !v
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(bad(format!(
                    "view name `{}` must be letters, digits or `_`",
                    v.name
                )));
            }
        }
        let all_sql =
            std::iter::once(f.sql.query.as_str()).chain(f.views.iter().map(|v| v.query.as_str()));
        for name in all_sql.flat_map(params::placeholders) {
            if !f.parameters.iter().any(|p| p.name == name) {
                return Err(bad(format!(
                    "the SQL uses `{{{{{name}}}}}`, which is not a declared parameter"
                )));
            }
        }
        Ok(RuleDef {
            id: f.id,
            version: f.version,
            title_zh: f.title_zh,
            title_en: f.title_en,
            subject: f.subject,
            legal_basis: f.legal_basis,
            description: f.description,
            parameters: f.parameters,
            reviewer_role: f.reviewer_role,
            views: f.views,
            sql: f.sql.query,
            origin: origin.to_string(),
        })
    }

    /// The SQL with parameters filled in: the city's value where it set one, else the default.
    pub fn render(&self, values: &BTreeMap<String, String>) -> Result<String> {
        self.render_over(&self.sql, values)
    }

    /// `select` (a query over the rule's views) with the views defined before it and the
    /// parameters filled in: how another reader uses the rule's own definitions.
    pub fn render_select(&self, select: &str, values: &BTreeMap<String, String>) -> Result<String> {
        self.render_over(select, values)
    }

    fn render_over(&self, body: &str, values: &BTreeMap<String, String>) -> Result<String> {
        let mut sql = if self.views.is_empty() {
            body.to_string()
        } else {
            let views: Vec<String> = self
                .views
                .iter()
                .map(|v| format!("{} AS (\n{}\n)", v.name, v.query.trim()))
                .collect();
            let trimmed = body.trim_start();
            let has_with = trimmed
                .get(..4)
                .is_some_and(|w| w.eq_ignore_ascii_case("with"))
                && trimmed[4..].starts_with(char::is_whitespace);
            if has_with {
                format!("WITH {},\n{}", views.join(",\n"), trimmed[4..].trim_start())
            } else {
                format!("WITH {}\n{trimmed}", views.join(",\n"))
            }
        };
        for p in &self.parameters {
            let raw = values.get(&p.name).unwrap_or(&p.default);
            let literal = p.render(raw).map_err(|m| Error::Rule {
                origin: self.origin.clone(),
                message: format!("parameter `{}` = `{raw}`: {m}", p.name),
            })?;
            sql = sql.replace(&format!("{{{{{}}}}}", p.name), &literal);
        }
        Ok(sql)
    }

    /// The parameter values a run uses (defaults filled in), for the record.
    pub fn effective(&self, values: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        self.parameters
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    values.get(&p.name).unwrap_or(&p.default).clone(),
                )
            })
            .collect()
    }
}

/// The rules a city runs, by id.
#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: BTreeMap<String, RuleDef>,
}

impl RuleSet {
    /// R1-R7 as shipped.
    pub fn builtin() -> Result<RuleSet> {
        let mut rules = BTreeMap::new();
        for (file, text) in embedded::RULE_FILES {
            let rule = RuleDef::parse(&format!("builtin:{file}"), text)?;
            rules.insert(rule.id.clone(), rule);
        }
        Ok(RuleSet { rules })
    }

    /// Add the rules of a city's directory; a rule with a built-in id replaces it.
    pub fn with_dir(mut self, dir: &Path) -> Result<RuleSet> {
        let entries = std::fs::read_dir(dir).map_err(|e| Error::Rule {
            origin: dir.display().to_string(),
            message: format!("cannot read the rules directory: {e}"),
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|e| Error::Rule {
                origin: file.display().to_string(),
                message: e.to_string(),
            })?;
            let rule = RuleDef::parse(&file.display().to_string(), &text)?;
            if let Some(old) = self.rules.get(&rule.id) {
                tracing::info!(rule = %rule.id, replaces = %old.origin, by = %rule.origin, "city rule overrides a built-in one");
            }
            self.rules.insert(rule.id.clone(), rule);
        }
        Ok(self)
    }

    /// Keep only the named rules; an unknown id is an error.
    pub fn select(&self, ids: &[String]) -> Result<Vec<&RuleDef>> {
        if ids.is_empty() {
            return Ok(self.rules.values().collect());
        }
        ids.iter()
            .map(|id| {
                self.rules.get(id).ok_or_else(|| {
                    Error::Query(format!(
                        "no rule `{id}`; the rules are: {}",
                        self.rules.keys().cloned().collect::<Vec<_>>().join(", ")
                    ))
                })
            })
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &RuleDef> {
        self.rules.values()
    }

    /// Parameter values set by the city must name a parameter some rule declares.
    pub fn check_values(&self, values: &BTreeMap<String, String>) -> Result<()> {
        for name in values.keys() {
            if !self
                .rules
                .values()
                .any(|r| r.parameters.iter().any(|p| &p.name == name))
            {
                return Err(Error::Rule {
                    origin: "configuration".into(),
                    message: format!("unknown rule parameter `{name}`"),
                });
            }
        }
        Ok(())
    }
}
