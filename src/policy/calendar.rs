//! Business days: which dates an organisation works, and how far N business
//! days reach.
//!
//! Danish public holidays are computed, not listed, so the calendar never
//! runs out: the fixed dates, and the movable feasts counted from Easter
//! Sunday (Gregorian computus). Store Bededag (Great Prayer Day, Easter + 26)
//! was abolished from 2024 and counts only before that year.

use jiff::civil::{Date, Weekday};

/// The public-holiday rules a calendar follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HolidayRules {
    /// Danish public holidays (helligdage).
    Dk,
    /// Weekends only.
    None,
}

/// A working calendar: weekends, public holidays, and the organisation's
/// own closed days given as month and day (Christmas Eve, Constitution Day).
#[derive(Debug, Clone)]
pub struct BusinessCalendar {
    rules: HolidayRules,
    closed: Vec<(i8, i8)>,
}

/// Easter Sunday in the Gregorian calendar (anonymous Gregorian algorithm,
/// also known as Meeus/Jones/Butcher).
pub fn easter_sunday(year: i16) -> Date {
    let y = i32::from(year);
    let a = y % 19;
    let b = y / 100;
    let c = y % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    // month is 3 or 4 and day 1..=31 for every year jiff can represent.
    Date::new(year, month as i8, day as i8).unwrap_or(Date::constant(2000, 4, 23))
}

/// The Danish public holidays of `year`, in date order, with their names.
pub fn danish_holidays(year: i16) -> Vec<(Date, &'static str)> {
    let easter = easter_sunday(year);
    let rel = |days: i64, name| {
        (
            easter
                .checked_add(jiff::Span::new().days(days))
                .unwrap_or(easter),
            name,
        )
    };
    let fixed = |m: i8, d: i8, name| (Date::new(year, m, d).unwrap_or(easter), name);
    let mut days = vec![
        fixed(1, 1, "Nytårsdag"),
        rel(-3, "Skærtorsdag"),
        rel(-2, "Langfredag"),
        rel(0, "Påskedag"),
        rel(1, "2. påskedag"),
        rel(39, "Kristi himmelfartsdag"),
        rel(49, "Pinsedag"),
        rel(50, "2. pinsedag"),
        fixed(12, 25, "Juledag"),
        fixed(12, 26, "2. juledag"),
    ];
    if year < 2024 {
        days.push(rel(26, "Store bededag"));
    }
    days.sort();
    days
}

impl BusinessCalendar {
    pub fn new(rules: HolidayRules, closed: Vec<(i8, i8)>) -> Self {
        BusinessCalendar { rules, closed }
    }

    pub fn is_business_day(&self, date: Date) -> bool {
        if matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday) {
            return false;
        }
        if self.closed.contains(&(date.month(), date.day())) {
            return false;
        }
        match self.rules {
            HolidayRules::Dk => !danish_holidays(date.year()).iter().any(|(d, _)| *d == date),
            HolidayRules::None => true,
        }
    }

    /// The `n`th business day after `date` (`date` itself not counted).
    /// With n = 0, `date` if it is a business day, else the next one.
    pub fn add_business_days(&self, date: Date, n: u32) -> Date {
        let mut d = date;
        if n == 0 {
            while !self.is_business_day(d) {
                d = d.tomorrow().unwrap_or(d);
            }
            return d;
        }
        let mut left = n;
        // Bounded: no calendar closes more than a few days in a row, and
        // `n` comes from a validated policy.
        while left > 0 {
            let Ok(next) = d.tomorrow() else { return d };
            d = next;
            if self.is_business_day(d) {
                left -= 1;
            }
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn easter_matches_published_dates() {
        for (y, m, d) in [
            (2000, 4, 23),
            (2008, 3, 23),
            (2011, 4, 24),
            (2019, 4, 21),
            (2024, 3, 31),
            (2025, 4, 20),
            (2026, 4, 5),
            (2027, 3, 28),
            (2038, 4, 25),
            (2285, 3, 22),
        ] {
            assert_eq!(easter_sunday(y), date(y, m, d), "{y}");
        }
    }

    #[test]
    fn danish_holidays_2026_and_store_bededag() {
        let h: Vec<Date> = danish_holidays(2026).into_iter().map(|(d, _)| d).collect();
        assert_eq!(
            h,
            vec![
                date(2026, 1, 1),
                date(2026, 4, 2),
                date(2026, 4, 3),
                date(2026, 4, 5),
                date(2026, 4, 6),
                date(2026, 5, 14),
                date(2026, 5, 24),
                date(2026, 5, 25),
                date(2026, 12, 25),
                date(2026, 12, 26),
            ]
        );
        assert!(
            danish_holidays(2023)
                .iter()
                .any(|(d, n)| *d == date(2023, 5, 5) && *n == "Store bededag")
        );
        assert!(
            !danish_holidays(2024)
                .iter()
                .any(|(_, n)| *n == "Store bededag")
        );
    }

    #[test]
    fn business_days_skip_weekends_holidays_and_closed_days() {
        let cal = BusinessCalendar::new(HolidayRules::Dk, vec![(12, 24), (12, 31)]);
        // Wednesday before Easter 2026: Thu, Fri, Sun, Mon are holidays.
        assert_eq!(cal.add_business_days(date(2026, 4, 1), 1), date(2026, 4, 7));
        assert_eq!(cal.add_business_days(date(2026, 4, 1), 2), date(2026, 4, 8));
        // Friday: two business days is Tuesday.
        assert_eq!(
            cal.add_business_days(date(2026, 11, 20), 2),
            date(2026, 11, 24)
        );
        // Christmas 2026: 24 (closed), 25, 26 (holidays), 27 Sunday, 31 closed, 1 Jan.
        assert_eq!(
            cal.add_business_days(date(2026, 12, 23), 1),
            date(2026, 12, 28)
        );
        assert_eq!(
            cal.add_business_days(date(2026, 12, 30), 1),
            date(2027, 1, 4)
        );
        // Saturday with n = 0 moves to Monday.
        assert_eq!(
            cal.add_business_days(date(2026, 11, 21), 0),
            date(2026, 11, 23)
        );
        let plain = BusinessCalendar::new(HolidayRules::None, vec![]);
        assert_eq!(
            plain.add_business_days(date(2026, 4, 1), 1),
            date(2026, 4, 2)
        );
    }
}
