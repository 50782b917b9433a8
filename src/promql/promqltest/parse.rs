//! Parsing of `promqltest` scripts: commands, series descriptions and the expanding value
//! notation.
//!
//! Follows Prometheus' `promql/promqltest/test.go` (v3.x: `getLines`, `parseLoad`, `parseEval`,
//! `parseExpect`, `parseNumber`) and the series-description grammar of `promql/parser`
//! (`ParseSeriesDesc`), as documented for `promtool test rules` input series
//! (<https://prometheus.io/docs/prometheus/latest/configuration/unit_testing_rules/#series>).
//! Lines are trimmed and `#` comment lines become blank; a blank line ends a `load` or `eval`
//! block, exactly as in Prometheus.

use regex::Regex;

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

/// What an `expect` line asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectKind {
    Ordered,
    Fail,
    Warn,
    NoWarn,
    Info,
    NoInfo,
}

/// How an expected message is matched: exactly, by regex, or anything.
#[derive(Clone, Debug)]
pub enum MessageMatch {
    Any,
    Exact(String),
    Regex(Regex),
}

impl MessageMatch {
    pub fn matches(&self, text: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(message) => message == text,
            Self::Regex(regex) => regex.is_match(text),
        }
    }
}

impl std::fmt::Display for MessageMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Any => f.write_str("anything"),
            Self::Exact(message) => write!(f, "message {message:?}"),
            Self::Regex(regex) => write!(f, "pattern {:?}", regex.as_str()),
        }
    }
}

/// The result an `eval` expects.
#[derive(Clone, Debug, Default)]
pub enum Expected {
    /// No result lines: an empty vector/matrix.
    #[default]
    Nothing,
    Scalar(f64),
    String(String),
    /// Series with the values at the query's steps (line position kept for `ordered`).
    Series(Vec<SeriesDesc>),
}

/// An `eval` command.
#[derive(Clone, Debug)]
pub struct Eval {
    /// 1-based line of the `eval` line.
    pub line: usize,
    pub expr: String,
    /// Where expected values are placed: a range query's steps; an instant query has
    /// `start == end == eval_ms` and `step == 0` unless `expect range vector` sets them.
    pub start_ms: i64,
    pub end_ms: i64,
    pub step_ms: i64,
    /// The time of an instant query.
    pub eval_ms: i64,
    pub is_range: bool,
    /// Old-style `eval_fail|eval_warn|eval_info|eval_ordered` flags.
    pub fail: bool,
    pub warn: bool,
    pub info: bool,
    pub ordered: bool,
    pub expects: Vec<(ExpectKind, MessageMatch)>,
    pub expected: Expected,
    /// `expect string` cases are not re-run as range queries.
    pub exclude_from_range: bool,
}

impl Eval {
    pub fn expects(&self, kind: ExpectKind) -> impl Iterator<Item = &MessageMatch> {
        self.expects.iter().filter(move |(k, _)| *k == kind).map(|(_, m)| m)
    }

    pub fn has(&self, kind: ExpectKind) -> bool {
        self.expects(kind).next().is_some()
    }

    pub fn is_fail(&self) -> bool {
        self.fail || self.has(ExpectKind::Fail)
    }

    pub fn is_ordered(&self) -> bool {
        self.ordered || self.has(ExpectKind::Ordered)
    }
}

/// A `load` command.
#[derive(Clone, Debug)]
pub struct Load {
    pub interval_ms: i64,
    /// `load_with_nhcb`: classic histograms are also loaded as native histograms.
    pub with_nhcb: bool,
    pub series: Vec<SeriesDesc>,
}

#[derive(Clone, Debug)]
pub enum Command {
    Load(Load),
    Clear,
    Eval(Box<Eval>),
}

/// Parses a whole script. Errors name the 1-based line.
pub fn parse_script(text: &str) -> Result<Vec<Command>, String> {
    let lines: Vec<String> = text
        .split('\n')
        .map(|l| {
            let trimmed = l.trim();
            if trimmed.starts_with('#') {
                String::new()
            } else {
                trimmed.to_owned()
            }
        })
        .collect();
    let patterns = Patterns::new();
    let mut commands = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = &lines[i];
        if line.is_empty() {
            i += 1;
            continue;
        }
        let word = line.split([' ', '\t']).next().unwrap_or_default().to_lowercase();
        if word == "clear" {
            commands.push(Command::Clear);
            i += 1;
        } else if word.starts_with("load") {
            let (next, load) = parse_load(&lines, i)?;
            commands.push(Command::Load(load));
            i = next;
        } else if word.starts_with("eval") {
            let (next, eval) = parse_eval(&lines, i, &patterns)?;
            commands.push(Command::Eval(Box::new(eval)));
            i = next;
        } else {
            return Err(format!("line {}: invalid command {line:?}", i + 1));
        }
    }
    Ok(commands)
}

