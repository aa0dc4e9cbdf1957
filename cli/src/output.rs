//! How results are printed: a table for people, JSON or YAML for scripts. Lists show the
//! same columns in every format, so a script reads exactly what a person sees.

use std::io::Write;

use comfy_table::{ContentArrangement, Table};

/// ASCII tables the way the `openstack` CLI draws them: a rule under the header, none
/// between rows.
const OPENSTACK_STYLE: &str = "||--+-++|    ++++++";
use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Yaml,
}

/// A column of a list: its header and how a row's cell is made.
pub struct Column<T> {
    pub header: &'static str,
    pub cell: fn(&T) -> Value,
}

pub fn col<T>(header: &'static str, cell: fn(&T) -> Value) -> Column<T> {
    Column { header, cell }
}

pub struct Printer {
    pub format: Format,
}

impl Printer {
    /// Prints a list with the given columns.
    pub fn list<T>(&self, items: &[T], columns: &[Column<T>]) {
        match self.format {
            Format::Table => {
                let mut table = table();
                table.set_header(columns.iter().map(|c| c.header));
                for item in items {
                    table.add_row(columns.iter().map(|c| text(&(c.cell)(item))));
                }
                emit(&format!("{table}\n"));
            }
            Format::Json | Format::Yaml => {
                let rows: Vec<Value> = items
                    .iter()
                    .map(|item| {
                        let row: Map<String, Value> = columns
                            .iter()
                            .map(|c| (c.header.to_owned(), (c.cell)(item)))
                            .collect();
                        Value::Object(row)
                    })
                    .collect();
                self.structured(&Value::Array(rows));
            }
        }
    }

    /// Prints one resource: every field, sorted, as `Field | Value` rows in a table.
    pub fn one(&self, item: &impl Serialize) {
        let value = serde_json::to_value(item).unwrap_or(Value::Null);
        match self.format {
            Format::Table => {
                let mut table = table();
                table.set_header(["Field", "Value"]);
                if let Value::Object(fields) = &value {
                    let mut fields: Vec<_> = fields.iter().collect();
                    fields.sort_by(|a, b| a.0.cmp(b.0));
                    for (name, v) in fields {
                        table.add_row([name.clone(), text(v)]);
                    }
                }
                emit(&format!("{table}\n"));
            }
            Format::Json | Format::Yaml => self.structured(&value),
        }
    }

    fn structured(&self, value: &Value) {
        let out = match self.format {
            Format::Yaml => serde_yaml_ng::to_string(value).unwrap_or_default(),
            _ => format!(
                "{}\n",
                serde_json::to_string_pretty(value).unwrap_or_default()
            ),
        };
        emit(&out);
    }
}

fn table() -> Table {
    let mut table = Table::new();
    // No wrapping to the terminal's width: the output is the same on every terminal
    // (and in golden tests).
    table
        .load_preset(OPENSTACK_STYLE)
        .set_content_arrangement(ContentArrangement::Disabled);
    table
}

/// A cell's text: strings bare, `null` empty, anything else as compact JSON.
pub fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

// Writing to a closed pipe (`yunji … | head`) is not an error worth a panic.
fn emit(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}
