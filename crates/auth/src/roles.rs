use std::fmt;
use std::str::FromStr;

/// What a person does in the hub. What each role may read is the city's policy (`hedui.toml`),
/// not fixed here; these are the names policies refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the hub: every dataset, unmasked with a purpose.
    Admin,
    /// Writes SQL over shared data, masked.
    Analyst,
    /// Social-security clerk verifying cases of a region.
    Reviewer,
    /// Community dibao reviewer verifying households of a region.
    DibaoReviewer,
    /// A department's system delivering data; reads nothing.
    Connector,
    /// Reads the audit log.
    Auditor,
    /// Aggregates only, small cells suppressed.
    Statistician,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Admin,
        Role::Analyst,
        Role::Reviewer,
        Role::DibaoReviewer,
        Role::Connector,
        Role::Auditor,
        Role::Statistician,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::Reviewer => "reviewer",
            Role::DibaoReviewer => "dibao_reviewer",
            Role::Connector => "connector",
            Role::Auditor => "auditor",
            Role::Statistician => "statistician",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown role `{s}`; the roles are {}",
                    Role::ALL.map(Role::as_str).join(", ")
                )
            })
    }
}

impl<'de> serde::Deserialize<'de> for Role {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Role, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
