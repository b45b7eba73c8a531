//! The store's clock and its ISO-8601 rendering (`2017-07-16T19:20:30.123Z`).

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) → days since 1970-01-01 (Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Appends `ms` as `YYYY-MM-DDTHH:MM:SS.mmmZ` to `out`.
pub fn push_iso(out: &mut String, ms: i64) {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, mo, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        let _ = write!(out, "{y:04}-{mo:02}-{d:02}T");
    } else {
        // Hand-formatted: the generator writes several instants per document.
        let y = y as u32;
        let digits = [y / 1000, y / 100 % 10, y / 10 % 10, y % 10];
        for digit in digits {
            out.push(char::from(b'0' + digit as u8));
        }
        push2(out, b'-', mo);
        push2(out, b'-', d);
        out.push('T');
    }
    let rem = u32::try_from(rem).unwrap_or(0);
    push2(out, 0, rem / 3_600_000);
    push2(out, b':', rem / 60_000 % 60);
    push2(out, b':', rem / 1000 % 60);
    out.push('.');
    let milli = rem % 1000;
    for digit in [milli / 100, milli / 10 % 10, milli % 10] {
        out.push(char::from(b'0' + digit as u8));
    }
    out.push('Z');
}

/// Pushes an optional separator, then `n` (< 100) as two digits.
fn push2(out: &mut String, sep: u8, n: u32) {
    if sep != 0 {
        out.push(char::from(sep));
    }
    out.push(char::from(b'0' + (n / 10 % 10) as u8));
    out.push(char::from(b'0' + (n % 10) as u8));
}

/// `ms` as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn iso_from_millis(ms: i64) -> String {
    let mut s = String::with_capacity(24);
    push_iso(&mut s, ms);
    s
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff…]Z` (or a bare `YYYY-MM-DD`) into epoch milliseconds;
/// `None` when the text is not such an instant or names an impossible date.
pub fn parse_iso(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        if part.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(part).ok()?.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (
        num(0..4)?,
        u32::try_from(num(5..7)?).ok()?,
        u32::try_from(num(8..10)?).ok()?,
    );
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month) || day == 0 || day > month_days[month as usize - 1] {
        return None;
    }
    let mut ms = days_from_civil(year, month, day) * 86_400_000;
    if b.len() == 10 {
        return Some(ms);
    }
    if b.len() < 20 || b[10] != b'T' || b[13] != b':' || b[16] != b':' || *b.last()? != b'Z' {
        return None;
    }
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if h > 23 || mi > 59 || s > 60 {
        return None;
    }
    ms += (h * 3600 + mi * 60 + s) * 1000;
    let frac = &b[19..b.len() - 1];
    if let Some(digits) = frac.strip_prefix(b".") {
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut millis = 0;
        for i in 0..3 {
            millis = millis * 10 + digits.get(i).map_or(0, |d| i64::from(d - b'0'));
        }
        ms += millis;
    } else if !frac.is_empty() {
        return None;
    }
    Some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_parses_instants() {
        assert_eq!(iso_from_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            iso_from_millis(1_496_584_985_099),
            "2017-06-04T14:03:05.099Z"
        );
        assert_eq!(iso_from_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
        for ms in [
            0,
            1_496_584_985_099,
            951_782_400_000,
            1_781_913_600_000,
            -86_400_001,
        ] {
            assert_eq!(parse_iso(&iso_from_millis(ms)), Some(ms));
        }
        assert_eq!(parse_iso("2017-07-16T19:20:30Z"), Some(1_500_232_830_000));
        assert_eq!(parse_iso("2017-07-16"), Some(1_500_163_200_000));
        assert_eq!(parse_iso("2017-02-29"), None);
        assert_eq!(parse_iso("2017-07-16T25:00:00Z"), None);
        assert_eq!(parse_iso("2017-07-16T19:20:30"), None);
        assert_eq!(parse_iso("yesterday"), None);
        assert_eq!(parse_iso("2017-07-16T19:20:30.Z"), None);
    }
}
