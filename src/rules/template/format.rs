//! Go's number, time and `printf` formatting, as far as alert templates use it.
//!
//! Follows Go's `strconv.FormatFloat` (`%g` switches to an exponent when it is < -4 or ≥ the
//! precision, 6 for the shortest form; exponents have at least two digits), `fmt` verbs
//! (`%s %d %f %e %g %v %q %x %t %%` with flags `-+0` and width/precision), `time.Time.String`
//! in UTC and `time.Duration.String`.

use super::Value;

/// Formats `v` as Go's `%e`, `%f` or `%g` with an optional precision.
pub fn go_float(v: f64, verb: char, precision: Option<usize>) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    match verb {
        'f' | 'F' => format!("{:.*}", precision.unwrap_or(6), v),
        'e' | 'E' => {
            let (negative, digits, exp) = decimal(v, Some(precision.unwrap_or(6) + 1));
            exponent_form(negative, &digits, exp, precision.unwrap_or(6), true)
        }
        _ => {
            let significant = precision.map(|p| p.max(1));
            let (negative, mut digits, exp) = decimal(v, significant);
            while digits.len() > 1 && digits.ends_with('0') {
                digits.pop();
            }
            let eprec = significant.unwrap_or(6) as i32;
            if exp < -4 || exp >= eprec.max(if significant.is_none() { 6 } else { 0 }) {
                let shown = digits.len() - 1;
                return exponent_form(negative, &digits, exp, shown, false);
            }
            fixed_form(negative, &digits, exp)
        }
    }
}

/// Sign, significant digits (no point) and decimal exponent of `v`, rounded to `significant`
/// digits or shortest round-trip when `None`.
fn decimal(v: f64, significant: Option<usize>) -> (bool, String, i32) {
    let text = match significant {
        Some(n) => format!("{:.*e}", n.saturating_sub(1), v.abs()),
        None => format!("{:e}", v.abs()),
    };
    let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    (v.is_sign_negative() && v != 0.0, digits, exp.parse().unwrap_or(0))
}

fn exponent_form(negative: bool, digits: &str, exp: i32, decimals: usize, pad: bool) -> String {
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    out.push_str(&digits[..1]);
    let mut rest = digits[1..].to_owned();
    if pad {
        while rest.len() < decimals {
            rest.push('0');
        }
    }
    if !rest.is_empty() {
        out.push('.');
        out.push_str(&rest);
    }
    out.push('e');
    out.push(if exp < 0 { '-' } else { '+' });
    out.push_str(&format!("{:02}", exp.abs()));
    out
}

fn fixed_form(negative: bool, digits: &str, exp: i32) -> String {
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if exp < 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat((-exp - 1) as usize));
        out.push_str(digits);
        return out;
    }
    let int_len = exp as usize + 1;
    if digits.len() <= int_len {
        out.push_str(digits);
        out.push_str(&"0".repeat(int_len - digits.len()));
    } else {
        out.push_str(&digits[..int_len]);
        out.push('.');
        out.push_str(&digits[int_len..]);
    }
    out
}

/// Go's `time.Time.String()` of a UTC time: `2006-01-02 15:04:05.999999999 +0000 UTC`.
pub fn go_time(seconds: f64) -> String {
    go_time_nanos((seconds * 1e9).round() as i128)
}

/// [`go_time`] of an exact time in nanoseconds.
fn go_time_nanos(total_nanos: i128) -> String {
    let secs = total_nanos.div_euclid(1_000_000_000) as i64;
    let nanos = total_nanos.rem_euclid(1_000_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        of_day / 3600,
        (of_day / 60) % 60,
        of_day % 60
    );
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push_str(" +0000 UTC");
    out
}

