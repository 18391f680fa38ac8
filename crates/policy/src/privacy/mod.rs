//! Differential privacy for aggregate-only roles: the figures of an answer carry calibrated
//! Laplace noise ([`noise`]), each person's contribution to them is bounded (see
//! `suppress.rs`), and each identity's answers spend a budget kept on disk ([`budget`]).

pub mod budget;
pub mod noise;

use std::path::PathBuf;

pub use budget::{Budget, Spent};
pub use noise::NoiseFunctions;

use crate::config::PrivacyConfig;
use crate::{Error, Result};

/// The privacy settings and budget of one server.
pub struct Privacy {
    pub config: PrivacyConfig,
    pub budget: Budget,
    pub noise: NoiseFunctions,
}

impl Privacy {
    pub fn new(config: PrivacyConfig, ledger: Option<PathBuf>) -> Result<Privacy> {
        let period = config.validate().map_err(Error::Config)?;
        Ok(Privacy {
            budget: Budget::new(ledger, config.budget, period, &config.period),
            config,
            noise: NoiseFunctions::default(),
        })
    }

    /// The Laplace scale of a count in an answer of `figures` noised figures: one person adds
    /// at most `rows_per_person` to each of at most `groups_per_person` cells.
    pub fn count_scale(&self, per_person: u32, figures: usize) -> f64 {
        let c = &self.config;
        f64::from(per_person) * f64::from(c.groups_per_person) * figures as f64
            / c.epsilon_per_query
    }

    /// The Laplace scale of a sum in an answer of `figures` noised figures.
    pub fn sum_scale(&self, figures: usize) -> f64 {
        let c = &self.config;
        c.sum_bound * f64::from(c.groups_per_person) * figures as f64 / c.epsilon_per_query
    }
}
