use std::path::Path;
use std::process::ExitCode;

use hedui_synth::{CityConfig, Generated, generate};

use crate::error::Result;

pub fn run(persons: u64, seed: u64, out: &Path) -> Result<ExitCode> {
    let g = generate(&CityConfig { persons, seed }, out)?;
    print_summary(&g);
    Ok(ExitCode::SUCCESS)
}

pub fn print_summary(g: &Generated) {
    println!(
        "生成城市 generated city: {} persons, {} households, {} files, {} data rows in {:.1}s",
        g.persons, g.households, g.files, g.data_rows, g.seconds
    );
    println!("  department exports: {}", g.data_dir.display());
    println!("  truth:              {}", g.truth_path.display());
    let hits: Vec<String> = g
        .hits_per_rule
        .iter()
        .map(|(r, n)| format!("{r} {n}"))
        .collect();
    println!(
        "  planted hits per rule: {}; deliberately broken rows: {}",
        hits.join(", "),
        g.broken_rows
    );
}