/// RFC 3339 in UTC of a time in milliseconds, with the fraction Go's `time.RFC3339Nano` prints.
pub fn rfc3339_ms(ms: i64) -> String {
    let text = go_time_nanos(i128::from(ms) * 1_000_000);
    let (date_time, _) = text.split_once(" +").unwrap_or((&text, ""));
    format!("{}Z", date_time.replacen(' ', "T", 1))
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `1.5ms`, `0s`.
pub fn go_duration(seconds: f64) -> String {
    let nanos = (seconds * 1e9).round() as i128;
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    if n < 1_000 {
        return format!("{sign}{n}ns");
    }
    if n < 1_000_000 {
        return format!("{sign}{}µs", trim_fraction(n, 1_000));
    }
    if n < 1_000_000_000 {
        return format!("{sign}{}ms", trim_fraction(n, 1_000_000));
    }
    let hours = n / 3_600_000_000_000;
    let minutes = (n / 60_000_000_000) % 60;
    let secs = trim_fraction(n % 60_000_000_000, 1_000_000_000);
    if hours > 0 {
        return format!("{sign}{hours}h{minutes}m{secs}s");
    }
    if minutes > 0 {
        return format!("{sign}{minutes}m{secs}s");
    }
    format!("{sign}{secs}s")
}

fn trim_fraction(n: u128, unit: u128) -> String {
    let whole = n / unit;
    let frac = n % unit;
    if frac == 0 {
        return whole.to_string();
    }
    let width = unit.to_string().len() - 1;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Go's `fmt.Sprintf` for the verbs templates use.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let chars: Vec<char> = format.chars().collect();
    let mut next_arg = 0;
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '%' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        i += 1;
        let mut minus = false;
        let mut plus = false;
        let mut zero = false;
        while let Some(&flag) = chars.get(i) {
            match flag {
                '-' => minus = true,
                '+' => plus = true,
                '0' => zero = true,
                ' ' | '#' => {}
                _ => break,
            }
            i += 1;
        }
        let width_len = chars[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        let width: usize = chars[i..i + width_len].iter().collect::<String>().parse().unwrap_or(0);
        i += width_len;
        let mut precision = None;
        if chars.get(i) == Some(&'.') {
            i += 1;
            let len = chars[i..].iter().take_while(|c| c.is_ascii_digit()).count();
            precision = Some(chars[i..i + len].iter().collect::<String>().parse().unwrap_or(0));
            i += len;
        }
        let Some(&verb) = chars.get(i) else {
            out.push_str("%!(NOVERB)");
            break;
        };
        i += 1;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next_arg) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next_arg += 1;
        let mut text = format_one(verb, arg, precision);
        if plus && !text.starts_with('-') && matches!(arg, Value::Int(_) | Value::Float(_)) {
            text.insert(0, '+');
        }
        let len = text.chars().count();
        if len < width {
            let pad = width - len;
            if minus {
                text.push_str(&" ".repeat(pad));
            } else if zero && matches!(arg, Value::Int(_) | Value::Float(_)) {
                let sign_len = usize::from(text.starts_with(['-', '+']));
                text.insert_str(sign_len, &"0".repeat(pad));
            } else {
                text.insert_str(0, &" ".repeat(pad));
            }
        }
        out.push_str(&text);
    }
    if next_arg < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> =
            args[next_arg..].iter().map(|a| format!("{}={a}", a.type_name())).collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

fn format_one(verb: char, arg: &Value, precision: Option<usize>) -> String {
    let bad = || format!("%!{verb}({}={arg})", arg.type_name());
    match (verb, arg) {
        ('v', Value::Float(f)) => go_float(*f, 'g', precision),
        ('v', other) => other.to_string(),
        ('s', Value::Str(s)) => match precision {
            Some(p) => s.chars().take(p).collect(),
            None => s.clone(),
        },
        ('s', Value::Float(_) | Value::Int(_) | Value::Bool(_)) => bad(),
        ('s', other) => other.to_string(),
        ('q', Value::Str(s)) => go_quote(s),
        ('d', Value::Int(i)) => i.to_string(),
        ('t', Value::Bool(b)) => b.to_string(),
        ('f' | 'F' | 'e' | 'E' | 'g' | 'G', Value::Float(f)) => {
            go_float(*f, verb.to_ascii_lowercase(), precision)
        }
        ('f' | 'F' | 'e' | 'E' | 'g' | 'G', Value::Duration(f) | Value::Time(f)) => {
            go_float(*f, verb.to_ascii_lowercase(), precision)
        }
        ('x', Value::Int(i)) => format!("{i:x}"),
        ('X', Value::Int(i)) => format!("{i:X}"),
        ('x', Value::Str(s)) => s.bytes().map(|b| format!("{b:02x}")).collect(),
        _ => bad(),
    }
}

/// Go's `strconv.Quote` for printable text.
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_go() {
        assert_eq!(go_float(1.0, 'g', None), "1");
        assert_eq!(go_float(0.5, 'g', None), "0.5");
        assert_eq!(go_float(123456.0, 'g', None), "123456");
        assert_eq!(go_float(1e6, 'g', None), "1e+06");
        assert_eq!(go_float(1234567.0, 'g', None), "1.234567e+06");
        assert_eq!(go_float(0.0001, 'g', None), "0.0001");
        assert_eq!(go_float(0.00001, 'g', None), "1e-05");
        assert_eq!(go_float(1234.5678, 'g', Some(4)), "1235");
        assert_eq!(go_float(12345.0, 'g', Some(4)), "1.234e+04");
        assert_eq!(go_float(100000.0, 'g', Some(4)), "1e+05");
        assert_eq!(go_float(12.0, 'g', Some(4)), "12");
        assert_eq!(go_float(0.0, 'g', Some(4)), "0");
        assert_eq!(go_float(-2.5, 'f', Some(2)), "-2.50");
        assert_eq!(go_float(1500.0, 'e', None), "1.500000e+03");
        assert_eq!(go_float(f64::INFINITY, 'g', None), "+Inf");
    }

    #[test]
    fn sprintf_handles_common_verbs() {
        let args = [Value::Str("a".into()), Value::Int(7), Value::Float(2.345)];
        assert_eq!(sprintf("%s-%d-%.2f", &args), "a-7-2.35");
        assert_eq!(
            sprintf(
                "%5d|%-3s|%05.1f",
                &[Value::Int(42), Value::Str("x".into()), Value::Float(1.75)]
            ),
            "   42|x  |001.8"
        );
        assert_eq!(
            sprintf("%q %v %%", &[Value::Str("hi\"".into()), Value::Float(0.5)]),
            "\"hi\\\"\" 0.5 %"
        );
        assert_eq!(sprintf("%d", &[Value::Float(1.5)]), "%!d(float64=1.5)");
        assert_eq!(sprintf("%s", &[]), "%!s(MISSING)");
    }

    #[test]
    fn times_and_durations_print_like_go() {
        assert_eq!(go_time(0.0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(go_time(1_704_067_200.5), "2024-01-01 00:00:00.5 +0000 UTC");
        assert_eq!(rfc3339_ms(1_704_067_200_000), "2024-01-01T00:00:00Z");
        assert_eq!(go_duration(3661.0), "1h1m1s");
        assert_eq!(go_duration(90.5), "1m30.5s");
        assert_eq!(go_duration(0.0015), "1.5ms");
        assert_eq!(go_duration(0.0), "0s");
    }
}
