//! A Go `text/template` subset, enough for Prometheus alert templates (labels and annotations
//! of alerting rules).
//!
//! Semantics follow Go's `text/template` (<https://pkg.go.dev/text/template>) and Prometheus'
//! expander (`template/template.go` in prometheus/prometheus 3.x): the data is
//! `{Labels, ExternalLabels, ExternalURL, Value}`, the variables `$labels`, `$externalLabels`,
//! `$externalURL` and `$value` are predefined, missing map keys give the zero value
//! (`missingkey=zero`), and the function set is Go's builtins plus Prometheus' (see [`funcs`]).
//! Not supported: method calls, `call`, `break`/`continue`, complex numbers.

mod exec;
pub mod format;
pub mod funcs;
mod parse;

use std::collections::BTreeMap;
use std::fmt;

pub use exec::QueryFn;
pub use parse::ParseError;

use parse::{Defines, Node};

/// Variables Prometheus' expander defines in front of every rule template.
pub const PREDEFINED: [&str; 4] = ["$labels", "$externalLabels", "$externalURL", "$value"];

/// A dynamically typed template value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
    /// A point in time, seconds since the epoch (Go `time.Time`, printed in UTC).
    Time(f64),
    /// A duration in seconds (Go `time.Duration`).
    Duration(f64),
}

impl Value {
    /// Go's truth: false, 0, nil and empty strings, lists and maps are false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Time(_) => true,
            Value::Duration(d) => *d != 0.0,
        }
    }

    /// Go's type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(_) => "[]interface {}",
            Value::Map(_) => "map[string]interface {}",
            Value::Time(_) => "time.Time",
            Value::Duration(_) => "time.Duration",
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) | Value::Duration(f) | Value::Time(f) => Some(*f),
            Value::Str(s) => s.trim().parse().ok(),
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            _ => None,
        }
    }

    /// A string map (label sets).
    pub fn string_map<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
        Value::Map(
            pairs.into_iter().map(|(k, v)| (k.to_owned(), Value::Str(v.to_owned()))).collect(),
        )
    }

    /// One element of a `query` result: `{Labels, Value}` as Prometheus' `sample`.
    pub fn sample<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>, value: f64) -> Value {
        let mut map = BTreeMap::new();
        map.insert("Labels".to_owned(), Value::string_map(labels));
        map.insert("Value".to_owned(), Value::Float(value));
        Value::Map(map)
    }
}

/// Prints as Go's `fmt.Sprint` does.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => f.write_str("<nil>"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(v) => f.write_str(&format::go_float(*v, 'g', None)),
            Value::Str(s) => f.write_str(s),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Value::Map(map) => {
                f.write_str("map[")?;
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{k}:{v}")?;
                }
                f.write_str("]")
            }
            Value::Time(t) => f.write_str(&format::go_time(*t)),
            Value::Duration(d) => f.write_str(&format::go_duration(*d)),
        }
    }
}

/// An execution error, formatted like Go's (`template: NAME:LINE: executing "NAME": …`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecError {
    pub name: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "template: {}:{}: executing {:?}: {}",
            self.name, self.line, self.name, self.message
        )
    }
}

/// A parsed template.
#[derive(Clone, Debug)]
pub struct Template {
    name: String,
    root: Vec<Node>,
    defines: Defines,
}

impl Template {
    /// Parses `text` with Prometheus' predefined variables in scope.
    pub fn parse(name: &str, text: &str) -> Result<Self, ParseError> {
        let (root, defines) = parse::parse(name, text, &PREDEFINED, &funcs::is_function)?;
        Ok(Self { name: name.to_owned(), root, defines })
    }

    /// Executes with `data` as dot and the predefined variables taken from `data`'s `Labels`,
    /// `ExternalLabels`, `ExternalURL` and `Value` fields.
    pub fn execute(
        &self,
        data: &Value,
        query: Option<&QueryFn<'_>>,
        external_url: &str,
    ) -> Result<String, ExecError> {
        let field = |name: &str| match data {
            Value::Map(map) => map.get(name).cloned().unwrap_or(Value::Nil),
            _ => Value::Nil,
        };
        let vars = vec![
            ("$".to_owned(), data.clone()),
            ("$labels".to_owned(), field("Labels")),
            ("$externalLabels".to_owned(), field("ExternalLabels")),
            ("$externalURL".to_owned(), field("ExternalURL")),
            ("$value".to_owned(), field("Value")),
        ];
        exec::run(self, data, vars, query, external_url)
    }
}

/// The data Prometheus gives an alert template.
pub fn alert_data(
    labels: &crate::model::labels::Labels,
    external_labels: &crate::model::labels::Labels,
    external_url: &str,
    value: f64,
) -> Value {
    let mut map = BTreeMap::new();
    map.insert(
        "Labels".to_owned(),
        Value::string_map(labels.iter().map(|l| (l.name.as_str(), l.value.as_str()))),
    );
    map.insert(
        "ExternalLabels".to_owned(),
        Value::string_map(external_labels.iter().map(|l| (l.name.as_str(), l.value.as_str()))),
    );
    map.insert("ExternalURL".to_owned(), Value::Str(external_url.to_owned()));
    map.insert("Value".to_owned(), Value::Float(value));
    Value::Map(map)
}

/// Parses and executes a rule template as Prometheus' `Expander.Expand` does; any error becomes
/// the text `<error expanding template: …>`.
pub fn expand(
    name: &str,
    text: &str,
    data: &Value,
    query: Option<&QueryFn<'_>>,
    external_url: &str,
) -> String {
    let result = Template::parse(name, text)
        .map_err(|e| format!("error parsing template {name}: {e}"))
        .and_then(|t| {
            t.execute(data, query, external_url)
                .map_err(|e| format!("error executing template {name}: {e}"))
        });
    match result {
        Ok(text) => text,
        Err(message) => format!("<error expanding template: {message}>"),
    }
}

#[cfg(test)]
mod tests;
