//! Request parameters of the Prometheus HTTP API, parsed as Prometheus 2.53 parses them
//! (`web/api/v1/api.go`: `parseTime`, `parseDuration`, `parseMatchersParam`, `parseLimitParam`;
//! `common/model` `ParseDuration`), with the same error texts.
//!
//! * Parameters come from the URL query and, for `POST application/x-www-form-urlencoded`, the
//!   body; a body value wins over a URL value of the same name (Go's `Request.FormValue`).
//! * Times are unix seconds (a float, rounded to the millisecond) or RFC 3339; durations are
//!   float seconds or Prometheus durations (`1h30m`, `5m`, `250ms`).

use std::fmt;

use promql_parser::label::{MatchOp as ParserOp, Matcher};
use promql_parser::parser::Expr;

use crate::promql::{QueryError, QueryErrorKind};
use crate::storage::head::{LabelMatcher, MatchOp};

/// `minTime` of the API (`time.Unix(math.MinInt64/1000+62135596801, 0)`) in milliseconds: the
/// default start of the metadata endpoints.
pub const MIN_TIME_MS: i64 = -9_223_309_901_258_974_000;
/// `maxTime` of the API (`time.Unix(math.MaxInt64/1000-62135596801, 999999999)`) in
/// milliseconds: the default end.
pub const MAX_TIME_MS: i64 = 9_223_309_901_258_974_999;
/// How clients (client_golang) spell the two bounds.
const MIN_TIME_TEXT: &str = "-292273086-05-16T16:47:06Z";
const MAX_TIME_TEXT: &str = "292277025-08-18T07:12:54.999999999Z";

/// The API's error types (`errorType`) and their status codes (`respondError`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    BadData,
    Execution,
    Timeout,
    Canceled,
    Internal,
    Unavailable,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadData => "bad_data",
            Self::Execution => "execution",
            Self::Timeout => "timeout",
            Self::Canceled => "canceled",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            Self::BadData => 400,
            Self::Execution => 422,
            Self::Timeout | Self::Canceled | Self::Unavailable => 503,
            Self::Internal => 500,
        }
    }
}

/// A failed API call: what the error envelope carries.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub kind: ErrorType,
    pub message: String,
}

impl ApiError {
    pub fn bad_data(message: impl Into<String>) -> Self {
        Self { kind: ErrorType::BadData, message: message.into() }
    }

    /// `invalid parameter "<name>": <why>` (`invalidParamError`).
    pub fn invalid_param(name: &str, why: impl fmt::Display) -> Self {
        Self::bad_data(format!("invalid parameter {name:?}: {why}"))
    }
}

impl From<QueryError> for ApiError {
    fn from(err: QueryError) -> Self {
        let kind = match err.kind {
            QueryErrorKind::BadData => ErrorType::BadData,
            QueryErrorKind::Execution => ErrorType::Execution,
            QueryErrorKind::Timeout => ErrorType::Timeout,
            QueryErrorKind::Canceled => ErrorType::Canceled,
            QueryErrorKind::Internal => ErrorType::Internal,
        };
        Self { kind, message: err.message }
    }
}

/// The form values of one request, body values first.
#[derive(Clone, Debug, Default)]
pub struct Params {
    values: Vec<(String, String)>,
}

impl Params {
    /// Parameters of the URL query `query` and of a form body (`body` is only read when
    /// `is_form`).
    pub fn parse(query: Option<&str>, body: &[u8], is_form: bool) -> Self {
        let mut values: Vec<(String, String)> = Vec::new();
        if is_form {
            values.extend(url::form_urlencoded::parse(body).into_owned());
        }
        if let Some(query) = query {
            values.extend(url::form_urlencoded::parse(query.as_bytes()).into_owned());
        }
        Self { values }
    }

