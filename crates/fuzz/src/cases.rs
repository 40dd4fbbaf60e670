//! Which statement a (seed, step) names. Steps are numbered; every
//! [`GROUP`] consecutive statements share one session. Even groups are
//! generated over the fixed catalog (after its setup statements); odd
//! groups replay one `.slt` file's statements, most of them mutated.
//! Everything is a pure function of the seed, so the supervisor can print
//! the text of a statement that killed a worker.

use std::fmt;

use crate::catalog::setup_statements;
use crate::corpus::SltFile;
use crate::mutate::mutate;
use crate::query::QueryGen;
use crate::rng::{mix, Rng};

/// Statements per session.
pub const GROUP: u64 = 50;

/// One step of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    /// Setup statement `k` of group `group`.
    Setup {
        /// The group.
        group: u64,
        /// Its index among the group's setup statements.
        k: usize,
    },
    /// Statement `n` of the run.
    Stmt(u64),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Setup { group, k } => write!(f, "g{group}.setup{k}"),
            Step::Stmt(n) => write!(f, "{n}"),
        }
    }
}

impl std::str::FromStr for Step {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("not a step: {s}");
        match s.strip_prefix('g') {
            Some(rest) => {
                let (g, k) = rest.split_once(".setup").ok_or_else(bad)?;
                Ok(Step::Setup {
                    group: g.parse().map_err(|_| bad())?,
                    k: k.parse().map_err(|_| bad())?,
                })
            }
            None => s.parse().map(Step::Stmt).map_err(|_| bad()),
        }
    }
}

/// What generates a run's statements.
#[derive(Debug, Clone)]
pub struct Cases {
    /// The run's seed.
    pub seed: u64,
    /// The `.slt` corpus mutated in odd groups.
    pub corpus: Vec<SltFile>,
    /// Leave out the deep-nesting generator (for development while a known
    /// deep-nesting bug is open; never in CI).
    pub skip_deep: bool,
    /// Run this statement instead of generated ones (`--sql`).
    pub sql: Option<String>,
}

impl Cases {
    /// Whether group `g` is generated (else mutated).
    pub fn generated(&self, g: u64) -> bool {
        g.is_multiple_of(2) || self.corpus.is_empty()
    }

    /// The setup statements of group `g`.
    pub fn setup(&self, g: u64) -> Vec<String> {
        let mut r = Rng::new(mix(self.seed, g ^ 0xA11CE));
        let parallelism = *r.pick(&[1, 2, 2, 4]);
        if self.generated(g) {
            setup_statements(parallelism)
        } else {
            vec![format!("SET parallelism = {parallelism}")]
        }
    }

    /// The text of a step.
    pub fn text(&self, step: Step) -> String {
        match step {
            Step::Setup { group, k } => self.setup(group).get(k).cloned().unwrap_or_default(),
            Step::Stmt(n) => self.statement(n),
        }
    }

    /// Statement `n`.
    pub fn statement(&self, n: u64) -> String {
        if let Some(sql) = &self.sql {
            return sql.clone();
        }
        let g = n / GROUP;
        let mut r = Rng::new(mix(self.seed, n));
        if self.generated(g) {
            let wrong = if r.chance(70) { 0 } else { 3 };
            let mut q = QueryGen {
                r: &mut r,
                wrong,
                skip_deep: self.skip_deep,
            };
            return q.statement();
        }
        let mut fr = Rng::new(mix(self.seed, g ^ 0xF11E));
        let file = fr.pick(&self.corpus);
        let j = (n % GROUP) as usize;
        let original = match file.statements.get(j) {
            Some(s) => s.clone(),
            None => r.pick(&file.statements).clone(),
        };
        if r.chance(25) {
            original
        } else {
            mutate(&mut r, &original)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_round_trip() {
        for s in [Step::Stmt(17), Step::Setup { group: 3, k: 2 }] {
            assert_eq!(s.to_string().parse::<Step>(), Ok(s));
        }
    }

    #[test]
    fn texts_are_a_function_of_the_seed() {
        let cases = Cases {
            seed: 9,
            corpus: crate::corpus::load(&crate::corpus::sql_tests_dir()),
            skip_deep: false,
            sql: None,
        };
        for n in [0, 1, 49, 50, 51, 120] {
            assert_eq!(cases.statement(n), cases.statement(n));
            assert!(!cases.statement(n).is_empty());
        }
    }
}
