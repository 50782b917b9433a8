//! Lexing and parsing of Go `text/template` source into a [`Node`] tree.
//!
//! Follows the grammar in Go's `text/template/parse` (lex.go, parse.go): actions `{{ … }}` with
//! trim markers (`{{- ` and ` -}}`, the space is required), comments `{{/* … */}}`, pipelines of
//! commands separated by `|`, variable declarations `$x := …` and assignments `$x = …`, and the
//! `if`/`else if`/`else`/`range`/`with`/`define`/`template`/`block`/`end` keywords. Like Go, an
//! undefined variable or function is a parse error.

use std::collections::HashMap;

/// A parse error, formatted as Go formats it: `template: NAME:LINE: MESSAGE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub name: String,
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "template: {}:{}: {}", self.name, self.line, self.message)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Text(String),
    Action(Pipeline),
    If { branches: Vec<(Pipeline, Vec<Node>)>, otherwise: Vec<Node> },
    Range { pipe: Pipeline, body: Vec<Node>, otherwise: Vec<Node> },
    With { pipe: Pipeline, body: Vec<Node>, otherwise: Vec<Node> },
    Template { name: String, pipe: Option<Pipeline> },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Pipeline {
    pub line: usize,
    /// Variables declared (`:=`) or assigned (`=`) by the pipeline.
    pub vars: Vec<String>,
    pub assign: bool,
    pub commands: Vec<Vec<Arg>>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    /// `.` followed by fields: `.Labels.job` is `Field(["Labels", "job"])`, `.` is `Field([])`.
    Field(Vec<String>),
    /// `$x.a.b`.
    Var(String, Vec<String>),
    /// A function name.
    Func(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    /// `( pipeline )` with optional fields after it.
    Pipe(Box<Pipeline>, Vec<String>),
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Field(String),
    Var(String),
    Str(String),
    Num(String),
    Declare,
    Assign,
    Pipe,
    LParen,
    RParen,
    Comma,
}

/// Text and actions of the source, in order, with their line numbers.
enum Piece {
    Text(String),
    Action(Vec<Tok>, usize),
}

pub type Defines = HashMap<String, Vec<Node>>;

/// Parses `text`; `predefined` are variables the caller defines before execution;
/// `functions` are the names a command may call.
pub fn parse(
    name: &str,
    text: &str,
    predefined: &[&str],
    functions: &dyn Fn(&str) -> bool,
) -> Result<(Vec<Node>, Defines), ParseError> {
    let pieces = lex(name, text)?;
    let mut parser = Parser {
        name,
        pieces,
        pos: 0,
        vars: predefined.iter().map(|v| (*v).to_owned()).chain(["$".to_owned()]).collect(),
        functions,
        defines: HashMap::new(),
    };
    let (nodes, end) = parser.list()?;
    if let Some((keyword, line)) = end {
        return Err(parser.error(line, format!("unexpected {{{{{keyword}}}}}")));
    }
    Ok((nodes, parser.defines))
}

fn lex(name: &str, text: &str) -> Result<Vec<Piece>, ParseError> {
    let mut pieces = Vec::new();
    let mut rest = text;
    let mut line = 1;
    let mut trim_next_text = false;
    while !rest.is_empty() {
        let Some(start) = rest.find("{{") else {
            push_text(&mut pieces, rest, trim_next_text, false);
            break;
        };
        let after_open = &rest[start + 2..];
        let trim_left = after_open.starts_with("- ")
            || after_open.starts_with("-\t")
            || after_open.starts_with("-\n")
            || after_open.starts_with("-\r");
        push_text(&mut pieces, &rest[..start], trim_next_text, trim_left);
        line += rest[..start].matches('\n').count();
        let body_start = if trim_left { 2 } else { 0 };
        let body = &after_open[body_start..];
        let (inner, close_len, trim_right) = find_close(body).ok_or_else(|| ParseError {
            name: name.to_owned(),
            line,
            message: "unclosed action".to_owned(),
        })?;
        let action = &body[..inner];
        let action_line = line;
        line += action.matches('\n').count();
        rest = &body[inner + close_len..];
        trim_next_text = trim_right;
        let trimmed = action.trim();
        if trimmed.starts_with("/*") {
            if !trimmed.ends_with("*/") {
                return Err(ParseError {
                    name: name.to_owned(),
                    line: action_line,
                    message: "unclosed comment".to_owned(),
                });
            }
            continue;
        }
        let tokens = tokens(action).map_err(|message| ParseError {
            name: name.to_owned(),
            line: action_line,
            message,
        })?;
        pieces.push(Piece::Action(tokens, action_line));
    }
    Ok(pieces)
}

fn push_text(pieces: &mut Vec<Piece>, text: &str, trim_start: bool, trim_end: bool) {
    let mut text = text;
    if trim_start {
        text = text.trim_start();
    }
    if trim_end {
        text = text.trim_end();
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text.to_owned()));
    }
}