    /// The first value of `name`; `""` when absent (Go's `FormValue`).
    pub fn get(&self, name: &str) -> &str {
        self.values.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.values.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    /// The time parameter `name` in milliseconds, or `default` when absent
    /// (`parseTimeParam`).
    pub fn time_or(&self, name: &str, default: i64) -> Result<i64, ApiError> {
        match self.get(name) {
            "" => Ok(default),
            text => parse_time(text).map_err(|why| {
                ApiError::invalid_param(name, format!("Invalid time value for '{name}': {why}"))
            }),
        }
    }

    /// `start` and `end` of the metadata endpoints (defaults: the whole time range).
    pub fn start_end(&self) -> Result<(i64, i64), ApiError> {
        Ok((self.time_or("start", MIN_TIME_MS)?, self.time_or("end", MAX_TIME_MS)?))
    }

    /// `limit`: 0 when absent (no limit), else a positive integer (`parseLimitParam`).
    pub fn limit(&self) -> Result<usize, ApiError> {
        let text = self.get("limit");
        if text.is_empty() {
            return Ok(0);
        }
        let limit: i64 = text.parse().map_err(|_| {
            ApiError::invalid_param(
                "limit",
                format!("strconv.Atoi: parsing {text:?}: invalid syntax"),
            )
        })?;
        if limit <= 0 {
            return Err(ApiError::invalid_param("limit", "limit must be positive"));
        }
        Ok(usize::try_from(limit).unwrap_or(usize::MAX))
    }

    /// `match[]` series selectors, each as one or more sets of matchers (a selector with `or`
    /// is a union of sets).
    pub fn matcher_sets(&self) -> Result<Vec<Vec<LabelMatcher>>, String> {
        let mut sets = Vec::new();
        for selector in self.all("match[]") {
            sets.extend(parse_selector(selector)?);
        }
        for set in &sets {
            if set.iter().all(LabelMatcher::matches_empty) {
                return Err(EMPTY_MATCHERS.into());
            }
        }
        Ok(sets)
    }
}

/// A time: unix seconds (float) or RFC 3339 → milliseconds (`parseTime`).
pub fn parse_time(text: &str) -> Result<i64, String> {
    let invalid = || format!("cannot parse {text:?} to a valid timestamp");
    if let Some(seconds) = parse_go_float(text) {
        if !seconds.is_finite() || seconds.abs() >= 9.2e15 {
            return Err(invalid());
        }
        // Whole seconds, plus the fraction rounded to the millisecond, as Prometheus does.
        let whole = seconds.trunc();
        let millis = ((seconds - whole) * 1000.0).round();
        return Ok(whole as i64 * 1000 + millis as i64);
    }
    match text {
        MIN_TIME_TEXT => return Ok(MIN_TIME_MS),
        MAX_TIME_TEXT => return Ok(MAX_TIME_MS),
        _ => {}
    }
    parse_rfc3339(text).ok_or_else(invalid)
}

/// A duration: float seconds or a Prometheus duration → milliseconds (`parseDuration`).
/// Negative float seconds are allowed here; callers reject them where Prometheus does.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    if let Some(seconds) = parse_go_float(text) {
        let nanos = seconds * 1e9;
        if nanos.is_nan() || nanos > i64::MAX as f64 || nanos < i64::MIN as f64 {
            return Err(format!("cannot parse {text:?} to a valid duration. It overflows int64"));
        }
        // time.Duration is nanoseconds; the engine steps in milliseconds.
        return Ok((nanos as i64) / 1_000_000);
    }
    parse_prometheus_duration(text)
        .ok_or_else(|| format!("cannot parse {text:?} to a valid duration"))
}

/// What Go's `strconv.ParseFloat` accepts, closely enough: decimal numbers with optional sign
/// and exponent, `Inf`/`NaN` spellings. No hex, no underscores.
fn parse_go_float(text: &str) -> Option<f64> {
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    let lower = body.to_ascii_lowercase();
    if matches!(lower.as_str(), "inf" | "infinity" | "nan") {
        return text.parse().ok();
    }
    let numeric = !body.is_empty()
        && body.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
        && body.starts_with(|c: char| c.is_ascii_digit() || c == '.');
    if !numeric {
        return None;
    }
    text.parse().ok()
}

