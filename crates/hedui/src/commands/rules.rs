//! `hedui rules`: what the city's rules are and the exact SQL each runs with its parameters.

use std::collections::BTreeMap;
use std::process::ExitCode;

use crate::cli::RulesAction;
use crate::config::Config;
use crate::error::Result;

use super::check::rule_set;

pub fn run(action: RulesAction, cfg: &Config) -> Result<ExitCode> {
    match action {
        RulesAction::List { rules_dir } => {
            let set = rule_set(
                rules_dir.as_deref().or(cfg.rules.dir.as_deref()),
                &cfg.rules.parameters,
            )?;
            for rule in set.select(&[])? {
                println!(
                    "{:<6} v{:<3} {:<9} {} / {}  ({})",
                    rule.id,
                    rule.version,
                    format!("{:?}", rule.subject).to_lowercase(),
                    rule.title_zh,
                    rule.title_en,
                    rule.origin
                );
            }
        }
        RulesAction::Show {
            id,
            rules_dir,
            params,
            sql,
        } => {
            // The file's parameters, then the command line's, as `hedui check` uses them.
            let mut values: BTreeMap<String, String> = cfg.rules.parameters.clone();
            values.extend(params);
            let set = rule_set(rules_dir.as_deref().or(cfg.rules.dir.as_deref()), &values)?;
            let rule = set.select(std::slice::from_ref(&id))?.remove(0);
            let rendered = rule.render(&values)?;
            if sql {
                println!("{}", rendered.trim());
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{} v{}: {} / {}",
                rule.id, rule.version, rule.title_zh, rule.title_en
            );
            println!("对象 subject: {:?}", rule.subject);
            println!("依据 legal basis: {}", rule.legal_basis);
            println!("来源 origin: {}", rule.origin);
            if !rule.description.is_empty() {
                println!("\n{}", rule.description);
            }
            let effective = rule.effective(&values);
            if !rule.parameters.is_empty() {
                println!("\n参数 parameters:");
                for p in &rule.parameters {
                    println!(
                        "  {} = {} (default {}; {:?}) {}",
                        p.name, effective[&p.name], p.default, p.ty, p.description
                    );
                }
            }
            println!("\nSQL:\n{}", rendered.trim());
        }
    }
    Ok(ExitCode::SUCCESS)
}