/// The end of the action body: `(offset of the close, its length, trim marker)`. Quoted strings
/// may contain `}}`.
fn find_close(body: &str) -> Option<(usize, usize, bool)> {
    let bytes = body.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(q) = quote {
            if b == b'\\' && q == b'"' {
                i += 2;
                continue;
            }
            if b == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        match b {
            b'"' | b'`' | b'\'' => quote = Some(b),
            b' ' | b'\t' | b'\n' | b'\r' if body[i + 1..].starts_with("-}}") => {
                return Some((i, 4, true));
            }
            b'}' if body[i..].starts_with("}}") => return Some((i, 2, false)),
            _ => {}
        }
        i += 1;
    }
    None
}

fn tokens(action: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = action.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let ident_char = |c: char| c.is_alphanumeric() || c == '_';
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '|' => {
                out.push(Tok::Pipe);
                i += 1;
            }
            '(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                out.push(Tok::RParen);
                i = fields_after(&chars, i + 1, &mut out);
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                out.push(Tok::Declare);
                i += 2;
            }
            '=' => {
                out.push(Tok::Assign);
                i += 1;
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(&ch) = chars.get(i) else {
                        return Err("unterminated quoted string".into());
                    };
                    i += 1;
                    match ch {
                        '"' => break,
                        '\\' => {
                            let esc = chars.get(i).copied().ok_or("unterminated quoted string")?;
                            i += 1;
                            s.push(match esc {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                '0' => '\0',
                                other => other,
                            });
                        }
                        other => s.push(other),
                    }
                }
                out.push(Tok::Str(s));
            }
            '`' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&ch| ch == '`')
                    .ok_or("unterminated raw quoted string")?;
                out.push(Tok::Str(chars[i + 1..i + 1 + end].iter().collect()));
                i += end + 2;
            }
            '\'' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&ch| ch == '\'')
                    .ok_or("unterminated character constant")?;
                let ch = chars.get(i + 1).copied().unwrap_or('\0');
                out.push(Tok::Num((ch as u32).to_string()));
                i += end + 2;
            }
            '$' => {
                let len = chars[i + 1..].iter().take_while(|&&ch| ident_char(ch)).count();
                out.push(Tok::Var(chars[i..i + 1 + len].iter().collect()));
                i += 1 + len;
                i = fields_after(&chars, i, &mut out);
            }
            '.' if !chars.get(i + 1).is_some_and(char::is_ascii_digit) => {
                let len = chars[i + 1..].iter().take_while(|&&ch| ident_char(ch)).count();
                out.push(Tok::Field(chars[i + 1..i + 1 + len].iter().collect()));
                i += 1 + len;
                i = fields_after(&chars, i, &mut out);
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => {
                let len = chars[i..]
                    .iter()
                    .enumerate()
                    .take_while(|&(k, &ch)| {
                        ch.is_ascii_alphanumeric()
                            || ch == '.'
                            || ch == '_'
                            || (k == 0 && (ch == '-' || ch == '+'))
                            || ((ch == '-' || ch == '+')
                                && matches!(chars[i + k - 1], 'e' | 'E' | 'p' | 'P'))
                    })
                    .count();
                out.push(Tok::Num(chars[i..i + len].iter().collect()));
                i += len;
            }
            c if ident_char(c) => {
                let len = chars[i..].iter().take_while(|&&ch| ident_char(ch)).count();
                out.push(Tok::Ident(chars[i..i + len].iter().collect()));
                i += len;
                i = fields_after(&chars, i, &mut out);
            }
            other => return Err(format!("unexpected {other:?} in command")),
        }
    }
    Ok(out)
}

