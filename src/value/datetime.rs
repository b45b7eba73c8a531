//! ISO-8601 date-times as the language reads them (DESIGN §4a).

/// Reads an ISO-8601 date-time as epoch milliseconds, or `None` when `s` is not one.
///
/// Accepted: `YYYY-M-D`, optionally followed by `T` or a space and `H:M[:S[.fraction]]`,
/// then optionally a zone `Z`, `±HH`, `±HH:MM` or `±HHMM` (a zone needs a time). Month,
/// day, hour, minute and second take one or two digits (`2017-3-31T23:59:59.999Z`).
/// No zone means UTC. The fraction is cut to milliseconds. Invalid calendar dates
/// (`2023-02-29`), hours past 23, minutes or seconds past 59 are not dates.
pub fn parse_datetime(s: &str) -> Option<i64> {
    let mut p = Cursor {
        b: s.as_bytes(),
        i: 0,
    };
    let year = p.digits(4, 4)?;
    p.eat(b'-')?;
    let month = p.digits(1, 2)?;
    p.eat(b'-')?;
    let day = p.digits(1, 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut ms = days_from_civil(year, month, day) * 86_400_000;
    if p.done() {
        return Some(ms);
    }
    match p.next()? {
        b'T' | b' ' => {}
        _ => return None,
    }
    let hour = p.digits(1, 2)?;
    p.eat(b':')?;
    let minute = p.digits(1, 2)?;
    let mut second = 0;
    let mut millis = 0;
    if p.peek() == Some(b':') {
        p.i += 1;
        second = p.digits(1, 2)?;
        if p.peek() == Some(b'.') {
            p.i += 1;
            let start = p.i;
            while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                let d = i64::from(p.b[p.i] - b'0');
                match p.i - start {
                    0 => millis += d * 100,
                    1 => millis += d * 10,
                    2 => millis += d,
                    _ => {}
                }
                p.i += 1;
            }
            if p.i == start {
                return None;
            }
        }
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    ms += ((hour * 60 + minute) * 60 + second) * 1000 + millis;
    if p.done() {
        return Some(ms);
    }
    let sign = match p.next()? {
        b'Z' => return p.done().then_some(ms),
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let zh = p.digits(2, 2)?;
    let zm = if p.done() {
        0
    } else {
        if p.peek() == Some(b':') {
            p.i += 1;
        }
        p.digits(2, 2)?
    };
    if !p.done() || zh > 23 || zm > 59 {
        return None;
    }
    Some(ms - sign * (zh * 60 + zm) * 60_000)
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn done(&self) -> bool {
        self.i == self.b.len()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    /// `min..=max` ASCII digits (as many as there are, up to `max`).
    fn digits(&mut self, min: usize, max: usize) -> Option<i64> {
        let start = self.i;
        let mut v = 0i64;
        while self.i - start < max && self.peek().is_some_and(|c| c.is_ascii_digit()) {
            v = v * 10 + i64::from(self.b[self.i] - b'0');
            self.i += 1;
        }
        (self.i - start >= min).then_some(v)
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times() {
        assert_eq!(parse_datetime("1970-01-01"), Some(0));
        assert_eq!(parse_datetime("1970-1-2"), Some(86_400_000));
        assert_eq!(
            parse_datetime("2017-03-31T23:59:59.999Z"),
            Some(1_491_004_799_999)
        );
        assert_eq!(
            parse_datetime("2017-3-31T23:59:59.999Z"),
            Some(1_491_004_799_999)
        );
        assert_eq!(
            parse_datetime("2017-03-31 23:59:59.9999"),
            Some(1_491_004_799_999)
        );
        assert_eq!(parse_datetime("2017-03-31T23:59"), Some(1_491_004_740_000));
        assert_eq!(
            parse_datetime("2017-03-31T23:59:59.5"),
            Some(1_491_004_799_500)
        );
        assert_eq!(
            parse_datetime("2000-01-01T00:00:00Z"),
            Some(946_684_800_000)
        );
    }

    #[test]
    fn zones() {
        let utc = parse_datetime("2000-01-01T02:00:00Z");
        assert_eq!(parse_datetime("2000-01-01T03:00:00+01"), utc);
        assert_eq!(parse_datetime("2000-01-01T03:30:00+01:30"), utc);
        assert_eq!(parse_datetime("2000-01-01T03:30:00+0130"), utc);
        assert_eq!(parse_datetime("2000-01-01T00:00:00-02:00"), utc);
        assert_eq!(parse_datetime("2000-01-01T02:00:00"), utc);
    }

    #[test]
    fn leap_years() {
        assert!(parse_datetime("2024-02-29").is_some());
        assert!(parse_datetime("2000-02-29").is_some());
        assert!(parse_datetime("1900-02-29").is_none());
        assert!(parse_datetime("2023-02-29").is_none());
        assert_eq!(
            parse_datetime("2024-03-01").unwrap() - parse_datetime("2024-02-28").unwrap(),
            2 * 86_400_000
        );
    }

    #[test]
    fn not_dates() {
        for bad in [
            "",
            "2017",
            "17-03-31",
            "2017-13-01",
            "2017-04-31",
            "2017-00-10",
            "2017-01-00",
            "2017-1-1T",
            "2017-1-1T24:00",
            "2017-1-1T10:60",
            "2017-1-1T10:00:60",
            "2017-1-1T10",
            "2017-1-1Z",
            "2017-1-1T10:00Zx",
            "2017-1-1T10:00+1",
            "2017-1-1T10:00:00.",
            "2017-01-001",
            "x2017-01-01",
            "2017-01-01T10:00+01:",
            "12345-01-01",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
    }
}
