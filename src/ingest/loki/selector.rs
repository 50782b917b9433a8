//! Parsing of the stream selector a Loki push carries as its stream labels (`{app="x", env="prod"}`).
//!
//! Loki parses this text with Prometheus' `parser.ParseMetric` (`pkg/logql/syntax`
//! `ParseLabels`, Loki 3.x), so the accepted grammar is PromQL's metric form:
//!
//! ```text
//! selector = ws [ metric_name ws ] "{" ws [ item { ws "," ws item } [ ws "," ] ] ws "}" ws
//! item     = label_name ws "=" ws string
//! ```
//!
//! * Label names are the legacy Prometheus charset `[a-zA-Z_][a-zA-Z0-9_]*`; an optional metric
//!   name in front (`[a-zA-Z_:][a-zA-Z0-9_:]*`) becomes `__name__`, as `ParseMetric` does.
//! * Only `=` is allowed: a push names a stream, it does not match one.
//! * Values are PromQL string literals: `"…"` or `'…'` with Go escapes (`\a \b \f \n \r \t \v
//!   \\`, the literal's own quote, `\ooo` octal, `\xHH`, `\uHHHH`, `\UHHHHHHHH`) and no raw
//!   newline, or `` `…` `` raw strings without escapes (carriage returns dropped, as Go's
//!   `strconv.Unquote` does). Whitespace is space, tab, CR and LF.
//!
//! The result is the labels in the order written, empty values included: dropping them, sorting,
//! the duplicate check and the limits are Loki's validation step (`validate.rs`), which names
//! the stream in its own messages.
//!
//! Invariants: never panics on any input; every error names the byte offset in the selector;
//! escapes that decode to bytes which are not UTF-8 are an error (Strata's labels are UTF-8
//! strings, where Go would carry the raw bytes).

use crate::model::Label;

/// Why a selector could not be parsed, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {offset}")]
pub struct SelectorError {
    pub offset: usize,
    pub what: &'static str,
}

/// Parses `text` into `out` (cleared first): one label per item, in the order written.
pub fn parse_selector(text: &str, out: &mut Vec<Label>) -> Result<(), SelectorError> {
    out.clear();
    let mut cursor = Cursor { bytes: text.as_bytes(), text, pos: 0 };
    cursor.skip_whitespace();
    if cursor.peek().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_' || b == b':') {
        let name = cursor.take_while(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':');
        out.push(Label::new(crate::model::METRIC_NAME, name));
        cursor.skip_whitespace();
    }
    cursor.expect(b'{', "expected '{' to open the label set")?;
    cursor.skip_whitespace();
    if cursor.peek() == Some(b'}') {
        cursor.pos += 1;
        return cursor.end();
    }
    loop {
        let name = cursor.label_name()?;
        cursor.skip_whitespace();
        cursor.equals()?;
        cursor.skip_whitespace();
        let value = cursor.string()?;
        out.push(Label { name: name.to_owned(), value });
        cursor.skip_whitespace();
        match cursor.peek() {
            Some(b',') => {
                cursor.pos += 1;
                cursor.skip_whitespace();
                // A trailing comma before the closing brace is allowed, as in PromQL.
                if cursor.peek() == Some(b'}') {
                    cursor.pos += 1;
                    return cursor.end();
                }
            }
            Some(b'}') => {
                cursor.pos += 1;
                return cursor.end();
            }
            Some(_) => return Err(cursor.error("expected ',' or '}' after a label value")),
            None => return Err(cursor.error("unexpected end of input: missing '}'")),
        }
    }
}

