//! UTC calendar arithmetic for the time bins of the space-time cube: ISO weeks (starting
//! Monday 00:00 UTC), calendar months and calendar quarters, and parsing of the RFC 3339
//! dates and instants accepted as bounds.
//!
//! Day <-> civil date conversions are Howard Hinnant's `days_from_civil` / `civil_from_days`
//! algorithms (proleptic Gregorian calendar), exact for every `i64` day in range here.

use serde::{Deserialize, Serialize};

const SECONDS_PER_DAY: i64 = 86_400;

/// Length of one time step of the cube.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeBin {
    /// ISO week, Monday 00:00 UTC to the next Monday.
    Week,
    /// Calendar month (UTC).
    #[default]
    Month,
    /// Calendar quarter (UTC): January, April, July, October.
    Quarter,
}

/// Days since 1970-01-01 of the civil date `y-m-d` (`m` in 1..=12).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Civil date `(year, month, day)` of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

impl TimeBin {
    /// Absolute index of the bin holding the instant `t` (unix seconds, UTC). Consecutive
    /// bins have consecutive indices.
    pub fn index_of(self, t: i64) -> i64 {
        let day = t.div_euclid(SECONDS_PER_DAY);
        match self {
            // 1970-01-05 was a Monday: day 4 starts week 1.
            TimeBin::Week => (day + 3).div_euclid(7),
            TimeBin::Month => {
                let (y, m, _) = civil_from_days(day);
                y * 12 + m as i64 - 1
            }
            TimeBin::Quarter => {
                let (y, m, _) = civil_from_days(day);
                y * 4 + (m as i64 - 1) / 3
            }
        }
    }

    /// Start of bin `index` in unix seconds.
    pub fn start_of(self, index: i64) -> i64 {
        let day = match self {
            TimeBin::Week => index * 7 - 3,
            TimeBin::Month => {
                days_from_civil(index.div_euclid(12), index.rem_euclid(12) as u32 + 1, 1)
            }
            TimeBin::Quarter => {
                days_from_civil(index.div_euclid(4), 3 * index.rem_euclid(4) as u32 + 1, 1)
            }
        };
        day * SECONDS_PER_DAY
    }
}

/// RFC 3339 full-date (`YYYY-MM-DD`) of an instant, in UTC.
pub fn format_date(t: i64) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(SECONDS_PER_DAY));
    format!("{y:04}-{m:02}-{d:02}")
}

/// RFC 3339 date-time `YYYY-MM-DDTHH:MM:SSZ` of an instant.
pub fn format_instant(t: i64) -> String {
    let secs = t.rem_euclid(SECONDS_PER_DAY);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    format!("{}T{h:02}:{m:02}:{s:02}Z", format_date(t))
}

/// Parses `YYYY-MM-DD` (midnight UTC) or an RFC 3339 date-time with `Z` or a `±HH:MM`
/// offset (fractional seconds are truncated) into unix seconds. `None` when malformed.
pub fn parse_instant(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y = num(&b[0..4])?;
    let m = num(&b[5..7])? as u32;
    let d = num(&b[8..10])? as u32;
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    let day_s = days_from_civil(y, m, d) * SECONDS_PER_DAY;
    if b.len() == 10 {
        return Some(day_s);
    }
    if b.len() < 20 || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (hh, mm, ss) = (num(&b[11..13])?, num(&b[14..16])?, num(&b[17..19])?);
    if hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let mut rest = &b[19..];
    if rest.first() == Some(&b'.') {
        let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        rest = &rest[1 + digits..];
    }
    let offset = parse_offset(rest)?;
    Some(day_s + hh * 3600 + mm * 60 + ss - offset)
}

/// `Z` -> 0, `±HH:MM` -> signed seconds east of UTC.
fn parse_offset(b: &[u8]) -> Option<i64> {
    match b {
        [b'Z' | b'z'] => Some(0),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (num(&[*h1, *h2])?, num(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 3600 + m * 60;
            Some(if *sign == b'-' { -off } else { off })
        }
        _ => None,
    }
}

fn num(b: &[u8]) -> Option<i64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |acc, c| acc * 10 + (c - b'0') as i64))
}

fn days_in_month(y: i64, m: u32) -> u32 {
    let next = if m == 12 {
        days_from_civil(y + 1, 1, 1)
    } else {
        days_from_civil(y, m + 1, 1)
    };
    (next - days_from_civil(y, m, 1)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip_and_known_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        for z in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn bins_contain_their_instants() {
        // 2024-02-29T12:00:00Z = 1709208000, a Thursday.
        let t = 1_709_208_000;
        for bin in [TimeBin::Week, TimeBin::Month, TimeBin::Quarter] {
            let i = bin.index_of(t);
            assert!(bin.start_of(i) <= t && t < bin.start_of(i + 1), "{bin:?}");
            assert_eq!(bin.index_of(bin.start_of(i)), i);
        }
        assert_eq!(
            format_date(TimeBin::Week.start_of(TimeBin::Week.index_of(t))),
            "2024-02-26"
        );
        assert_eq!(
            format_date(TimeBin::Month.start_of(TimeBin::Month.index_of(t))),
            "2024-02-01"
        );
        assert_eq!(
            format_date(TimeBin::Quarter.start_of(TimeBin::Quarter.index_of(t))),
            "2024-01-01"
        );
    }

    #[test]
    fn parses_dates_and_instants() {
        assert_eq!(parse_instant("2024-02-29"), Some(1_709_164_800));
        assert_eq!(parse_instant("2024-02-29T12:00:00Z"), Some(1_709_208_000));
        assert_eq!(
            parse_instant("2024-02-29T14:00:00.123+02:00"),
            Some(1_709_208_000)
        );
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-1-01",
            "2024-02-29T12:00",
            "x",
        ] {
            assert_eq!(parse_instant(bad), None, "{bad}");
        }
    }
}
