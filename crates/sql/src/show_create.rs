//! `SHOW CREATE TABLE`: a table's DDL with secret option values masked.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::table::StreamTable;

pub use sluice_common::{is_secret_option, MASK};

/// Options with secret values replaced by [`MASK`].
pub fn masked_options(options: &BTreeMap<String, String>) -> Vec<(String, String)> {
    options
        .iter()
        .map(|(k, v)| {
            let v = if is_secret_option(k) {
                MASK.to_string()
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect()
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl StreamTable {
    /// The table's `CREATE TABLE` statement, secrets masked.
    pub fn show_create(&self) -> String {
        let def = &self.definition;
        let mut lines: Vec<String> = def
            .columns
            .iter()
            .map(|c| {
                if let Some(e) = &c.computed {
                    return format!("  `{}` AS {e}", c.name);
                }
                let null = if c.not_null { " NOT NULL" } else { "" };
                let meta = match &c.metadata {
                    None => String::new(),
                    Some(m) => format!(
                        " METADATA FROM {}{}",
                        quote(&m.key),
                        if m.is_virtual { " VIRTUAL" } else { "" }
                    ),
                };
                format!("  `{}` {}{null}{meta}", c.name, c.data_type)
            })
            .collect();
        if let Some(wm) = &def.watermark {
            lines.push(format!("  WATERMARK FOR `{}` AS {}", wm.column, wm.expr));
        }
        if !def.primary_key.is_empty() {
            lines.push(format!(
                "  PRIMARY KEY ({}) NOT ENFORCED",
                def.primary_key.join(", ")
            ));
        }
        let mut out = format!("CREATE TABLE `{}` (\n{}\n)", self.name, lines.join(",\n"));
        let options = masked_options(&self.options);
        out.push_str(" WITH (\n");
        let rendered: Vec<String> = options
            .iter()
            .map(|(k, v)| format!("  {} = {}", quote(k), quote(v)))
            .collect();
        let _ = write!(out, "{}\n)", rendered.join(",\n"));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_recognised() {
        for k in [
            "properties.sasl.jaas.config",
            "properties.ssl.key.password",
            "password",
            "properties.sasl.password",
            "aws.secret-key",
        ] {
            assert!(is_secret_option(k), "{k}");
        }
        for k in ["connector", "topic", "properties.bootstrap.servers", "path"] {
            assert!(!is_secret_option(k), "{k}");
        }
    }
}
