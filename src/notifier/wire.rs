//! The body of Alertmanager's `POST /api/v2/alerts`: a JSON array of `postableAlert`s
//! (Alertmanager `api/v2/openapi.yaml`), written as Prometheus' notifier writes it
//! (`notifier/notifier.go` `alertsToOpenAPIAlerts`): `labels`, `annotations`, `startsAt`,
//! `endsAt` (left out when unset), `generatorURL`; times in RFC 3339 with nanoseconds as Go's
//! `time.Time` marshals them.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use super::Alert;
use crate::model::labels::Labels;

/// A time as Go's `time.RFC3339Nano` writes it in UTC: the fraction without trailing zeros,
/// none when whole (`2024-05-01T10:00:00.5Z`).
pub fn rfc3339(time: SystemTime) -> String {
    let (negative, since) = match time.duration_since(UNIX_EPOCH) {
        Ok(d) => (false, d),
        Err(e) => (true, e.duration()),
    };
    let mut seconds = since.as_secs() as i64;
    let mut nanos = since.subsec_nanos();
    if negative {
        seconds = -seconds;
        if nanos > 0 {
            seconds -= 1;
            nanos = 1_000_000_000 - nanos;
        }
    }
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    );
    if nanos > 0 {
        let fraction = format!("{nanos:09}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

struct LabelMap<'a>(&'a Labels);

impl Serialize for LabelMap<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for label in self.0.iter() {
            map.serialize_entry(&label.name, &label.value)?;
        }
        map.end()
    }
}

struct Postable<'a>(&'a Alert);

impl Serialize for Postable<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let alert = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("labels", &LabelMap(&alert.labels))?;
        map.serialize_entry("annotations", &LabelMap(&alert.annotations))?;
        map.serialize_entry("startsAt", &rfc3339(alert.starts_at))?;
        if alert.ends_at != UNIX_EPOCH {
            map.serialize_entry("endsAt", &rfc3339(alert.ends_at))?;
        }
        map.serialize_entry("generatorURL", &alert.generator_url)?;
        map.end()
    }
}

struct Batch<'a>(&'a [Alert]);

impl Serialize for Batch<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for alert in self.0 {
            seq.serialize_element(&Postable(alert))?;
        }
        seq.end()
    }
}

/// The request body for `alerts`.
pub fn encode(alerts: &[Alert]) -> Vec<u8> {
    // Serializing maps of strings cannot fail.
    serde_json::to_vec(&Batch(alerts)).unwrap_or_else(|_| b"[]".to_vec())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn times_are_go_rfc3339_nano() {
        let at = |secs: u64, nanos: u32| UNIX_EPOCH + Duration::new(secs, nanos);
        assert_eq!(rfc3339(at(0, 0)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(at(1_435_781_451, 781_000_000)), "2015-07-01T20:10:51.781Z");
        assert_eq!(rfc3339(at(1_709_251_200, 1)), "2024-03-01T00:00:00.000000001Z");
        assert_eq!(rfc3339(at(951_782_400, 500_000_000)), "2000-02-29T00:00:00.5Z");
        assert_eq!(rfc3339(UNIX_EPOCH - Duration::from_millis(500)), "1969-12-31T23:59:59.5Z");
    }

    #[test]
    fn alerts_are_postable_alerts() {
        let alert = Alert {
            labels: Labels::from_pairs([("alertname", "Down"), ("job", "x")]),
            annotations: Labels::from_pairs([("summary", "it is <down>")]),
            starts_at: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            ends_at: UNIX_EPOCH,
            generator_url: "http://strata/graph?g0.expr=up".into(),
        };
        let body: serde_json::Value =
            serde_json::from_slice(&encode(std::slice::from_ref(&alert))).unwrap();
        assert_eq!(
            body,
            serde_json::json!([{
                "labels": {"alertname": "Down", "job": "x"},
                "annotations": {"summary": "it is <down>"},
                "startsAt": "2023-11-14T22:13:20Z",
                "generatorURL": "http://strata/graph?g0.expr=up",
            }])
        );
        let resolved = Alert { ends_at: UNIX_EPOCH + Duration::from_secs(1_700_000_060), ..alert };
        let body: serde_json::Value = serde_json::from_slice(&encode(&[resolved])).unwrap();
        assert_eq!(body[0]["endsAt"], "2023-11-14T22:14:20Z");
    }
}