struct Patterns {
    load: Regex,
    instant: Regex,
    range: Regex,
    expect: Regex,
}

impl Patterns {
    fn new() -> Self {
        let compile = |p: &str| Regex::new(p).expect("static pattern");
        Self {
            load: compile(r"^load(?:_(with_nhcb))?\s+(.+?)$"),
            instant: compile(
                r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$",
            ),
            range: compile(
                r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$",
            ),
            expect: compile(
                r"^expect\s+(ordered|fail|warn|no_warn|info|no_info)(?:\s+(regex|msg):(.+))?$",
            ),
        }
    }
}

/// Returns the index of the line after the block.
fn parse_load(lines: &[String], start: usize) -> Result<(usize, Load), String> {
    let patterns = Patterns::new();
    let caps = patterns
        .load
        .captures(&lines[start])
        .ok_or_else(|| format!("line {}: invalid load command", start + 1))?;
    let interval_ms = parse_duration_ms(&caps[2])
        .map_err(|e| format!("line {}: invalid step definition {:?}: {e}", start + 1, &caps[2]))?;
    let mut load = Load { interval_ms, with_nhcb: caps.get(1).is_some(), series: Vec::new() };
    let mut i = start + 1;
    while i < lines.len() && !lines[i].is_empty() {
        let desc = parse_series_desc(&lines[i]).map_err(|e| format!("line {}: {e}", i + 1))?;
        load.series.push(desc);
        i += 1;
    }
    Ok((i, load))
}

fn parse_eval(
    lines: &[String],
    start: usize,
    patterns: &Patterns,
) -> Result<(usize, Eval), String> {
    let line = &lines[start];
    let at = |e: String| format!("line {}: {e}", start + 1);
    let mut eval = Eval {
        line: start + 1,
        expr: String::new(),
        start_ms: 0,
        end_ms: 0,
        step_ms: 0,
        eval_ms: 0,
        is_range: false,
        fail: false,
        warn: false,
        info: false,
        ordered: false,
        expects: Vec::new(),
        expected: Expected::Nothing,
        exclude_from_range: false,
    };
    let modifier;
    if let Some(caps) = patterns.instant.captures(line) {
        modifier = caps.get(1).map(|m| m.as_str().to_owned());
        let time = caps.get(2).map_or("", |m| m.as_str());
        eval.start_ms = parse_duration_ms(time)
            .map_err(|e| at(format!("invalid timestamp definition {time:?}: {e}")))?;
        eval.end_ms = eval.start_ms;
        eval.eval_ms = eval.start_ms;
        eval.expr = caps[3].to_owned();
    } else if let Some(caps) = patterns.range.captures(line) {
        modifier = caps.get(1).map(|m| m.as_str().to_owned());
        eval.is_range = true;
        eval.start_ms = parse_duration_ms(&caps[2]).map_err(at)?;
        eval.end_ms = parse_duration_ms(&caps[3]).map_err(at)?;
        eval.step_ms = parse_duration_ms(&caps[4]).map_err(at)?;
        if eval.end_ms < eval.start_ms {
            return Err(at("end timestamp is before start timestamp".into()));
        }
        eval.expr = caps[5].to_owned();
    } else {
        return Err(at(format!("invalid evaluation command {line:?}")));
    }
    match modifier.as_deref() {
        Some("fail") => eval.fail = true,
        Some("warn") => eval.warn = true,
        Some("info") => eval.info = true,
        Some("ordered") => eval.ordered = true,
        _ => {}
    }

    let mut series = Vec::new();
    let mut expect_range_vector = false;
    let mut i = start + 1;
    while i < lines.len() && !lines[i].is_empty() {
        let def = &lines[i];
        let line_no = i + 1;
        let at_line = |e: String| format!("line {line_no}: {e}");
        i += 1;
        if eval.fail && def.starts_with("expected_fail_message") {
            let message = def["expected_fail_message".len()..].trim().to_owned();
            eval.expects.push((ExpectKind::Fail, MessageMatch::Exact(message)));
            break;
        }
        if eval.fail && def.starts_with("expected_fail_regexp") {
            let pattern = def["expected_fail_regexp".len()..].trim();
            let regex = Regex::new(pattern).map_err(|e| at_line(e.to_string()))?;
            eval.expects.push((ExpectKind::Fail, MessageMatch::Regex(regex)));
            break;
        }
        if let Some(rest) = def.strip_prefix("expect range vector") {
            // `expect range vector from <a> to <b> step <s>`: an instant query (at `b`) whose
            // result is a matrix, its values placed from `a` every `s`.
            let words: Vec<&str> = rest.split_whitespace().collect();
            let ["from", from, "to", to, "step", step] = words[..] else {
                return Err(at_line(format!("invalid range vector definition {def:?}")));
            };
            eval.start_ms = parse_duration_ms(from).map_err(&at_line)?;
            eval.end_ms = parse_duration_ms(to).map_err(&at_line)?;
            eval.step_ms = parse_duration_ms(step).map_err(&at_line)?;
            eval.eval_ms = eval.end_ms;
            expect_range_vector = true;
            eval.exclude_from_range = true;
            continue;
        }
        if let Some(rest) = def.strip_prefix("expect string") {
            eval.expected = Expected::String(parse_string_literal(rest.trim()).map_err(at_line)?);
            eval.exclude_from_range = true;
            continue;
        }
        if def.split(' ').next() == Some("expect") {
            let caps = patterns.expect.captures(def).ok_or_else(|| {
                at_line(
                    "invalid expect statement, must match `expect <type> <match_type>: <string>`"
                        .into(),
                )
            })?;
            let kind = match &caps[1] {
                "ordered" => ExpectKind::Ordered,
                "fail" => ExpectKind::Fail,
                "warn" => ExpectKind::Warn,
                "no_warn" => ExpectKind::NoWarn,
                "info" => ExpectKind::Info,
                _ => ExpectKind::NoInfo,
            };
            let matcher = match caps.get(2).map(|m| m.as_str()) {
                Some("msg") => MessageMatch::Exact(caps[3].trim().to_owned()),
                Some(_) => MessageMatch::Regex(
                    Regex::new(caps[3].trim()).map_err(|e| at_line(e.to_string()))?,
                ),
                None => MessageMatch::Any,
            };
            eval.expects.push((kind, matcher));
            continue;
        }
        if let Some(value) = parse_number(def) {
            eval.expected = Expected::Scalar(value);
            break;
        }
        let desc = parse_series_desc(def).map_err(at_line)?;
        if desc.values.len() > 1 && !eval.is_range && !expect_range_vector {
            return Err(at_line(
                "expecting multiple values in instant evaluation not allowed".into(),
            ));
        }
        series.push(desc);
    }
    if !series.is_empty() {
        eval.expected = Expected::Series(series);
    }
    // An expected scalar or fail message ends the block early: the next line is a command again,
    // as in Prometheus.
    Ok((i, eval))
}