/// `[0-9]+` units in the order y, w, d, h, m, s, ms, each at most once (`model.ParseDuration`).
fn parse_prometheus_duration(text: &str) -> Option<i64> {
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 24 * 3_600_000),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    if text == "0" {
        return Some(0);
    }
    let mut rest = text;
    let mut next_unit = 0;
    let mut total: i64 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let number: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let index = UNITS[next_unit..].iter().position(|(name, _)| *name == unit)? + next_unit;
        total = total.checked_add(number.checked_mul(UNITS[index].1)?)?;
        next_unit = index + 1;
    }
    Some(total)
}

/// RFC 3339 with optional fractional seconds (`time.RFC3339Nano`) → milliseconds.
fn parse_rfc3339(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 || bytes[4] != b'-' || bytes[7] != b'-' || bytes[10] != b'T' {
        return None;
    }
    if bytes[13] != b':' || bytes[16] != b':' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes().all(|b| b.is_ascii_digit()).then(|| part.parse().ok())?
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.find(|c: char| !c.is_ascii_digit()).unwrap_or(fraction.len());
        if digits == 0 || digits > 9 {
            return None;
        }
        let padded = format!("{:0<3}", &fraction[..digits.min(3)]);
        millis = padded.parse::<i64>().ok()?;
        rest = &fraction[digits..];
    }
    let offset_seconds = match rest {
        "Z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let zone = rest.get(1..)?;
            if zone.len() != 5 || zone.as_bytes()[2] != b':' {
                return None;
            }
            let hours: i64 = zone[..2].parse().ok()?;
            let minutes: i64 = zone[3..].parse().ok()?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            sign * (hours * 3600 + minutes * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    Some(seconds * 1000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

const EMPTY_MATCHERS: &str = "match[] must contain at least one non-empty matcher";

/// One `match[]` selector → its matcher sets (`parser.ParseMetricSelector`).
pub fn parse_selector(selector: &str) -> Result<Vec<Vec<LabelMatcher>>, String> {
    // The parser already rejects a selector of only empty-matching matchers; say it in the
    // API's words.
    let expr = promql_parser::parser::parse(selector).map_err(|why| {
        if why.contains("at least one non-empty matcher") {
            EMPTY_MATCHERS.to_owned()
        } else {
            why
        }
    })?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(format!("parse error: {selector:?} is not a series selector"));
    };
    let mut base = Vec::new();
    if let Some(name) = &vs.name {
        base.push(convert(&Matcher::new(ParserOp::Equal, "__name__", name))?);
    }
    for matcher in &vs.matchers.matchers {
        base.push(convert(matcher)?);
    }
    if vs.matchers.or_matchers.is_empty() {
        return Ok(vec![base]);
    }
    let mut sets = Vec::new();
    for group in &vs.matchers.or_matchers {
        let mut set = base.clone();
        for matcher in group {
            set.push(convert(matcher)?);
        }
        sets.push(set);
    }
    Ok(sets)
}

fn convert(matcher: &Matcher) -> Result<LabelMatcher, String> {
    let op = match matcher.op {
        ParserOp::Equal => MatchOp::Equal,
        ParserOp::NotEqual => MatchOp::NotEqual,
        ParserOp::Re(_) => MatchOp::RegexMatch,
        ParserOp::NotRe(_) => MatchOp::RegexNoMatch,
    };
    LabelMatcher::new(matcher.name.clone(), op, matcher.value.clone()).map_err(|e| e.to_string())
}

/// Prometheus 2.x label names (`model.LabelNameRE`: `^[a-zA-Z_][a-zA-Z0-9_]*$`).
pub fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_float_seconds_or_rfc3339() {
        assert_eq!(parse_time("1700000000.123"), Ok(1_700_000_000_123));
        assert_eq!(parse_time("1.5"), Ok(1500));
        assert_eq!(parse_time("-1.5"), Ok(-1500));
        assert_eq!(parse_time("1e3"), Ok(1_000_000));
        assert_eq!(parse_time("2015-07-01T20:10:51.781Z"), Ok(1_435_781_451_781));
        assert_eq!(parse_time("2015-07-01T22:10:51+02:00"), Ok(1_435_781_451_000));
        assert_eq!(parse_time("1970-01-01T00:00:00.5Z"), Ok(500));
        assert_eq!(parse_time(MAX_TIME_TEXT), Ok(MAX_TIME_MS));
        assert_eq!(parse_time(MIN_TIME_TEXT), Ok(MIN_TIME_MS));
        for bad in ["", "abc", "0x10", "2015-02-30T00:00:00Z", "2015-07-01 20:10:51Z", "1_000"] {
            assert_eq!(
                parse_time(bad),
                Err(format!("cannot parse {bad:?} to a valid timestamp")),
                "{bad}"
            );
        }
    }

    #[test]
    fn durations_are_float_seconds_or_prometheus_durations() {
        assert_eq!(parse_duration("15"), Ok(15_000));
        assert_eq!(parse_duration("0.5"), Ok(500));
        assert_eq!(parse_duration("-1"), Ok(-1000));
        assert_eq!(parse_duration("1m"), Ok(60_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("1d2h3m4s5ms"), Ok(93_784_005));
        assert_eq!(parse_duration("2w"), Ok(1_209_600_000));
        assert_eq!(parse_duration("0"), Ok(0));
        for bad in ["", "x", "1.5s", "30s1m", "1m1m", "-1s", "5 m"] {
            assert_eq!(
                parse_duration(bad),
                Err(format!("cannot parse {bad:?} to a valid duration")),
                "{bad}"
            );
        }
        assert!(parse_duration("1e300").unwrap_err().ends_with("It overflows int64"));
    }

    #[test]
    fn body_values_win_over_url_values() {
        let params = Params::parse(Some("query=1&time=5&match[]=a"), b"query=2&match[]=b", true);
        assert_eq!(params.get("query"), "2");
        assert_eq!(params.get("time"), "5");
        assert_eq!(params.all("match[]"), ["b", "a"]);
        assert_eq!(params.get("missing"), "");
        let not_form = Params::parse(Some("query=1"), b"query=2", false);
        assert_eq!(not_form.get("query"), "1");
    }

    #[test]
    fn limits_must_be_positive_integers() {
        let limit = |text: &str| Params::parse(Some(text), b"", false).limit();
        assert_eq!(limit(""), Ok(0));
        assert_eq!(limit("limit=3"), Ok(3));
        assert_eq!(
            limit("limit=0").unwrap_err().message,
            "invalid parameter \"limit\": limit must be positive"
        );
        assert_eq!(
            limit("limit=x").unwrap_err().message,
            "invalid parameter \"limit\": strconv.Atoi: parsing \"x\": invalid syntax"
        );
    }

    #[test]
    fn selectors_become_matcher_sets() {
        let sets = parse_selector(r#"up{job="a",instance=~"x.*"}"#).unwrap();
        assert_eq!(sets.len(), 1);
        let shown: Vec<String> = sets[0]
            .iter()
            .map(|m| format!("{}{}{}", m.name(), m.op().as_str(), m.value()))
            .collect();
        assert_eq!(shown, ["__name__=up", "job=a", "instance=~x.*"]);
        assert!(parse_selector("up(").is_err());
        assert!(parse_selector("sum(up)").is_err());
        let params = Params::parse(Some("match[]=%7Ba%3D%22%22%7D"), b"", false);
        assert_eq!(
            params.matcher_sets().unwrap_err(),
            "match[] must contain at least one non-empty matcher"
        );
    }

    #[test]
    fn label_names_follow_the_legacy_rule() {
        assert!(is_label_name("job"));
        assert!(is_label_name("_x1"));
        assert!(!is_label_name("a-b"));
        assert!(!is_label_name("1a"));
        assert!(!is_label_name(""));
    }
}
