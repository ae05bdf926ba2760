//! Timestamps: RFC 3339 parsing, UTC formatting, periods and windows. Times are milliseconds
//! since the Unix epoch (UTC).

const MS_PER_DAY: i64 = 86_400_000;

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn date(b: &[u8]) -> Option<i64> {
    if b.len() != 10 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let y = digits(b.get(0..4)?)?;
    let m = digits(b.get(5..7)?)?;
    let d = digits(b.get(8..10)?)?;
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` (a space may stand for the `T`).
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.trim().as_bytes();
    let days = date(b.get(0..10)?)?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) || b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    let h = digits(b.get(11..13)?)?;
    let mi = digits(b.get(14..16)?)?;
    let s = digits(b.get(17..19)?)?;
    if h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut rest = b.get(19..)?;
    let mut ms = 0i64;
    if let [b'.', tail @ ..] = rest {
        let n = tail.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        let frac = tail.get(..n)?;
        let mut scaled = 0i64;
        for i in 0..3 {
            scaled = scaled * 10 + frac.get(i).map_or(0, |d| i64::from(d - b'0'));
        }
        ms = scaled;
        rest = tail.get(n..)?;
    }
    let offset_min = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), oh1, oh2, b':', om1, om2] => {
            let oh = digits(&[*oh1, *oh2])?;
            let om = digits(&[*om1, *om2])?;
            if oh > 23 || om > 59 {
                return None;
            }
            let v = oh * 60 + om;
            if *sign == b'-' {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    Some(days * MS_PER_DAY + ((h * 60 + mi - offset_min) * 60 + s) * 1000 + ms)
}

/// Parses a `--since`/`--until` bound: RFC 3339, or a date (`YYYY-MM-DD`, midnight UTC).
pub fn parse_bound(text: &str) -> Option<i64> {
    parse_rfc3339(text).or_else(|| date(text.trim().as_bytes()).map(|d| d * MS_PER_DAY))
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_rfc3339(ms: i64) -> String {
    let days = ms.div_euclid(MS_PER_DAY);
    let rem = ms.rem_euclid(MS_PER_DAY) / 1000;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_rfc3339_ms(ms: i64) -> String {
    let base = format_rfc3339(ms);
    format!("{}.{:03}Z", base.trim_end_matches('Z'), ms.rem_euclid(1000))
}

/// A chargeback period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Period {
    Hour,
    Day,
    Month,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Month => "month",
        }
    }

    /// The start of the period holding `ms`.
    pub fn start(self, ms: i64) -> i64 {
        match self {
            Period::Hour => ms.div_euclid(3_600_000) * 3_600_000,
            Period::Day => ms.div_euclid(MS_PER_DAY) * MS_PER_DAY,
            Period::Month => {
                let (y, m, _) = civil_from_days(ms.div_euclid(MS_PER_DAY));
                days_from_civil(y, m, 1) * MS_PER_DAY
            }
        }
    }

    /// The (exclusive) end of the period starting at `start`.
    pub fn end(self, start: i64) -> i64 {
        match self {
            Period::Hour => start + 3_600_000,
            Period::Day => start + MS_PER_DAY,
            Period::Month => {
                let (y, m, _) = civil_from_days(start.div_euclid(MS_PER_DAY));
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                days_from_civil(ny, nm, 1) * MS_PER_DAY
            }
        }
    }

    /// A short label: `2026-11-01T13`, `2026-11-01`, `2026-11`.
    pub fn label(self, start: i64) -> String {
        let full = format_rfc3339(start);
        let n = match self {
            Period::Hour => 13,
            Period::Day => 10,
            Period::Month => 7,
        };
        full.get(..n).unwrap_or(&full).to_string()
    }
}

/// The calendar month holding `ms`: (start, end).
pub fn month_bounds(ms: i64) -> (i64, i64) {
    let start = Period::Month.start(ms);
    (start, Period::Month.end(start))
}

/// Parses a window length: `90s`, `15m`, `1h`, `1d` (a whole number and a unit).
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: i64 = num
        .parse()
        .map_err(|_| format!("\"{text}\" is not a duration (expected e.g. 15m, 1h, 1d)"))?;
    let unit_ms = match unit {
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => MS_PER_DAY,
        _ => return Err(format!("\"{text}\": the unit must be s, m, h or d (e.g. 15m, 1h, 1d)")),
    };
    if n <= 0 || n > 366 * MS_PER_DAY / unit_ms {
        return Err(format!("\"{text}\": the window must be between 1s and 366d"));
    }
    Ok(n * unit_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_rfc3339("2026-11-01T10:00:00.123Z"), Some(1_793_527_200_123));
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00.123456789Z"),
            parse_rfc3339("2024-02-29T00:00:00.123Z")
        );
        for bad in [
            "",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-01",
            "2026-11-01T25:00:00Z",
            "2026-11-01T00:00:00",
            "2026-11-01T00:00:00.Z",
            "２０２６-11-01T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        assert_eq!(parse_bound("2026-11-01"), parse_rfc3339("2026-11-01T00:00:00Z"));
        assert_eq!(format_rfc3339(1_793_527_200_123), "2026-11-01T10:00:00Z");
        assert_eq!(format_rfc3339_ms(1_793_527_200_123), "2026-11-01T10:00:00.123Z");
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn periods() {
        let t = parse_rfc3339("2026-12-31T23:30:00Z").unwrap();
        assert_eq!(format_rfc3339(Period::Hour.start(t)), "2026-12-31T23:00:00Z");
        assert_eq!(
            format_rfc3339(Period::Day.end(Period::Day.start(t))),
            "2027-01-01T00:00:00Z"
        );
        assert_eq!(format_rfc3339(Period::Month.start(t)), "2026-12-01T00:00:00Z");
        assert_eq!(
            format_rfc3339(Period::Month.end(Period::Month.start(t))),
            "2027-01-01T00:00:00Z"
        );
        assert_eq!(Period::Month.label(t), "2026-12");
        assert_eq!(Period::Hour.label(t), "2026-12-31T23");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h"), Ok(3_600_000));
        assert_eq!(parse_duration("15m"), Ok(900_000));
        assert!(parse_duration("0h").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }
}
