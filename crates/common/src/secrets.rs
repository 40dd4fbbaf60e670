//! Which option values are secrets, and how they are shown.

/// What a masked option value reads as.
pub const MASK: &str = "******";

/// Whether an option's value is a secret (passwords, keys, JAAS configs,
/// tokens). Such values never appear in output, logs or errors.
pub fn is_secret_option(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "sasl.jaas.config",
        "ssl.key.",
        "token",
        "credential",
        "private",
    ]
    .iter()
    .any(|s| k.contains(s))
}
