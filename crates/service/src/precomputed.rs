//! Person checks answered from memory: once per lake version, every person rule runs over the
//! whole city (seconds at a million persons) and the household registry's regions are indexed,
//! so a check at application time is a lookup instead of five rule queries. Until the index of
//! the version being served is ready, checks run the rules for the one person instead: the
//! answer is the same, only slower.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use hedui_engine::Engine;
use hedui_engine::check::Hit;
use hedui_engine::rules::{RuleSet, SubjectKind};

/// One lake version's person-rule hits and registry regions.
pub struct PersonIndex {
    pub version: u64,
    /// Subject (canonical resident ID) -> hits, in rule order.
    hits: HashMap<String, Vec<Hit>>,
    /// Resident-ID key -> region code (`None`: registered without one).
    registry: HashMap<i64, Option<Box<str>>>,
}

impl PersonIndex {
    pub fn hits(&self, subject: &str) -> &[Hit] {
        self.hits.get(subject).map_or(&[], Vec::as_slice)
    }

    /// Whether the person is registered, and their region.
    pub fn registry(&self, key: i64) -> Option<Option<&str>> {
        self.registry.get(&key).map(|r| r.as_deref())
    }
}

pub struct PersonChecks {
    enabled: bool,
    current: RwLock<Option<Arc<PersonIndex>>>,
    building: std::sync::Mutex<Option<u64>>,
}

impl PersonChecks {
    /// `enabled: false` keeps nothing in memory: every check runs its rules.
    pub fn new(enabled: bool) -> PersonChecks {
        PersonChecks {
            enabled,
            current: RwLock::new(None),
            building: std::sync::Mutex::new(None),
        }
    }

    /// The index of exactly this lake version, if it is ready.
    pub fn for_version(&self, version: u64) -> Option<Arc<PersonIndex>> {
        self.current
            .read()
            .expect("index lock")
            .as_ref()
            .filter(|i| i.version == version)
            .cloned()
    }

    /// Build the index of the engine's version unless it exists or is being built.
    pub async fn refresh(
        &self,
        engine: &Engine,
        rules: &RuleSet,
        params: &std::collections::BTreeMap<String, String>,
    ) {
        let version = engine.snapshot().version();
        if !self.enabled {
            return;
        }
        {
            let mut building = self.building.lock().expect("build lock");
            if *building == Some(version) || self.for_version(version).is_some() {
                return;
            }
            *building = Some(version);
        }
        let started = Instant::now();
        match build(engine, rules, params).await {
            Ok(index) => {
                tracing::info!(
                    lake_version = version,
                    subjects = index.hits.len(),
                    persons = index.registry.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "person checks precomputed"
                );
                *self.current.write().expect("index lock") = Some(Arc::new(index));
            }
            // Checks keep working without it, rule by rule.
            Err(e) => {
                tracing::warn!(lake_version = version, error = %e, "could not precompute person checks")
            }
        }
        *self.building.lock().expect("build lock") = None;
    }
}

async fn build(
    engine: &Engine,
    rules: &RuleSet,
    params: &std::collections::BTreeMap<String, String>,
) -> hedui_engine::Result<PersonIndex> {
    let mut hits: HashMap<String, Vec<Hit>> = HashMap::new();
    for rule in rules.iter().filter(|r| r.subject == SubjectKind::Person) {
        for hit in engine.run_rule(rule, params).await? {
            hits.entry(hit.subject.clone()).or_default().push(hit);
        }
    }
    let (_, batches) = engine
        .query("SELECT person_id_key, region_code FROM persons")
        .await?;
    let mut registry = HashMap::with_capacity(batches.iter().map(|b| b.num_rows()).sum());
    for b in batches {
        let keys = datafusion::arrow::compute::cast(b.column(0), &DataType::Int64)?;
        let keys = keys.as_primitive::<Int64Type>();
        let regions = datafusion::arrow::compute::cast(b.column(1), &DataType::Utf8)?;
        let regions = regions.as_string::<i32>();
        for i in 0..b.num_rows() {
            if keys.is_valid(i) {
                let region = regions.is_valid(i).then(|| Box::from(regions.value(i)));
                registry.insert(keys.value(i), region);
            }
        }
    }
    Ok(PersonIndex {
        version: engine.snapshot().version(),
        hits,
        registry,
    })
}
