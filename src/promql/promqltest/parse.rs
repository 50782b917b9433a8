//! Parsing of `promqltest` scripts into commands (series lines are read by [`super::series`]).
//!
//! Follows Prometheus' `promql/promqltest/test.go` (v3.x: `getLines`, `parseLoad`, `parseEval`,
//! `parseExpect`, `parseAsStringLiteral`). Lines are trimmed and `#` comment lines become blank; a blank line ends a `load` or `eval`
//! block, exactly as in Prometheus.

use regex::Regex;

use super::series::{parse_duration_ms, parse_number, parse_series_desc, unescape, SeriesDesc};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promql::promqltest::series::SeqValue;

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
