//! Template functions: Go's builtins (`and or not len index print printf println eq ne lt le
//! gt ge html js urlquery`) and Prometheus' (`template/template.go`, 3.x): `query first label
//! value strvalue sortByLabel humanize humanize1024 humanizeDuration humanizePercentage
//! humanizeTimestamp toTime toDuration parseDuration title toUpper toLower match reReplaceAll
//! safeHtml stripPort stripDomain pathPrefix externalURL args tmpl graphLink tableLink`.

use std::collections::BTreeMap;

use regex::Regex;

use super::exec::Exec;
use super::format::{go_float, sprintf};
use super::Value;

const FUNCTIONS: [&str; 45] = [
    "and",
    "or",
    "not",
    "len",
    "index",
    "print",
    "printf",
    "println",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "html",
    "js",
    "urlquery",
    "slice",
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "sortByLabel",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toTime",
    "toDuration",
    "parseDuration",
    "title",
    "toUpper",
    "toLower",
    "match",
    "reReplaceAll",
    "safeHtml",
    "stripPort",
    "stripDomain",
    "pathPrefix",
    "externalURL",
    "args",
    "tmpl",
    "graphLink",
];

pub fn is_function(name: &str) -> bool {
    FUNCTIONS.contains(&name) || name == "tableLink" || name == "safeUrl"
}

fn arity(name: &str, args: &[Value], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!("wrong number of args for {name}: want {n} got {}", args.len()));
    }
    Ok(())
}

fn string_arg(value: &Value) -> Result<String, String> {
    match value {
        Value::Str(s) => Ok(s.clone()),
        other => Err(format!("wrong type for value; expected string; got {}", other.type_name())),
    }
}

/// A number as Prometheus' `convertToFloat` takes it: floats, ints and numeric strings.
fn float_arg(value: &Value) -> Result<f64, String> {
    match value {
        Value::Str(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("strconv.ParseFloat: parsing {s:?}: invalid syntax")),
        Value::Int(_) | Value::Float(_) | Value::Duration(_) => Ok(value.as_f64().unwrap_or(0.0)),
        other => Err(format!("can't convert {} to float", other.type_name())),
    }
}

fn g4(v: f64) -> String {
    go_float(v, 'g', Some(4))
}

