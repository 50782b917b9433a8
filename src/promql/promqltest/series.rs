//! Series descriptions and the expanding value notation of `promqltest` `load` blocks and
//! expected results, as Prometheus' parser reads them (`ParseSeriesDesc`; the notation is
//! documented for promtool's `input_series`:
//! <https://prometheus.io/docs/prometheus/latest/configuration/unit_testing_rules/#series>),
//! and the number and duration forms the scripts use (Go's `strconv`, `model.ParseDuration`).

use crate::model::labels::{Label, Labels};
use crate::promql::value::STALE_NAN_BITS;

/// One position of an expanded value sequence.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SeqValue {
    /// `_`: no sample at this position.
    Omitted,
    Float(f64),
    /// A native histogram `{{…}}` (not supported: only recorded so cases can be skipped).
    Histogram,
}

/// A series line: labels (with `__name__`) and its values.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesDesc {
    pub labels: Labels,
    pub values: Vec<SeqValue>,
}

impl SeriesDesc {
    pub fn has_histograms(&self) -> bool {
        self.values.iter().any(|v| matches!(v, SeqValue::Histogram))
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)` then `strconv.ParseFloat(s, 64)`.
pub fn parse_number(text: &str) -> Option<f64> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let int = if let Some(hex) = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        i64::from_str_radix(hex, 16).ok()
    } else if let Some(oct) = digits.strip_prefix("0o").or_else(|| digits.strip_prefix("0O")) {
        i64::from_str_radix(oct, 8).ok()
    } else if digits.len() > 1
        && digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit())
    {
        i64::from_str_radix(&digits[1..], 8).ok()
    } else {
        None
    };
    if let Some(int) = int {
        return Some(if negative { -(int as f64) } else { int as f64 });
    }
    parse_float(text)
}

/// A float as Go's `strconv.ParseFloat` accepts it (case-insensitive `Inf`, `NaN`).
fn parse_float(text: &str) -> Option<f64> {
    let body = text.trim_start_matches(['+', '-']);
    if body.is_empty() || body.len() + 1 < text.len() {
        return None;
    }
    let first = body.as_bytes()[0];
    if !(first.is_ascii_digit()
        || first == b'.'
        || first == b'i'
        || first == b'I'
        || first == b'n'
        || first == b'N')
    {
        return None;
    }
    text.parse::<f64>().ok()
}

/// A Prometheus duration (`model.ParseDuration`): `1h30m`, `10s`, `250ms`, `0`, `1d`, `1w`, `1y`.
pub fn parse_duration_ms(text: &str) -> Result<i64, String> {
    if text == "0" {
        return Ok(0);
    }
    if text.is_empty() {
        return Err("empty duration string".into());
    }
    let mut total: i64 = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let digits_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == digits_start {
            return Err(format!("not a valid duration string: {text:?}"));
        }
        let number: i64 = text[digits_start..i]
            .parse()
            .map_err(|_| format!("not a valid duration string: {text:?}"))?;
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit_ms: i64 = match &text[unit_start..i] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            _ => return Err(format!("not a valid duration string: {text:?}")),
        };
        total = number
            .checked_mul(unit_ms)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(|| format!("duration out of range: {text:?}"))?;
    }
    Ok(total)
}

/// Parses a series description: `metric{label="value", …} <values>`.
pub fn parse_series_desc(line: &str) -> Result<SeriesDesc, String> {
    let (labels, rest) = parse_metric(line)?;
    let values = parse_values(rest)?;
    Ok(SeriesDesc { labels, values })
}

/// Parses the label part of a series line; returns the labels and the text after them.
fn parse_metric(line: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() && is_name_byte(bytes[i], i == 0) {
        i += 1;
    }
    if i > 0 {
        labels.push(Label::new("__name__", &line[..i]));
    }
    let rest = &line[i..];
    let Some(mut body) = rest.strip_prefix('{') else {
        if labels.is_empty() {
            return Err(format!("invalid series description {line:?}"));
        }
        return Ok((Labels::from_unsorted(labels), rest));
    };
    loop {
        body = body.trim_start();
        if let Some(after) = body.strip_prefix('}') {
            return Ok((Labels::from_unsorted(labels), after));
        }
        let (name, after_name) = if body.starts_with(['"', '\'', '`']) {
            read_quoted(body)?
        } else {
            let end = body
                .bytes()
                .enumerate()
                .find(|&(j, b)| !is_name_byte(b, j == 0))
                .map_or(body.len(), |(j, _)| j);
            if end == 0 {
                return Err(format!("invalid label set in {line:?}"));
            }
            (body[..end].to_owned(), &body[end..])
        };
        let after_name = after_name.trim_start();
        if let Some(after_eq) = after_name.strip_prefix('=') {
            let (value, after_value) = read_quoted(after_eq.trim_start())?;
            labels.push(Label::new(name, value));
            body = after_value.trim_start();
        } else {
            // A lone quoted string is the metric name (`{"metric.name", a="b"}`).
            labels.push(Label::new("__name__", name));
            body = after_name;
        }
        body = body.strip_prefix(',').unwrap_or(body);
        if body.is_empty() {
            return Err(format!("unterminated label set in {line:?}"));
        }
    }
}

