//! UTC timestamps in RFC 3339 without a date crate: the civil-from-days conversion is ten lines
//! (Howard Hinnant's algorithm), and backups and journals need nothing else from a calendar.

use std::time::{SystemTime, UNIX_EPOCH};

/// A point in time split into what the backup index needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub nanos: u32,
}

impl Utc {
    pub fn now() -> Self {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self::from_unix(d.as_secs() as i64, d.subsec_nanos())
    }

    pub fn from_unix(secs: i64, nanos: u32) -> Self {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        // civil_from_days (proleptic Gregorian), valid for any i64 day count in range.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Utc {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
            nanos,
        }
    }

    /// `2026-11-22T22:40:00.123456Z` (microseconds).
    pub fn rfc3339(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.nanos / 1000
        )
    }

    /// `20261122T224000123456789Z`: sorts like the time, safe in a file name.
    pub fn compact(&self) -> String {
        format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}{:09}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second, self.nanos
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(
            Utc::from_unix(0, 0).rfc3339(),
            "1970-01-01T00:00:00.000000Z"
        );
        // 2000-02-29 (leap day in a century leap year)
        assert_eq!(
            Utc::from_unix(951_782_400, 0).rfc3339(),
            "2000-02-29T00:00:00.000000Z"
        );
        // 2026-11-22T22:40:05.5Z
        assert_eq!(
            Utc::from_unix(1_795_387_205, 500_000_000).rfc3339(),
            "2026-11-22T22:40:05.500000Z"
        );
        assert_eq!(
            Utc::from_unix(1_795_387_205, 7).compact(),
            "20261122T224005000000007Z"
        );
        // 2100-03-01 (2100 is not a leap year)
        assert_eq!(
            Utc::from_unix(4_107_542_400, 0).rfc3339(),
            "2100-03-01T00:00:00.000000Z"
        );
        // before the epoch
        assert_eq!(
            Utc::from_unix(-1, 0).rfc3339(),
            "1969-12-31T23:59:59.000000Z"
        );
    }
}
