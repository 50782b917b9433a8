//! Execution of a parsed template: Go `text/template`'s `exec.go` semantics for the supported
//! subset (dot, variables with lexical scope, pipelines whose previous value becomes the last
//! argument of the next command, `if`/`range`/`with`/`template`).

use super::funcs;
use super::parse::{Arg, Node, Pipeline};
use super::{ExecError, Template, Value};

/// Runs a PromQL query for the `query` function: samples as [`Value::sample`]s.
pub type QueryFn<'a> = dyn Fn(&str) -> Result<Vec<Value>, String> + 'a;

/// Limit on nested `template` calls (Go's `maxExecDepth` is 100000; alert templates need few).
const MAX_DEPTH: usize = 1000;

pub(super) struct Exec<'a> {
    template: &'a Template,
    vars: Vec<(String, Value)>,
    pub(super) query: Option<&'a QueryFn<'a>>,
    pub(super) external_url: &'a str,
    out: String,
    line: usize,
    depth: usize,
}

pub(super) fn run(
    template: &Template,
    data: &Value,
    vars: Vec<(String, Value)>,
    query: Option<&QueryFn<'_>>,
    external_url: &str,
) -> Result<String, ExecError> {
    let mut exec =
        Exec { template, vars, query, external_url, out: String::new(), line: 1, depth: 0 };
    exec.nodes(&template.root, data).map_err(|message| ExecError {
        name: template.name.clone(),
        line: exec.line,
        message,
    })?;
    Ok(exec.out)
}