fn is_name_byte(b: u8, first: bool) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':' || (!first && b.is_ascii_digit())
}

/// Reads a quoted string at the start of `text`; returns it unescaped and the rest.
fn read_quoted(text: &str) -> Result<(String, &str), String> {
    let quote = text.chars().next().ok_or("expected a quoted string")?;
    let mut escaped = false;
    for (j, c) in text.char_indices().skip(1) {
        if escaped {
            escaped = false;
        } else if c == '\\' && quote != '`' {
            escaped = true;
        } else if c == quote {
            let inner = &text[1..j];
            let value = if quote == '`' { inner.to_owned() } else { unescape(inner)? };
            return Ok((value, &text[j + 1..]));
        }
    }
    Err(format!("unterminated quoted string {text:?}"))
}

/// Go string escapes: `\n`, `\t`, `\\`, `\"`, `\'`, `\xNN`, `\uNNNN`, `\UNNNNNNNN`, octal.
pub(super) fn unescape(text: &str) -> Result<String, String> {
    let mut out = Vec::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let code = *bytes.get(i + 1).ok_or("trailing backslash")?;
        i += 2;
        let simple = match code {
            b'n' => Some(b'\n'),
            b't' => Some(b'\t'),
            b'r' => Some(b'\r'),
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'v' => Some(0x0b),
            b'\\' | b'"' | b'\'' | b'`' => Some(code),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            continue;
        }
        let hex = |len: usize, i: usize| -> Result<u32, String> {
            text.get(i..i + len)
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("invalid escape in {text:?}"))
        };
        match code {
            b'x' => {
                out.push(hex(2, i)? as u8);
                i += 2;
            }
            b'u' | b'U' => {
                let len = if code == b'u' { 4 } else { 8 };
                let c = char::from_u32(hex(len, i)?).ok_or("invalid unicode escape")?;
                out.extend_from_slice(c.to_string().as_bytes());
                i += len;
            }
            b'0'..=b'7' => {
                let octal = text
                    .get(i - 1..i + 2)
                    .and_then(|o| u8::from_str_radix(o, 8).ok())
                    .ok_or_else(|| format!("invalid escape in {text:?}"))?;
                out.push(octal);
                i += 2;
            }
            _ => return Err(format!("unknown escape sequence in {text:?}")),
        }
    }
    // Label values with invalid UTF-8 (`\xc5` alone) are kept lossily: such cases expect a
    // failure anyway.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Splits the value part into items; a native histogram `{{…}}` (with its expansion) is one item.
fn split_items(text: &str) -> Result<Vec<&str>, String> {
    let mut items = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
            if bytes[i..].starts_with(b"{{") {
                let close = text[i..]
                    .find("}}")
                    .ok_or_else(|| format!("unterminated histogram in {text:?}"))?;
                i += close + 2;
            } else {
                i += 1;
            }
        }
        items.push(&text[start..i]);
    }
    Ok(items)
}

fn parse_values(text: &str) -> Result<Vec<SeqValue>, String> {
    let mut values = Vec::new();
    for item in split_items(text)? {
        expand_item(item, &mut values)?;
    }
    Ok(values)
}

/// Splits `body` into `(body, Some(n))` when it ends in `x<digits>`.
fn split_times(item: &str) -> (&str, Option<usize>) {
    let Some(pos) = item.rfind('x') else { return (item, None) };
    let count = &item[pos + 1..];
    // `0x10` is `0` repeated (ten more times), as Prometheus' series lexer reads it, not hex.
    if pos == 0 || count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
        return (item, None);
    }
    match count.parse() {
        Ok(n) => (&item[..pos], Some(n)),
        Err(_) => (item, None),
    }
}