pub(super) fn call(exec: &mut Exec<'_>, name: &str, args: Vec<Value>) -> Result<Value, String> {
    match name {
        "and" => {
            Ok(args.iter().find(|v| !v.truthy()).or(args.last()).cloned().unwrap_or(Value::Nil))
        }
        "or" => Ok(args.iter().find(|v| v.truthy()).or(args.last()).cloned().unwrap_or(Value::Nil)),
        "not" => {
            arity(name, &args, 1)?;
            Ok(Value::Bool(!args[0].truthy()))
        }
        "len" => {
            arity(name, &args, 1)?;
            match &args[0] {
                Value::Str(s) => Ok(Value::Int(s.len() as i64)),
                Value::List(l) => Ok(Value::Int(l.len() as i64)),
                Value::Map(m) => Ok(Value::Int(m.len() as i64)),
                other => Err(format!("len of type {}", other.type_name())),
            }
        }
        "index" => {
            let (first, keys) = args.split_first().ok_or("wrong number of args for index")?;
            let mut value = first.clone();
            for key in keys {
                value = match (value, key) {
                    (Value::Map(mut m), Value::Str(k)) => {
                        m.remove(k).unwrap_or(Value::Str(String::new()))
                    }
                    (Value::List(l), Value::Int(i)) => l
                        .get(usize::try_from(*i).map_err(|_| format!("index out of range: {i}"))?)
                        .cloned()
                        .ok_or_else(|| format!("index out of range: {i}"))?,
                    (Value::Nil, _) => return Err("index of untyped nil".into()),
                    (other, _) => {
                        return Err(format!("can't index item of type {}", other.type_name()))
                    }
                };
            }
            Ok(value)
        }
        "slice" => {
            let (first, bounds) = args.split_first().ok_or("wrong number of args for slice")?;
            let Value::Str(s) = first else { return Err("can't slice item".into()) };
            let lo = bounds.first().and_then(Value::as_f64).unwrap_or(0.0) as usize;
            let hi = bounds.get(1).and_then(Value::as_f64).map_or(s.len(), |h| h as usize);
            s.get(lo..hi)
                .map(|t| Value::Str(t.to_owned()))
                .ok_or_else(|| "slice index out of range".into())
        }
        "print" => Ok(Value::Str(go_sprint(&args))),
        "println" => {
            let parts: Vec<String> = args.iter().map(ToString::to_string).collect();
            Ok(Value::Str(format!("{}\n", parts.join(" "))))
        }
        "printf" => {
            let (format, rest) = args.split_first().ok_or("wrong number of args for printf")?;
            Ok(Value::Str(sprintf(&string_arg(format)?, rest)))
        }
        "eq" | "ne" | "lt" | "le" | "gt" | "ge" => compare(name, &args),
        "html" | "safeHtml" => Ok(Value::Str(if name == "html" {
            html_escape(&go_sprint(&args))
        } else {
            go_sprint(&args)
        })),
        "js" => Ok(Value::Str(
            go_sprint(&args).replace('\\', "\\\\").replace('\'', "\\'").replace('"', "\\\""),
        )),
        "urlquery" | "safeUrl" => Ok(Value::Str(
            url::form_urlencoded::byte_serialize(go_sprint(&args).as_bytes()).collect(),
        )),
        "query" => {
            arity(name, &args, 1)?;
            let text = string_arg(&args[0])?;
            let query = exec.query.ok_or("query is not available here")?;
            query(&text).map(Value::List)
        }
        "first" => {
            arity(name, &args, 1)?;
            match &args[0] {
                Value::List(l) => l
                    .first()
                    .cloned()
                    .ok_or_else(|| "first() called on vector with no elements".into()),
                other => Err(format!("first() called on {}", other.type_name())),
            }
        }
        "label" => {
            arity(name, &args, 2)?;
            let label = string_arg(&args[0])?;
            Ok(sample_field(&args[1], "Labels")
                .and_then(|l| match l {
                    Value::Map(m) => m.get(&label).cloned(),
                    _ => None,
                })
                .unwrap_or(Value::Str(String::new())))
        }
        "value" => {
            arity(name, &args, 1)?;
            Ok(sample_field(&args[0], "Value").unwrap_or(Value::Float(0.0)))
        }
        "strvalue" => {
            arity(name, &args, 1)?;
            Ok(sample_field(&args[0], "Labels")
                .and_then(|l| match l {
                    Value::Map(m) => m.get("__value__").cloned(),
                    _ => None,
                })
                .unwrap_or(Value::Str(String::new())))
        }
        "sortByLabel" => {
            arity(name, &args, 2)?;
            let label = string_arg(&args[0])?;
            let Value::List(mut list) = args[1].clone() else {
                return Err("sortByLabel needs a query result".into());
            };
            let key = |v: &Value| match sample_field(v, "Labels") {
                Some(Value::Map(m)) => m.get(&label).map(ToString::to_string).unwrap_or_default(),
                _ => String::new(),
            };
            list.sort_by_key(key);
            Ok(Value::List(list))
        }
        "humanize" => one_float(name, &args).map(|v| Value::Str(humanize(v))),
        "humanize1024" => one_float(name, &args).map(|v| Value::Str(humanize1024(v))),
        "humanizeDuration" => one_float(name, &args).map(|v| Value::Str(humanize_duration(v))),
        "humanizePercentage" => {
            one_float(name, &args).map(|v| Value::Str(format!("{}%", g4(v * 100.0))))
        }
        "humanizeTimestamp" => one_float(name, &args)
            .map(|v| Value::Str(if v.is_finite() { super::format::go_time(v) } else { g4(v) })),
        "toTime" => one_float(name, &args).map(Value::Time),
        "toDuration" => one_float(name, &args).map(Value::Duration),
        "parseDuration" => {
            arity(name, &args, 1)?;
            let text = string_arg(&args[0])?;
            crate::config::units::parse_duration(&text).map(|d| Value::Float(d.as_secs_f64()))
        }
        "title" => one_string(name, &args).map(|s| Value::Str(title(&s))),
        "toUpper" => one_string(name, &args).map(|s| Value::Str(s.to_uppercase())),
        "toLower" => one_string(name, &args).map(|s| Value::Str(s.to_lowercase())),
        "match" => {
            arity(name, &args, 2)?;
            let re = Regex::new(&string_arg(&args[0])?).map_err(|e| e.to_string())?;
            Ok(Value::Bool(re.is_match(&string_arg(&args[1])?)))
        }
        "reReplaceAll" => {
            arity(name, &args, 3)?;
            let re = Regex::new(&string_arg(&args[0])?).map_err(|e| e.to_string())?;
            let replacement = string_arg(&args[1])?;
            Ok(Value::Str(
                re.replace_all(&string_arg(&args[2])?, replacement.as_str()).into_owned(),
            ))
        }
        "stripPort" => one_string(name, &args).map(|s| Value::Str(strip_port(&s))),
        "stripDomain" => one_string(name, &args).map(|s| Value::Str(strip_domain(&s))),
        "externalURL" => Ok(Value::Str(exec.external_url.to_owned())),
        "pathPrefix" => Ok(Value::Str(
            url::Url::parse(exec.external_url)
                .map(|u| u.path().trim_end_matches('/').to_owned())
                .unwrap_or_default(),
        )),
        "args" => Ok(Value::Map(
            args.into_iter()
                .enumerate()
                .map(|(i, v)| (format!("arg{i}"), v))
                .collect::<BTreeMap<_, _>>(),
        )),
        "tmpl" => {
            arity(name, &args, 2)?;
            let template = string_arg(&args[0])?;
            exec.call_template(&template, &args[1]).map(Value::Str)
        }
        "graphLink" | "tableLink" => {
            let expr = one_string(name, &args)?;
            let tab = if name == "graphLink" { 0 } else { 1 };
            let escaped: String = url::form_urlencoded::byte_serialize(expr.as_bytes()).collect();
            Ok(Value::Str(format!("/graph?g0.expr={escaped}&g0.tab={tab}")))
        }
        other => Err(format!("function {other:?} not defined")),
    }
}

