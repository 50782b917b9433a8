//! `${VAR}` expansion in config string values, for secrets.
//!
//! Expansion runs on the parsed YAML tree, string scalars only, so a secret containing `:` or
//! `#` cannot change the document's structure. `$${VAR}` is a literal `${VAR}`. A reference to an
//! unset variable is an error naming the config path, never silently empty.

use serde_yaml::Value;

/// Expands `${VAR}` in every string scalar of `value`; `path` names where an error happened.
pub fn expand_tree(
    value: &mut Value,
    path: &mut Vec<String>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), String> {
    match value {
        Value::String(text) => {
            if text.contains('$') {
                *text = expand_str(text, lookup).map_err(|e| format!("{}: {e}", join(path)))?;
            }
            Ok(())
        }
        Value::Sequence(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                let last = path.pop().unwrap_or_default();
                path.push(format!("{last}[{index}]"));
                let result = expand_tree(item, path, lookup);
                path.pop();
                path.push(last);
                result?;
            }
            Ok(())
        }
        Value::Mapping(map) => {
            for (key, item) in map.iter_mut() {
                path.push(key.as_str().unwrap_or("?").to_owned());
                let result = expand_tree(item, path, lookup);
                path.pop();
                result?;
            }
            Ok(())
        }
        Value::Tagged(tagged) => expand_tree(&mut tagged.value, path, lookup),
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

fn join(path: &[String]) -> String {
    if path.is_empty() {
        "<root>".into()
    } else {
        path.join(".")
    }
}

/// Expands one string.
pub fn expand_str(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(literal) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = literal;
            continue;
        }
        let Some(body) = after.strip_prefix("${") else {
            out.push('$');
            rest = &after[1..];
            continue;
        };
        let Some(end) = body.find('}') else {
            return Err(format!("unterminated \"${{\" in {text:?}"));
        };
        let name = &body[..end];
        let valid = !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !name.as_bytes()[0].is_ascii_digit();
        if !valid {
            return Err(format!("invalid environment variable name {name:?}"));
        }
        match lookup(name) {
            Some(value) => out.push_str(&value),
            None => return Err(format!("environment variable {name} is not set")),
        }
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cr#t: x".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_and_escapes() {
        assert_eq!(expand_str("Bearer ${TOKEN}", &lookup).unwrap(), "Bearer s3cr#t: x");
        assert_eq!(expand_str("$${TOKEN} and $5", &lookup).unwrap(), "${TOKEN} and $5");
        assert_eq!(expand_str("a${EMPTY}b", &lookup).unwrap(), "ab");
        assert!(expand_str("${MISSING}", &lookup).unwrap_err().contains("MISSING is not set"));
        assert!(expand_str("${TOKEN", &lookup).is_err());
        assert!(expand_str("${1X}", &lookup).is_err());
    }

    #[test]
    fn tree_errors_name_the_path() {
        let mut value: Value =
            serde_yaml::from_str("forward:\n  remote_write:\n    - bearer_token: ${MISSING}\n")
                .unwrap();
        let err = expand_tree(&mut value, &mut Vec::new(), &lookup).unwrap_err();
        assert_eq!(
            err,
            "forward.remote_write[0].bearer_token: environment variable MISSING is not set"
        );
    }

    #[test]
    fn secrets_cannot_change_structure() {
        let mut value: Value = serde_yaml::from_str("password: ${TOKEN}\n").unwrap();
        expand_tree(&mut value, &mut Vec::new(), &lookup).unwrap();
        assert_eq!(value["password"].as_str(), Some("s3cr#t: x"));
    }
}
