//! UTC calendar arithmetic for keys (`yyyy-mm-dd`) and listings (RFC 3339,
//! <https://www.rfc-editor.org/rfc/rfc3339>), on the proleptic Gregorian calendar.
//!
//! The day-number → civil-date conversion is the well-known era-based algorithm described by
//! Howard Hinnant ("chrono-Compatible Low-Level Date Algorithms", `civil_from_days`); it is
//! exact for every `i64` millisecond timestamp whose year fits an `i64`.

const MS_PER_DAY: i64 = 86_400_000;

/// `(year, month 1..=12, day 1..=31)` of the UTC day `days` after 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097); // [0, 146096]
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153; // March = 0
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The UTC day of a Unix millisecond timestamp as `yyyy-mm-dd`.
pub fn utc_day(ms: i64) -> String {
    let (year, month, day) = civil_from_days(ms.div_euclid(MS_PER_DAY));
    format!("{year:04}-{month:02}-{day:02}")
}

/// A Unix millisecond timestamp as RFC 3339 UTC with milliseconds:
/// `2024-03-01T12:00:00.000Z`.
pub fn rfc3339_ms(ms: i64) -> String {
    let in_day = ms.rem_euclid(MS_PER_DAY);
    let (hours, minutes) = (in_day / 3_600_000, in_day / 60_000 % 60);
    let (seconds, millis) = (in_day / 1000 % 60, in_day % 1000);
    format!("{}T{hours:02}:{minutes:02}:{seconds:02}.{millis:03}Z", utc_day(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(utc_day(0), "1970-01-01");
        assert_eq!(utc_day(-1), "1969-12-31");
        assert_eq!(utc_day(951_782_400_000), "2000-02-29");
        assert_eq!(utc_day(1_709_251_199_999), "2024-02-29");
        assert_eq!(rfc3339_ms(1_709_294_400_123), "2024-03-01T12:00:00.123Z");
        assert_eq!(rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn consecutive_days_step_by_one() {
        // Every day from 1900 to 2200 follows the previous one.
        let mut previous = utc_day(-25_567 * MS_PER_DAY);
        for day in -25_566..84_000 {
            let current = utc_day(day * MS_PER_DAY);
            assert!(current > previous, "{previous} then {current}");
            previous = current;
        }
    }
}