impl Exec<'_> {
    fn nodes(&mut self, nodes: &[Node], dot: &Value) -> Result<(), String> {
        for node in nodes {
            self.node(node, dot)?;
        }
        Ok(())
    }

    fn node(&mut self, node: &Node, dot: &Value) -> Result<(), String> {
        match node {
            Node::Text(text) => self.out.push_str(text),
            Node::Action(pipe) => {
                let value = self.pipeline(pipe, dot)?;
                if pipe.vars.is_empty() {
                    self.out.push_str(&printable(&value)?);
                }
            }
            Node::If { branches, otherwise } => {
                let scope = self.vars.len();
                let mut taken = false;
                for (pipe, body) in branches {
                    if self.pipeline(pipe, dot)?.truthy() {
                        self.nodes(body, dot)?;
                        taken = true;
                        break;
                    }
                }
                if !taken {
                    self.nodes(otherwise, dot)?;
                }
                self.vars.truncate(scope);
            }
            Node::With { pipe, body, otherwise } => {
                let scope = self.vars.len();
                let value = self.pipeline(pipe, dot)?;
                if value.truthy() {
                    self.nodes(body, &value)?;
                } else {
                    self.nodes(otherwise, dot)?;
                }
                self.vars.truncate(scope);
            }
            Node::Range { pipe, body, otherwise } => self.range(pipe, body, otherwise, dot)?,
            Node::Template { name, pipe } => {
                let data = match pipe {
                    Some(pipe) => self.pipeline(pipe, dot)?,
                    None => Value::Nil,
                };
                let text = self.call_template(name, &data)?;
                self.out.push_str(&text);
            }
        }
        Ok(())
    }

    fn range(
        &mut self,
        pipe: &Pipeline,
        body: &[Node],
        otherwise: &[Node],
        dot: &Value,
    ) -> Result<(), String> {
        let scope = self.vars.len();
        // Evaluate without declaring: range declares per element.
        let bare = Pipeline { vars: Vec::new(), assign: false, ..pipe.clone() };
        let value = self.pipeline(&bare, dot)?;
        let items: Vec<(Value, Value)> = match value {
            Value::List(list) => {
                list.into_iter().enumerate().map(|(i, v)| (Value::Int(i as i64), v)).collect()
            }
            Value::Map(map) => map.into_iter().map(|(k, v)| (Value::Str(k), v)).collect(),
            Value::Int(n) => (0..n).map(|i| (Value::Int(i), Value::Int(i))).collect(),
            Value::Nil => Vec::new(),
            other => return Err(format!("range can't iterate over {other}")),
        };
        if items.is_empty() {
            self.nodes(otherwise, dot)?;
        }
        for (key, item) in items {
            match pipe.vars.as_slice() {
                [] => {}
                [elem] => self.vars.push((elem.clone(), item.clone())),
                [k, elem, ..] => {
                    self.vars.push((k.clone(), key));
                    self.vars.push((elem.clone(), item.clone()));
                }
            }
            self.nodes(body, &item)?;
            self.vars.truncate(scope);
        }
        Ok(())
    }

    pub(super) fn call_template(&mut self, name: &str, data: &Value) -> Result<String, String> {
        let body = self.template.defines.get(name).ok_or_else(|| {
            format!(
                "template: no template {name:?} associated with template {:?}",
                self.template.name
            )
        })?;
        if self.depth >= MAX_DEPTH {
            return Err("exceeded maximum template depth".into());
        }
        let saved_vars = std::mem::replace(&mut self.vars, vec![("$".to_owned(), data.clone())]);
        let saved_out = std::mem::take(&mut self.out);
        self.depth += 1;
        let result = self.nodes(body, data);
        self.depth -= 1;
        self.vars = saved_vars;
        let text = std::mem::replace(&mut self.out, saved_out);
        result.map(|()| text)
    }

    fn pipeline(&mut self, pipe: &Pipeline, dot: &Value) -> Result<Value, String> {
        self.line = pipe.line;
        let mut value: Option<Value> = None;
        for command in &pipe.commands {
            value = Some(self.command(command, dot, value)?);
        }
        let value = value.unwrap_or(Value::Nil);
        for name in &pipe.vars {
            if pipe.assign {
                if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    slot.1 = value.clone();
                }
            } else {
                self.vars.push((name.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn command(
        &mut self,
        args: &[Arg],
        dot: &Value,
        piped: Option<Value>,
    ) -> Result<Value, String> {
        if let Arg::Func(name) = &args[0] {
            let mut values = Vec::with_capacity(args.len());
            for arg in &args[1..] {
                values.push(self.operand(arg, dot)?);
            }
            if let Some(piped) = piped {
                values.push(piped);
            }
            return funcs::call(self, name, values)
                .map_err(|e| format!("error calling {name}: {e}"));
        }
        if args.len() > 1 || piped.is_some() {
            // Go: method calls on fields are not supported here, so every argument is an error.
            return Err(format!("can't give argument to non-function {}", describe(&args[0])));
        }
        self.operand(&args[0], dot)
    }

    fn operand(&mut self, arg: &Arg, dot: &Value) -> Result<Value, String> {
        match arg {
            Arg::Field(fields) => fields_of(dot.clone(), fields),
            Arg::Var(name, fields) => {
                let value = self
                    .vars
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| format!("undefined variable: {name}"))?;
                fields_of(value, fields)
            }
            Arg::Func(name) => funcs::call(self, name, Vec::new())
                .map_err(|e| format!("error calling {name}: {e}")),
            Arg::Str(s) => Ok(Value::Str(s.clone())),
            Arg::Int(i) => Ok(Value::Int(*i)),
            Arg::Float(f) => Ok(Value::Float(*f)),
            Arg::Bool(b) => Ok(Value::Bool(*b)),
            Arg::Nil => Err("nil is not a command".into()),
            Arg::Pipe(pipe, fields) => {
                let scope = self.vars.len();
                let value = self.pipeline(pipe, dot)?;
                self.vars.truncate(scope);
                fields_of(value, fields)
            }
        }
    }
}

/// How Go names an operand in errors.
fn describe(arg: &Arg) -> String {
    match arg {
        Arg::Field(fields) => format!(".{}", fields.join(".")),
        Arg::Var(name, fields) if fields.is_empty() => name.clone(),
        Arg::Var(name, fields) => format!("{name}.{}", fields.join(".")),
        Arg::Str(s) => format!("{s:?}"),
        Arg::Int(i) => i.to_string(),
        Arg::Float(f) => f.to_string(),
        Arg::Bool(b) => b.to_string(),
        Arg::Nil => "nil".to_owned(),
        Arg::Func(name) => name.clone(),
        Arg::Pipe(..) => "(pipeline)".to_owned(),
    }
}

/// `.a.b` on a value: map keys (missing keys are the zero value, as with `missingkey=zero`).
fn fields_of(mut value: Value, fields: &[String]) -> Result<Value, String> {
    for field in fields {
        value = match value {
            Value::Map(mut map) => map.remove(field).unwrap_or(Value::Str(String::new())),
            Value::Nil => return Err(format!("nil pointer evaluating interface {{}}.{field}")),
            other => {
                return Err(format!("can't evaluate field {field} in type {}", other.type_name()))
            }
        };
    }
    Ok(value)
}

/// What an action prints; Go refuses nothing here except printing an error value.
fn printable(value: &Value) -> Result<String, String> {
    Ok(match value {
        Value::Nil => "<no value>".to_owned(),
        other => other.to_string(),
    })
}
