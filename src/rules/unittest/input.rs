//! Inputs of a test group: series in selector notation and `start_timestamp` (Unix seconds or
//! RFC 3339).

use regex::Regex;

use crate::model::labels::{Label, Labels};

pub(super) fn start_timestamp(value: Option<&serde_yaml::Value>) -> Result<i64, String> {
    let Some(value) = value else { return Ok(0) };
    if let Some(seconds) = value.as_f64() {
        return Ok((seconds * 1000.0) as i64);
    }
    let text = value.as_str().ok_or("start_timestamp: expected a Unix time or RFC 3339 text")?;
    if let Ok(seconds) = text.parse::<f64>() {
        return Ok((seconds * 1000.0) as i64);
    }
    parse_rfc3339(text).ok_or_else(|| format!("start_timestamp: cannot parse {text:?} as RFC 3339"))
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` to milliseconds.
pub(super) fn parse_rfc3339(text: &str) -> Option<i64> {
    let re = Regex::new(
        r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$",
    )
    .ok()?;
    let caps = re.captures(text)?;
    let num = |i: usize| caps.get(i).and_then(|m| m.as_str().parse::<i64>().ok());
    let (year, month, day) = (num(1)?, num(2)?, num(3)?);
    let days = days_from_civil(year, month, day);
    let mut ms = ((days * 24 + num(4)?) * 60 + num(5)?) * 60_000 + num(6)? * 1000;
    if let Some(frac) = caps.get(7) {
        ms += (frac.as_str().parse::<f64>().ok()? * 1000.0).round() as i64;
    }
    let zone = caps.get(8)?.as_str();
    if zone.len() == 6 {
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let hours: i64 = zone[1..3].parse().ok()?;
        let minutes: i64 = zone[4..6].parse().ok()?;
        ms -= sign * (hours * 60 + minutes) * 60_000;
    }
    Some(ms)
}

fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A series in selector notation (`up{job="x"}`, `{a="b"}`, or empty) to its labels.
pub fn parse_series(text: &str) -> Result<Labels, String> {
    if text.trim().is_empty() {
        return Ok(Labels::default());
    }
    let expr = promql_parser::parser::parse(text)?;
    let promql_parser::parser::Expr::VectorSelector(selector) = expr else {
        return Err(format!("{text:?} is not a series"));
    };
    let mut labels = Vec::new();
    if let Some(name) = &selector.name {
        labels.push(Label::new("__name__", name.clone()));
    }
    for matcher in &selector.matchers.matchers {
        if !matches!(matcher.op, promql_parser::label::MatchOp::Equal) {
            return Err(format!("{text:?}: only = matchers describe a series"));
        }
        labels.push(Label::new(matcher.name.clone(), matcher.value.clone()));
    }
    Ok(Labels::from_unsorted(labels))
}
