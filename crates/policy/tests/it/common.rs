use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type};
use hedui_auth::{Identity, Role};
use hedui_engine::Engine;
use hedui_policy::{AccessConfig, PolicyEngine};
use tokio::sync::OnceCell;

pub struct Fixture {
    _dir: tempfile::TempDir,
    pub policy: PolicyEngine,
}

pub async fn fixture() -> &'static Fixture {
    static F: OnceCell<Fixture> = OnceCell::const_new();
    // The shared fixture's tests ask statisticians many questions: the budget is not what they
    // test (`small_cells.rs` spends one to the end).
    F.get_or_init(|| async {
        build(AccessConfig {
            privacy: hedui_policy::PrivacyConfig {
                budget: 1e9,
                ..Default::default()
            },
            ..Default::default()
        })
        .await
    })
    .await
}

pub async fn build(config: AccessConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let city = dir.path().join("city");
    hedui_synth::generate(
        &hedui_synth::CityConfig {
            persons: 1500,
            seed: 5,
        },
        &city,
    )
    .unwrap();
    let connectors = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../connectors");
    let lake = dir.path().join("lake");
    hedui_ingest::ingest(
        &hedui_ingest::load_mappings(&connectors).unwrap(),
        &hedui_ingest::IngestOptions {
            data_dir: city.join("data"),
            lake_dir: lake.clone(),
            threads: 0,
        },
    )
    .unwrap();
    let engine = Arc::new(Engine::open(&lake).await.unwrap());
    let policy = PolicyEngine::new(
        engine,
        &config,
        b"test-pseudonym-secret-0123456789",
        Some(dir.path().join("audit.log")),
    )
    .unwrap();
    Fixture { _dir: dir, policy }
}

impl Fixture {
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }
}

pub fn who(role: Role, region: Option<&str>) -> Identity {
    Identity {
        subject: format!("{role}-tester"),
        roles: vec![role],
        region: region.map(String::from),
        department: None,
        token_id: "t".into(),
    }
}

/// The district most persons live in, so region tests have rows on both sides.
pub const DISTRICT: &str = "420502";

pub async fn rows(
    f: &Fixture,
    id: &Identity,
    purpose: Option<&str>,
    sql: &str,
) -> hedui_policy::Result<Vec<RecordBatch>> {
    let session = f.policy.session(id, purpose).await?;
    session.run(sql).await.map(|(_, b, _, _)| b)
}

pub fn strings(batches: &[RecordBatch], col: usize) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for b in batches {
        let c = arrow::compute::cast(b.column(col), &DataType::Utf8).unwrap();
        let c = c.as_string::<i32>();
        for i in 0..c.len() {
            out.push(c.is_valid(i).then(|| c.value(i).to_string()));
        }
    }
    out
}

pub fn int(batches: &[RecordBatch]) -> i64 {
    let c = arrow::compute::cast(batches[0].column(0), &DataType::Int64).unwrap();
    c.as_primitive::<Int64Type>().value(0)
}

pub async fn count(f: &Fixture, id: &Identity, purpose: Option<&str>, sql: &str) -> i64 {
    int(&rows(f, id, purpose, sql).await.unwrap())
}