fn expand_item(item: &str, out: &mut Vec<SeqValue>) -> Result<(), String> {
    let invalid = || format!("invalid value {item:?} in series values");
    if item.starts_with("{{") {
        let (_, times) = split_times(item);
        out.extend(std::iter::repeat_n(SeqValue::Histogram, times.map_or(1, |n| n + 1)));
        return Ok(());
    }
    let (body, times) = split_times(item);
    if body == "_" {
        out.extend(std::iter::repeat_n(SeqValue::Omitted, times.unwrap_or(1)));
        return Ok(());
    }
    if body == "stale" {
        let stale = SeqValue::Float(f64::from_bits(STALE_NAN_BITS));
        out.extend(std::iter::repeat_n(stale, times.map_or(1, |n| n + 1)));
        return Ok(());
    }
    let Some(times) = times else {
        out.push(SeqValue::Float(parse_number(body).ok_or_else(invalid)?));
        return Ok(());
    };
    // `a+bxn` / `a-bxn` / `axn`: the operator is the first `+`/`-` after the start that does not
    // belong to an exponent.
    let bytes = body.as_bytes();
    let split = (1..bytes.len())
        .find(|&j| (bytes[j] == b'+' || bytes[j] == b'-') && !matches!(bytes[j - 1], b'e' | b'E'));
    let (first, increment) = match split {
        Some(j) => {
            let step = parse_number(&body[j + 1..]).ok_or_else(invalid)?;
            let first = parse_number(&body[..j]).ok_or_else(invalid)?;
            (first, if bytes[j] == b'-' { -step } else { step })
        }
        None => (parse_number(body).ok_or_else(invalid)?, 0.0),
    };
    // Repeated addition, as Prometheus' parser does, so rounding matches.
    let mut value = first;
    for _ in 0..=times {
        out.push(SeqValue::Float(value));
        value += increment;
    }
    Ok(())
}

/// Expands promtool's series value notation (`1+2x10`, `1-1x3`, `_`, `_x3`, `stale`, `5x2`,
/// `1e3`, `Inf`, `NaN`, space-separated) into one entry per interval: `None` where no sample is
/// written, and the stale marker as the NaN with bits [`STALE_NAN_BITS`]. Native histogram
/// values (`{{…}}`) are rejected.
///
/// The rules-unit-test runner uses this for `input_series[].values`.
pub fn parse_series_values(text: &str) -> Result<Vec<Option<f64>>, String> {
    parse_values(text)?
        .into_iter()
        .map(|v| match v {
            SeqValue::Omitted => Ok(None),
            SeqValue::Float(f) => Ok(Some(f)),
            SeqValue::Histogram => Err("native histogram values are not supported".to_owned()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promql::value::is_stale_nan;

    #[test]
    fn expanding_notation() {
        let values = parse_series_values("1+2x3 _ _x2 5x1 1-1x2 stale 1e3 -Inf").unwrap();
        let expected = [
            Some(1.0),
            Some(3.0),
            Some(5.0),
            Some(7.0),
            None,
            None,
            None,
            Some(5.0),
            Some(5.0),
            Some(1.0),
            Some(0.0),
            Some(-1.0),
        ];
        assert_eq!(&values[..12], &expected);
        assert!(is_stale_nan(values[12].unwrap()));
        assert_eq!(values[13], Some(1000.0));
        assert_eq!(values[14], Some(f64::NEG_INFINITY));
        assert_eq!(values.len(), 15);
    }

    #[test]
    fn exponent_signs_are_not_operators() {
        assert_eq!(parse_series_values("1e-3+1e+1x1").unwrap(), vec![Some(0.001), Some(10.001)]);
        assert_eq!(parse_series_values("-2+1x1").unwrap(), vec![Some(-2.0), Some(-1.0)]);
        assert!(parse_series_values("1+x2").is_err());
        assert_eq!(parse_series_values("0x2").unwrap(), vec![Some(0.0); 3]);
        assert!(parse_series_values("{{schema:0 sum:1}}").is_err());
    }

    #[test]
    fn series_description_labels() {
        let desc = parse_series_desc(r#"http_requests{job="api", group='a,b}'} 1 2"#).unwrap();
        assert_eq!(
            desc.labels,
            Labels::from_pairs([("__name__", "http_requests"), ("job", "api"), ("group", "a,b}")])
        );
        assert_eq!(desc.values, vec![SeqValue::Float(1.0), SeqValue::Float(2.0)]);
        let desc =
            parse_series_desc(r#"{"my.metric", "a.b"="x\n"} {{schema:0 sum:1 count:2}}x2 3"#)
                .unwrap();
        assert_eq!(desc.labels, Labels::from_pairs([("__name__", "my.metric"), ("a.b", "x\n")]));
        assert_eq!(desc.values.len(), 4);
        assert!(desc.has_histograms());
        assert_eq!(parse_series_desc("{} 5").unwrap().labels, Labels::default());
    }

    #[test]
    fn numbers_and_durations() {
        assert_eq!(parse_number("0x10"), Some(16.0));
        assert_eq!(parse_number("-1.5e2"), Some(-150.0));
        assert_eq!(parse_number("Inf"), Some(f64::INFINITY));
        assert!(parse_number("NaN").unwrap().is_nan());
        assert_eq!(parse_number("foo"), None);
        assert_eq!(parse_number("{} 1"), None);
        assert_eq!(parse_duration_ms("1h30m").unwrap(), 5_400_000);
        assert_eq!(parse_duration_ms("250ms").unwrap(), 250);
        assert!(parse_duration_ms("1x").is_err());
    }
}
