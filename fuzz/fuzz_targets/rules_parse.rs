//! Rule files and alert templates from arbitrary text: parse and validate a rule file, and
//! parse and expand a template with alert data, without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata::model::Labels;
use strata::rules::{file, template};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(parsed) = file::parse("fuzz.yml", text, false) {
        let _ = file::validate(&parsed);
    }
    let labels = Labels::from_pairs([("instance", "node-1:9100"), ("job", "node")]);
    let data = template::alert_data(&labels, &Labels::default(), "http://strata", 0.25);
    let _ = template::expand("fuzz", text, &data, None, "http://strata");
});
