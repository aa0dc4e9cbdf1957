//! One module per service; each resource is a clap subcommand enum with a `run`.

pub mod compute;
pub mod identity;
pub mod image;
pub mod lb;
pub mod network;
pub mod volume;

use serde_json::{Value, json};

/// A JSON string cell, or null when absent.
pub fn opt(value: &Option<String>) -> Value {
    value.as_deref().map_or(Value::Null, |s| json!(s))
}

/// Parses `key=value`.
pub fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}