/// Chained `.field`s right after a term (no space between) become `Field` tokens marked as
/// chained by a leading NUL, so the parser can tell `$x.a` from `$x .a`.
fn fields_after(chars: &[char], mut i: usize, out: &mut Vec<Tok>) -> usize {
    while chars.get(i) == Some(&'.') {
        let len =
            chars[i + 1..].iter().take_while(|&&ch| ch.is_alphanumeric() || ch == '_').count();
        if len == 0 {
            break;
        }
        out.push(Tok::Field(format!("\0{}", chars[i + 1..i + 1 + len].iter().collect::<String>())));
        i += 1 + len;
    }
    i
}

struct Parser<'a> {
    name: &'a str,
    pieces: Vec<Piece>,
    pos: usize,
    /// Variables in scope, innermost last.
    vars: Vec<String>,
    functions: &'a dyn Fn(&str) -> bool,
    defines: Defines,
}

/// The keyword that ended a list (`end`, `else`, `else if …`) with its line and any tokens after
/// the keyword.
type ListEnd = Option<(String, usize)>;

impl Parser<'_> {
    fn error(&self, line: usize, message: String) -> ParseError {
        ParseError { name: self.name.to_owned(), line, message }
    }

    /// Nodes up to an `end`/`else` (returned with its line) or the end of input. The tokens
    /// after `else` (as in `else if x`) are left in `self.pending_else`.
    fn list(&mut self) -> Result<(Vec<Node>, ListEnd), ParseError> {
        let mut nodes = Vec::new();
        while self.pos < self.pieces.len() {
            let index = self.pos;
            self.pos += 1;
            let (tokens, line) = match &self.pieces[index] {
                Piece::Text(text) => {
                    nodes.push(Node::Text(text.clone()));
                    continue;
                }
                Piece::Action(tokens, line) => (tokens.clone(), *line),
            };
            let keyword = match tokens.first() {
                Some(Tok::Ident(word)) => word.as_str(),
                _ => "",
            };
            match keyword {
                "end" => return Ok((nodes, Some(("end".into(), line)))),
                "else" => {
                    // Keep the tokens after `else` for the caller (`else if`, `else with`).
                    self.pieces[index] = Piece::Action(tokens[1..].to_vec(), line);
                    self.pos = index;
                    return Ok((nodes, Some(("else".into(), line))));
                }
                "if" | "with" | "range" => nodes.push(self.control(keyword, &tokens[1..], line)?),
                "define" | "block" => {
                    let Some(Tok::Str(name)) = tokens.get(1) else {
                        return Err(
                            self.error(line, format!("unexpected token in {keyword} clause"))
                        );
                    };
                    let pipe = if keyword == "block" {
                        Some(self.pipeline(&tokens[2..], line, false)?)
                    } else {
                        None
                    };
                    let saved = std::mem::replace(&mut self.vars, vec!["$".to_owned()]);
                    let (body, end) = self.list()?;
                    self.vars = saved;
                    if end.as_ref().map(|e| e.0.as_str()) != Some("end") {
                        return Err(self.error(line, "unexpected EOF".into()));
                    }
                    self.defines.insert(name.clone(), body);
                    if let Some(pipe) = pipe {
                        nodes.push(Node::Template { name: name.clone(), pipe: Some(pipe) });
                    }
                }
                "template" => {
                    let Some(Tok::Str(name)) = tokens.get(1) else {
                        return Err(self.error(line, "unexpected token in template clause".into()));
                    };
                    let pipe = if tokens.len() > 2 {
                        Some(self.pipeline(&tokens[2..], line, false)?)
                    } else {
                        None
                    };
                    nodes.push(Node::Template { name: name.clone(), pipe });
                }
                _ => {
                    let pipe = self.pipeline(&tokens, line, true)?;
                    nodes.push(Node::Action(pipe));
                }
            }
        }
        Ok((nodes, None))
    }

    fn control(&mut self, keyword: &str, tokens: &[Tok], line: usize) -> Result<Node, ParseError> {
        let scope = self.vars.len();
        let pipe = self.pipeline(tokens, line, true)?;
        let (body, end) = self.list()?;
        let mut branches = vec![(pipe, body)];
        let mut otherwise = Vec::new();
        let mut end = end;
        loop {
            match end {
                None => return Err(self.error(line, "unexpected EOF".into())),
                Some((ref word, _)) if word == "end" => break,
                Some((_, else_line)) => {
                    self.vars.truncate(scope);
                    let Piece::Action(rest, _) = &self.pieces[self.pos] else {
                        return Err(self.error(else_line, "unexpected else".into()));
                    };
                    let rest = rest.clone();
                    self.pos += 1;
                    let chained = matches!(rest.first(), Some(Tok::Ident(w)) if w == keyword)
                        && keyword != "range";
                    if chained {
                        let pipe = self.pipeline(&rest[1..], else_line, true)?;
                        let (body, next_end) = self.list()?;
                        branches.push((pipe, body));
                        end = next_end;
                        continue;
                    }
                    if !rest.is_empty() {
                        return Err(self.error(else_line, "unexpected tokens after else".into()));
                    }
                    let (body, next_end) = self.list()?;
                    otherwise = body;
                    if next_end.as_ref().map(|e| e.0.as_str()) != Some("end") {
                        return Err(self.error(else_line, "expected end; found else".into()));
                    }
                    break;
                }
            }
        }
        self.vars.truncate(scope);
        Ok(match keyword {
            "if" => Node::If { branches, otherwise },
            "with" => {
                // `with a`/`else with b` nest as with-in-else.
                let mut node_otherwise = otherwise;
                let mut iter = branches.into_iter().rev();
                let mut last = iter.next().expect("one branch at least");
                for earlier in iter {
                    node_otherwise =
                        vec![Node::With { pipe: last.0, body: last.1, otherwise: node_otherwise }];
                    last = earlier;
                }
                Node::With { pipe: last.0, body: last.1, otherwise: node_otherwise }
            }
            _ => {
                let (pipe, body) = branches.into_iter().next().expect("one branch");
                Node::Range { pipe, body, otherwise }
            }
        })
    }

    fn pipeline(
        &mut self,
        tokens: &[Tok],
        line: usize,
        decl_ok: bool,
    ) -> Result<Pipeline, ParseError> {
        let mut tokens = tokens;
        let mut vars = Vec::new();
        let mut assign = false;
        // `$x :=`, `$x =`, `$i, $e :=`
        let decl_end = tokens.iter().position(|t| matches!(t, Tok::Declare | Tok::Assign));
        if let Some(end) = decl_end.filter(|_| decl_ok) {
            let names: Vec<&Tok> = tokens[..end].iter().filter(|t| **t != Tok::Comma).collect();
            if names.iter().all(|t| matches!(t, Tok::Var(_))) && !names.is_empty() {
                assign = tokens[end] == Tok::Assign;
                for t in names {
                    if let Tok::Var(v) = t {
                        if assign && !self.vars.contains(v) {
                            return Err(self.error(line, format!("undefined variable \"{v}\"")));
                        }
                        vars.push(v.clone());
                    }
                }
                tokens = &tokens[end + 1..];
            }
        }
        let mut commands = Vec::new();
        let mut pos = 0;
        let mut current = Vec::new();
        while pos < tokens.len() {
            if tokens[pos] == Tok::Pipe {
                if current.is_empty() {
                    return Err(self.error(line, "missing command".into()));
                }
                commands.push(std::mem::take(&mut current));
                pos += 1;
                continue;
            }
            let (arg, used) = self.operand(&tokens[pos..], line)?;
            current.push(arg);
            pos += used;
        }
        if current.is_empty() {
            return Err(self.error(line, "missing value for command".into()));
        }
        commands.push(current);
        if !assign {
            self.vars.extend(vars.iter().cloned());
        }
        Ok(Pipeline { line, vars, assign, commands })
    }

    /// One operand and how many tokens it took.
    fn operand(&mut self, tokens: &[Tok], line: usize) -> Result<(Arg, usize), ParseError> {
        let chained = |from: usize| -> Vec<String> {
            tokens[from..]
                .iter()
                .map_while(|t| match t {
                    Tok::Field(f) if f.starts_with('\0') => Some(f[1..].to_owned()),
                    _ => None,
                })
                .collect()
        };
        match &tokens[0] {
            Tok::Field(f) => {
                let mut fields = if f.is_empty() { Vec::new() } else { vec![f.clone()] };
                let more = chained(1);
                let used = 1 + more.len();
                fields.extend(more);
                Ok((Arg::Field(fields), used))
            }
            Tok::Var(v) => {
                if !self.vars.contains(v) {
                    return Err(self.error(line, format!("undefined variable \"{v}\"")));
                }
                let fields = chained(1);
                let used = 1 + fields.len();
                Ok((Arg::Var(v.clone(), fields), used))
            }
            Tok::Str(s) => Ok((Arg::Str(s.clone()), 1)),
            Tok::Num(n) => Ok((
                parse_number(n)
                    .ok_or_else(|| self.error(line, format!("bad number syntax: {n:?}")))?,
                1,
            )),
            Tok::Ident(word) => match word.as_str() {
                "true" => Ok((Arg::Bool(true), 1)),
                "false" => Ok((Arg::Bool(false), 1)),
                "nil" => Ok((Arg::Nil, 1)),
                name if (self.functions)(name) => Ok((Arg::Func(name.to_owned()), 1)),
                name => Err(self.error(line, format!("function \"{name}\" not defined"))),
            },
            Tok::LParen => {
                let mut depth = 0;
                let mut close = None;
                for (k, t) in tokens.iter().enumerate() {
                    match t {
                        Tok::LParen => depth += 1,
                        Tok::RParen => {
                            depth -= 1;
                            if depth == 0 {
                                close = Some(k);
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let close = close.ok_or_else(|| self.error(line, "unclosed left paren".into()))?;
                let inner = self.pipeline(&tokens[1..close], line, true)?;
                let fields = chained(close + 1);
                let used = close + 1 + fields.len();
                Ok((Arg::Pipe(Box::new(inner), fields), used))
            }
            Tok::RParen => Err(self.error(line, "unexpected right paren".into())),
            other => Err(self.error(line, format!("unexpected {other:?} in operand"))),
        }
    }
}

fn parse_number(text: &str) -> Option<Arg> {
    let clean = text.replace('_', "");
    if let Ok(i) = clean.parse::<i64>() {
        return Some(Arg::Int(i));
    }
    let (negative, digits) = match clean.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean)),
    };
    let radix = [("0x", 16), ("0X", 16), ("0o", 8), ("0O", 8), ("0b", 2), ("0B", 2)]
        .iter()
        .find_map(|(prefix, radix)| digits.strip_prefix(prefix).map(|rest| (rest, *radix)));
    if let Some((rest, radix)) = radix {
        let value = i64::from_str_radix(rest, radix).ok()?;
        return Some(Arg::Int(if negative { -value } else { value }));
    }
    clean.parse::<f64>().ok().map(Arg::Float)
}
