//! Fixed, epoch-aligned windows, as envoyproxy/ratelimit counts them: a window of a unit is
//! `now / length`, so every replica agrees on it without talking to the others. A month is 30
//! days and a year 365 days counted from the Unix epoch, not calendar months or years.

use crate::proto;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// A `rate_limit.unit` of the envoyproxy/ratelimit config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Unit {
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl Unit {
    pub const ALL: [Unit; 7] = [
        Unit::Second,
        Unit::Minute,
        Unit::Hour,
        Unit::Day,
        Unit::Week,
        Unit::Month,
        Unit::Year,
    ];

    /// The config's spelling (case-insensitive there, as in envoyproxy/ratelimit).
    pub fn parse(name: &str) -> Option<Unit> {
        Unit::ALL.into_iter().find(|u| u.name().eq_ignore_ascii_case(name))
    }

    pub fn name(self) -> &'static str {
        match self {
            Unit::Second => "second",
            Unit::Minute => "minute",
            Unit::Hour => "hour",
            Unit::Day => "day",
            Unit::Week => "week",
            Unit::Month => "month",
            Unit::Year => "year",
        }
    }

    /// The window's length in seconds.
    pub fn seconds(self) -> u64 {
        match self {
            Unit::Second => 1,
            Unit::Minute => 60,
            Unit::Hour => 3_600,
            Unit::Day => 86_400,
            Unit::Week => 7 * 86_400,
            Unit::Month => 30 * 86_400,
            Unit::Year => 365 * 86_400,
        }
    }

    /// The unit whose window is exactly this long, if any.
    pub fn from_seconds(seconds: u64) -> Option<Unit> {
        Unit::ALL.into_iter().find(|u| u.seconds() == seconds)
    }

    /// The name of the context variable that holds this unit's current window number.
    pub fn window_variable(self) -> String {
        format!("window_{}", self.name())
    }

    pub fn to_proto(self) -> proto::Unit {
        match self {
            Unit::Second => proto::Unit::Second,
            Unit::Minute => proto::Unit::Minute,
            Unit::Hour => proto::Unit::Hour,
            Unit::Day => proto::Unit::Day,
            Unit::Week => proto::Unit::Week,
            Unit::Month => proto::Unit::Month,
            Unit::Year => proto::Unit::Year,
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A moment, in whole seconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instant(pub u64);

impl Instant {
    pub fn now() -> Instant {
        Instant(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        )
    }

    /// The number of the `unit` window this moment falls in.
    pub fn window(self, unit: Unit) -> u64 {
        self.0 / unit.seconds()
    }

    /// Seconds until the current `unit` window ends (1 to the window's length).
    pub fn until_reset(self, unit: Unit) -> u64 {
        unit.seconds() - self.0 % unit.seconds()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_parse_in_any_case_and_round_trip() {
        for unit in Unit::ALL {
            assert_eq!(Unit::parse(unit.name()), Some(unit));
            assert_eq!(Unit::parse(&unit.name().to_uppercase()), Some(unit));
            assert_eq!(Unit::from_seconds(unit.seconds()), Some(unit));
        }
        assert_eq!(Unit::parse("fortnight"), None);
        assert_eq!(Unit::parse("unknown"), None);
        assert_eq!(Unit::from_seconds(90), None);
    }

    #[test]
    fn proto_numbers_follow_rls_proto() {
        let numbers: Vec<i32> = Unit::ALL.iter().map(|u| u.to_proto() as i32).collect();
        // SECOND..DAY are 1..4, WEEK 7, MONTH 5, YEAR 6.
        assert_eq!(numbers, [1, 2, 3, 4, 7, 5, 6]);
    }

    #[test]
    fn windows_are_epoch_aligned() {
        // 2026-12-01T23:59:59Z and one second later.
        let before = Instant(1_796_169_599);
        let after = Instant(1_796_169_600);
        assert_eq!(before.window(Unit::Day) + 1, after.window(Unit::Day));
        assert_eq!(before.until_reset(Unit::Day), 1);
        assert_eq!(after.until_reset(Unit::Day), 86_400);
        assert_eq!(after.until_reset(Unit::Minute), 60);
        assert_eq!(Instant(59).window(Unit::Minute), 0);
        assert_eq!(Instant(60).window(Unit::Minute), 1);
        // A month is a 30-day block from the epoch, as in envoyproxy/ratelimit.
        assert_eq!(Instant(30 * 86_400 - 1).window(Unit::Month), 0);
        assert_eq!(Instant(30 * 86_400).window(Unit::Month), 1);
    }
}