fn one_float(name: &str, args: &[Value]) -> Result<f64, String> {
    arity(name, args, 1)?;
    float_arg(&args[0])
}

fn one_string(name: &str, args: &[Value]) -> Result<String, String> {
    arity(name, args, 1)?;
    string_arg(&args[0])
}

fn sample_field(value: &Value, field: &str) -> Option<Value> {
    match value {
        Value::Map(m) => m.get(field).cloned(),
        _ => None,
    }
}

/// Go's `fmt.Sprint`: spaces only between operands when neither is a string.
fn go_sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 && !matches!(arg, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        out.push_str(&arg.to_string());
    }
    out
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

fn compare(name: &str, args: &[Value]) -> Result<Value, String> {
    let (first, rest) =
        args.split_first().ok_or_else(|| format!("missing arguments for {name}"))?;
    if rest.is_empty() {
        return Err("missing argument for comparison".to_owned());
    }
    let order = |a: &Value, b: &Value| -> Result<std::cmp::Ordering, String> {
        match (a, b) {
            (Value::Str(x), Value::Str(y)) => Ok(x.cmp(y)),
            (Value::Bool(x), Value::Bool(y)) if matches!(name, "eq" | "ne") => Ok(x.cmp(y)),
            (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
            (x, y) => match (numeric(x), numeric(y)) {
                (Some(x), Some(y)) => {
                    x.partial_cmp(&y).ok_or_else(|| "incomparable NaN".to_owned())
                }
                _ => Err("incompatible types for comparison".to_owned()),
            },
        }
    };
    if name == "eq" {
        for other in rest {
            if order(first, other)? == std::cmp::Ordering::Equal {
                return Ok(Value::Bool(true));
            }
        }
        return Ok(Value::Bool(false));
    }
    if rest.len() != 1 {
        return Err(format!("wrong number of args for {name}: want 2 got {}", args.len()));
    }
    let ordering = match order(first, &rest[0]) {
        Ok(o) => o,
        // NaN compares false with everything, as in Go.
        Err(e) if e == "incomparable NaN" => return Ok(Value::Bool(name == "ne")),
        Err(e) => return Err(e),
    };
    use std::cmp::Ordering::{Equal, Greater, Less};
    Ok(Value::Bool(match name {
        "ne" => ordering != Equal,
        "lt" => ordering == Less,
        "le" => ordering != Greater,
        "gt" => ordering == Greater,
        _ => ordering != Less,
    }))
}

fn numeric(value: &Value) -> Option<f64> {
    match value {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) | Value::Duration(f) => Some(*f),
        _ => None,
    }
}