struct Cursor<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn error(&self, what: &'static str) -> SelectorError {
        SelectorError { offset: self.pos, what }
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// Consumes ASCII bytes matching `keep`; the result is a `&str` because the bytes matched
    /// are ASCII, so the cut is on a character boundary.
    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), SelectorError> {
        if self.peek() != Some(byte) {
            return Err(self.error(what));
        }
        self.pos += 1;
        Ok(())
    }

    fn end(&mut self) -> Result<(), SelectorError> {
        self.skip_whitespace();
        if self.pos < self.bytes.len() {
            return Err(self.error("unexpected text after the closing '}'"));
        }
        Ok(())
    }

    fn label_name(&mut self) -> Result<&'a str, SelectorError> {
        if !self.peek().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_') {
            return Err(self.error("expected a label name matching [a-zA-Z_][a-zA-Z0-9_]*"));
        }
        Ok(self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_'))
    }

    fn equals(&mut self) -> Result<(), SelectorError> {
        match (self.peek(), self.bytes.get(self.pos + 1)) {
            (Some(b'='), Some(b'~')) | (Some(b'!'), Some(b'=' | b'~')) => {
                Err(self.error("only '=' is allowed between a label name and its value"))
            }
            (Some(b'='), _) => {
                self.pos += 1;
                Ok(())
            }
            _ => Err(self.error("expected '=' after a label name")),
        }
    }

    fn string(&mut self) -> Result<String, SelectorError> {
        match self.peek() {
            Some(quote @ (b'"' | b'\'')) => self.quoted(quote),
            Some(b'`') => self.raw(),
            _ => Err(self.error("expected a quoted label value")),
        }
    }

    fn raw(&mut self) -> Result<String, SelectorError> {
        let open = self.pos;
        self.pos += 1;
        let Some(len) = self.bytes[self.pos..].iter().position(|&b| b == b'`') else {
            self.pos = open;
            return Err(self.error("unterminated raw string"));
        };
        let body = &self.text[self.pos..self.pos + len];
        self.pos += len + 1;
        Ok(body.chars().filter(|&c| c != '\r').collect())
    }

    fn quoted(&mut self, quote: u8) -> Result<String, SelectorError> {
        let open = self.pos;
        self.pos += 1;
        let mut value: Vec<u8> = Vec::new();
        loop {
            let run_start = self.pos;
            while self.peek().is_some_and(|b| b != quote && b != b'\\' && b != b'\n') {
                self.pos += 1;
            }
            value.extend_from_slice(&self.bytes[run_start..self.pos]);
            match self.peek() {
                Some(b'\\') => self.escape(quote, &mut value)?,
                Some(b'\n') => return Err(self.error("newline in a quoted label value")),
                Some(_) => {
                    self.pos += 1;
                    break;
                }
                None => {
                    self.pos = open;
                    return Err(self.error("unterminated quoted label value"));
                }
            }
        }
        String::from_utf8(value).map_err(|_| SelectorError {
            offset: open,
            what: "label value escapes decode to bytes that are not UTF-8",
        })
    }

    /// Decodes one escape sequence (the cursor is on the backslash) into `out`.
    fn escape(&mut self, quote: u8, out: &mut Vec<u8>) -> Result<(), SelectorError> {
        let start = self.pos;
        self.pos += 1;
        let Some(kind) = self.peek() else {
            return Err(self.error("escape sequence not terminated"));
        };
        self.pos += 1;
        let simple = match kind {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            b'\\' => Some(b'\\'),
            q if q == quote => Some(q),
            _ => None,
        };
        if let Some(byte) = simple {
            out.push(byte);
            return Ok(());
        }
        let (digits, base, is_byte) = match kind {
            b'0'..=b'7' => {
                self.pos -= 1; // the first octal digit is part of the value
                (3, 8, true)
            }
            b'x' => (2, 16, true),
            b'u' => (4, 16, false),
            b'U' => (8, 16, false),
            _ => {
                self.pos = start;
                return Err(self.error("unknown escape sequence"));
            }
        };
        let mut code: u32 = 0;
        for _ in 0..digits {
            let digit = self.peek().and_then(|b| (b as char).to_digit(base));
            let Some(digit) = digit else {
                return Err(self.error("illegal character in escape sequence"));
            };
            code = code * base + digit;
            self.pos += 1;
        }
        if is_byte {
            let Ok(byte) = u8::try_from(code) else {
                self.pos = start;
                return Err(self.error("octal escape sequence is over 255"));
            };
            out.push(byte);
            return Ok(());
        }
        let Some(c) = char::from_u32(code) else {
            self.pos = start;
            return Err(self.error("escape sequence is an invalid Unicode code point"));
        };
        let mut utf8 = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::logs::selector_of;
    use crate::model::Labels;
    use proptest::prelude::*;

    fn parse(text: &str) -> Result<Vec<(String, String)>, SelectorError> {
        let mut out = Vec::new();
        parse_selector(text, &mut out)?;
        Ok(out.into_iter().map(|l| (l.name, l.value)).collect())
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn parses_what_promtail_sends() {
        assert_eq!(
            parse(r#"{app="api", env="prod"}"#).unwrap(),
            pairs(&[("app", "api"), ("env", "prod")])
        );
        assert_eq!(
            parse(" {\n app = \"a\" ,env='b',\tx=`c`, } ").unwrap(),
            pairs(&[("app", "a"), ("env", "b"), ("x", "c")])
        );
        assert_eq!(parse("{}").unwrap(), pairs(&[]), "empty parses; validation rejects it");
        assert_eq!(parse(r#"{a=""}"#).unwrap(), pairs(&[("a", "")]));
    }

    #[test]
    fn metric_name_prefix_becomes_name_label() {
        assert_eq!(
            parse(r#"up:rate5m {job="x"}"#).unwrap(),
            pairs(&[("__name__", "up:rate5m"), ("job", "x")])
        );
    }

    #[test]
    fn go_escapes_are_decoded() {
        assert_eq!(
            parse(r#"{a="q\"b\\s\n\t\a\x41\101\u00e9\U0001F600"}"#).unwrap(),
            pairs(&[("a", "q\"b\\s\n\t\u{7}AAé😀")])
        );
        assert_eq!(parse(r"{a='it\'s'}").unwrap(), pairs(&[("a", "it's")]));
        assert_eq!(parse("{a=`x\\n\r\ny`}").unwrap(), pairs(&[("a", "x\\n\ny")]));
    }

    #[test]
    fn errors_name_the_offset() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 0, "expected '{'"),
            ("app", 3, "expected '{'"),
            (r#"{app="x""#, 8, "missing '}'"),
            (r#"{app=~"x"}"#, 4, "only '='"),
            (r#"{app!="x"}"#, 4, "only '='"),
            (r#"{1app="x"}"#, 1, "expected a label name"),
            (r#"{app-x="x"}"#, 4, "expected '='"),
            (r#"{app=x}"#, 5, "expected a quoted"),
            (r#"{app="x} "#, 5, "unterminated"),
            ("{app=\"a\nb\"}", 7, "newline"),
            (r#"{app="\q"}"#, 6, "unknown escape"),
            (r#"{app="\x4"}"#, 9, "illegal character"),
            (r#"{app="\777"}"#, 6, "over 255"),
            (r#"{app="\uD800"}"#, 6, "invalid Unicode"),
            (r#"{app="\xff"}"#, 5, "not UTF-8"),
            (r#"{app="x"} y"#, 10, "after the closing"),
            (r#"{app="x",,}"#, 9, "expected a label name"),
            (r#"{app="x" env="y"}"#, 9, "expected ','"),
            (r#"{a="\"#, 5, "not terminated"),
        ];
        for (text, offset, what) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.what.contains(what), "{text:?}: {err}");
            assert_eq!(err.offset, *offset, "{text:?}: {err}");
        }
    }

    proptest! {
        /// What Strata writes (`selector_of`, Go-quoted) parses back to the same labels.
        #[test]
        fn canonical_selectors_round_trip(
            raw in proptest::collection::vec(("[a-zA-Z_][a-zA-Z0-9_]{0,8}", "\\PC{0,12}|[\\x00-\\x7f\\u{80}-\\u{a0}]{0,6}"), 1..6)
        ) {
            let labels = Labels::from_pairs(raw);
            let text = selector_of(&labels);
            let mut out = Vec::new();
            parse_selector(&text, &mut out).unwrap();
            prop_assert_eq!(Labels::from_unsorted(out), labels);
        }

        /// Any input: an error or labels, never a panic.
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,40}|[{}=\"'`\\\\a-c,\\x00-\\x20]{0,30}") {
            let mut out = Vec::new();
            let _ = parse_selector(&text, &mut out);
        }
    }
}
