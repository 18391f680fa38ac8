//! `hedui publish`: the local lake copied to object storage, where a cluster reads it.

use std::path::Path;
use std::process::ExitCode;

use hedui_lake::RemoteLake;

use crate::error::{Error, Result};

pub async fn run(lake: &Path, to: &str) -> Result<ExitCode> {
    if hedui_lake::object_store_url(lake).is_some() || !crate::config::lake_exists(lake) {
        return Err(Error::NoLake(lake.to_path_buf()));
    }
    if hedui_lake::object_store_url(Path::new(to)).is_none() {
        return Err(Error::Usage(format!(
            "--to `{to}` is not an object storage URL like s3://bucket/prefix"
        )));
    }
    let remote = RemoteLake::from_env(to)?;
    let started = std::time::Instant::now();
    let done = remote.publish(lake).await?;
    println!(
        "published {} to {}: {} files ({} bytes) and {} commits copied, {} already there, {:.1} s",
        lake.display(),
        remote.url(),
        done.files,
        done.bytes,
        done.commits,
        done.already_there,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