/// Prometheus' `humanize`: SI prefixes, four significant digits.
pub fn humanize(v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let mut value = v;
    if value.abs() >= 1.0 {
        let mut prefix = "";
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if value.abs() < 1000.0 {
                break;
            }
            prefix = p;
            value /= 1000.0;
        }
        return format!("{}{prefix}", g4(value));
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if value.abs() >= 1.0 {
            break;
        }
        prefix = p;
        value *= 1000.0;
    }
    format!("{}{prefix}", g4(value))
}

/// Prometheus' `humanize1024`: binary prefixes.
pub fn humanize1024(v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let mut value = v;
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if value.abs() < 1024.0 {
            break;
        }
        prefix = p;
        value /= 1024.0;
    }
    format!("{}{prefix}", g4(value))
}

/// Prometheus' `humanizeDuration`: `1d 2h 3m 4s`, or sub-second values with SI prefixes.
pub fn humanize_duration(v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    if v == 0.0 {
        return format!("{}s", g4(v));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        let whole = v.abs() as i64;
        let seconds = whole % 60;
        let minutes = (whole / 60) % 60;
        let hours = (whole / 3600) % 24;
        let days = whole / 86_400;
        if days != 0 {
            return format!("{sign}{days}d {hours}h {minutes}m {seconds}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {minutes}m {seconds}s");
        }
        if minutes != 0 {
            return format!("{sign}{minutes}m {seconds}s");
        }
        return format!("{sign}{}s", g4(v.abs()));
    }
    let mut value = v;
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if value.abs() >= 1.0 {
            break;
        }
        prefix = p;
        value *= 1000.0;
    }
    format!("{}{prefix}s", g4(value))
}

/// Go's deprecated `strings.Title`: upper-case the first letter of every word.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut at_start = true;
    for c in s.chars() {
        if at_start && c.is_alphanumeric() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        at_start = !(c.is_alphanumeric() || c == '_' || c == '\'');
    }
    out
}

fn strip_port(host_port: &str) -> String {
    if let Some(rest) = host_port.strip_prefix('[') {
        if let Some((host, _)) = rest.split_once("]:") {
            return host.to_owned();
        }
        return host_port.to_owned();
    }
    match host_port.rsplit_once(':') {
        Some((host, _)) if !host.contains(':') => host.to_owned(),
        _ => host_port.to_owned(),
    }
}

fn strip_domain(host_port: &str) -> String {
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && !h.starts_with('[') => (h, Some(p)),
        _ => (host_port, None),
    };
    if host.parse::<std::net::IpAddr>().is_ok() || host_port.starts_with('[') {
        return host_port.to_owned();
    }
    let short = host.split('.').next().unwrap_or(host);
    match port {
        Some(p) => format!("{short}:{p}"),
        None => short.to_owned(),
    }
}
