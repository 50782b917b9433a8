//! `Config::parse` (YAML, `${VAR}` expansion, serde) and `Config::validate` on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata::config::Config;

fn lookup(name: &str) -> Option<String> {
    // A couple of defined variables so expansion has something to substitute.
    match name {
        "NODE_NAME" => Some("node-1".to_owned()),
        "EMPTY" => Some(String::new()),
        "DOLLAR" => Some("$".to_owned()),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(config) = Config::parse(text, "fuzz", &|_| None) {
        let _ = config.validate("fuzz");
    }
    // With some variables defined, when there is anything to expand.
    if text.contains('$') {
        if let Ok(config) = Config::parse(text, "fuzz", &lookup) {
            let _ = config.validate("fuzz");
        }
    }
});