/// `"…"`, `'…'` or `` `…` `` as Go's `strconv.Unquote` reads them.
fn parse_string_literal(text: &str) -> Result<String, String> {
    let invalid =
        || "expected string literal not valid - a quoted string literal is required".to_owned();
    let quote = text.chars().next().ok_or_else(invalid)?;
    if !matches!(quote, '"' | '\'' | '`') || text.len() < 2 || !text.ends_with(quote) {
        return Err(invalid());
    }
    let inner = &text[1..text.len() - 1];
    if quote == '`' {
        return Ok(inner.to_owned());
    }
    unescape(inner)
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
fn unescape(text: &str) -> Result<String, String> {
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

    #[test]
    fn script_commands() {
        let script = "load 1m\n  a{b=\"c\"} 1+1x2\n\n# comment\neval instant at 1m a\n  expect no_warn\n  a{b=\"c\"} 2\n\neval range from 0 to 2m step 1m a\n  expect warn msg: PromQL warning: x\n  a{b=\"c\"} 1 _ 3\n\neval instant at 0 1\n  1\nclear\n";
        let commands = parse_script(script).unwrap();
        assert_eq!(commands.len(), 5);
        let Command::Eval(eval) = &commands[2] else { panic!("expected eval") };
        assert!(eval.is_range);
        assert_eq!((eval.start_ms, eval.end_ms, eval.step_ms), (0, 120_000, 60_000));
        assert!(
            matches!(&eval.expects[0], (ExpectKind::Warn, MessageMatch::Exact(m)) if m == "PromQL warning: x")
        );
        let Expected::Series(series) = &eval.expected else { panic!("expected series") };
        assert_eq!(series[0].values[1], SeqValue::Omitted);
        let matrix = parse_script(
            "eval instant at 1m a[1m]\n  expect range vector from 0 to 1m step 30s\n  a 1 2 3\n",
        )
        .unwrap();
        let Command::Eval(matrix) = &matrix[0] else { panic!("expected eval") };
        assert_eq!(
            (matrix.start_ms, matrix.end_ms, matrix.step_ms, matrix.eval_ms),
            (0, 60_000, 30_000, 60_000)
        );
        assert!(matrix.exclude_from_range);
        let Command::Eval(scalar) = &commands[3] else { panic!("expected eval") };
        assert!(matches!(scalar.expected, Expected::Scalar(v) if v == 1.0));
    }
}
