//! Java date patterns (`yyyy-MM-dd HH:mm:ss`), compiled once into a list of
//! items and used both to format (`java_format`) and to parse
//! (`java_parse`).
//!
//! Flink uses two Java classes: `DateTimeFormatter` (DATE_FORMAT of a
//! TIMESTAMP, TO_TIMESTAMP) and `SimpleDateFormat` (FROM_UNIXTIME,
//! UNIX_TIMESTAMP, DATE_FORMAT of a string, TO_DATE with a format). They
//! agree on most letters; [`Flavor`] selects where they differ: `S` is a
//! fraction of the second in the first and a number of milliseconds in the
//! second, `u` is a year or a day number of the week, `Q`/`n` exist only in
//! the first. Sluice's session time zone is UTC, so zone letters (`z`, `Z`,
//! `X`, `x`, `O`, `VV`) print UTC.

/// Which Java formatter's rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// `java.time.format.DateTimeFormatter`.
    Formatter,
    /// `java.text.SimpleDateFormat`.
    Simple,
}

/// What a pattern letter stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Era,
    Year,
    WeekYear,
    Month,
    Day,
    DayOfYear,
    WeekOfYear,
    Quarter,
    WeekdayName,
    /// Day number of the week, Monday = 1 (`u` in SimpleDateFormat).
    WeekdayNumber,
    AmPm,
    /// `H`, 0..=23.
    Hour23,
    /// `k`, 1..=24.
    Hour24,
    /// `K`, 0..=11.
    Hour11,
    /// `h`, 1..=12.
    Hour12,
    Minute,
    Second,
    /// `S`: fraction (Formatter) or milliseconds (Simple).
    Fraction,
    /// `n`: nanosecond of the second.
    Nano,
    /// `z`, `V`: the zone name.
    ZoneName,
    /// `Z`: `+0000`.
    ZoneOffset,
    /// `X`: `Z` for UTC.
    IsoOffset,
    /// `x`: `+00` for UTC.
    LocalOffset,
    /// `O`: `GMT`.
    GmtOffset,
}

impl Field {
    /// Whether the field prints as digits (for adjacent-value parsing).
    pub(crate) fn is_numeric(self, count: usize) -> bool {
        match self {
            Field::Month | Field::Quarter => count <= 2,
            Field::Era
            | Field::WeekdayName
            | Field::AmPm
            | Field::ZoneName
            | Field::ZoneOffset
            | Field::IsoOffset
            | Field::LocalOffset
            | Field::GmtOffset => false,
            _ => true,
        }
    }
}

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    Literal(String),
    Field(Field, usize),
}

/// A compiled Java date pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    pub items: Vec<Item>,
    pub flavor: Flavor,
}

fn letter(c: char, flavor: Flavor) -> Result<Field, String> {
    use Flavor::*;
    Ok(match (c, flavor) {
        ('G', _) => Field::Era,
        ('y', _) | ('u', Formatter) => Field::Year,
        ('u', Simple) => Field::WeekdayNumber,
        ('Y', _) => Field::WeekYear,
        ('M' | 'L', _) => Field::Month,
        ('d', _) => Field::Day,
        ('D', _) => Field::DayOfYear,
        ('w', _) => Field::WeekOfYear,
        ('Q' | 'q', Formatter) => Field::Quarter,
        ('E', _) => Field::WeekdayName,
        ('a', _) => Field::AmPm,
        ('H', _) => Field::Hour23,
        ('k', _) => Field::Hour24,
        ('K', _) => Field::Hour11,
        ('h', _) => Field::Hour12,
        ('m', _) => Field::Minute,
        ('s', _) => Field::Second,
        ('S', _) => Field::Fraction,
        ('n', Formatter) => Field::Nano,
        ('z', _) | ('V', Formatter) => Field::ZoneName,
        ('Z', _) => Field::ZoneOffset,
        ('X', _) => Field::IsoOffset,
        ('x', Formatter) => Field::LocalOffset,
        ('O', Formatter) => Field::GmtOffset,
        ('W' | 'F', Simple) | ('W' | 'F' | 'e' | 'c' | 'A' | 'N' | 'B' | 'g', Formatter) => {
            return Err(format!("pattern letter '{c}' is not supported"))
        }
        _ => return Err(format!("unknown pattern letter '{c}'")),
    })
}

/// Compile a Java date pattern.
pub(crate) fn compile(pattern: &str, flavor: Flavor) -> Result<Pattern, String> {
    let mut items: Vec<Item> = Vec::new();
    let push_lit = |items: &mut Vec<Item>, s: &str| match items.last_mut() {
        Some(Item::Literal(l)) => l.push_str(s),
        _ => items.push(Item::Literal(s.to_string())),
    };
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // 'text' is literal; '' is one quote, inside or outside quotes.
            if chars.get(i + 1) == Some(&'\'') {
                push_lit(&mut items, "'");
                i += 2;
                continue;
            }
            let mut text = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("unterminated quote".into()),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        text.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(&ch) => {
                        text.push(ch);
                        i += 1;
                    }
                }
            }
            push_lit(&mut items, &text);
        } else if c.is_ascii_alphabetic() {
            let mut n = 1;
            while chars.get(i + n) == Some(&c) {
                n += 1;
            }
            let field = letter(c, flavor)?;
            if flavor == Flavor::Formatter && n > max_count(field) {
                return Err(format!(
                    "too many pattern letters: '{}'",
                    c.to_string().repeat(n)
                ));
            }
            items.push(Item::Field(field, n));
            i += n;
        } else if flavor == Flavor::Formatter && matches!(c, '[' | ']' | '{' | '}' | '#') {
            return Err(format!(
                "'{c}' (optional sections, reserved characters) is not supported"
            ));
        } else {
            push_lit(&mut items, &c.to_string());
            i += 1;
        }
    }
    Ok(Pattern { items, flavor })
}

/// The most letters `DateTimeFormatter` accepts for a field.
fn max_count(f: Field) -> usize {
    match f {
        Field::Era | Field::Month | Field::Quarter | Field::WeekdayName => 5,
        Field::AmPm | Field::GmtOffset => 4,
        Field::Day
        | Field::Hour23
        | Field::Hour24
        | Field::Hour11
        | Field::Hour12
        | Field::Minute
        | Field::Second
        | Field::WeekOfYear
        | Field::ZoneName => 4,
        Field::DayOfYear => 3,
        Field::ZoneOffset | Field::IsoOffset | Field::LocalOffset => 5,
        Field::Fraction | Field::Nano => 9,
        _ => 19,
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_patterns() {
        assert_eq!(
            compile("yyyy-QQ", Flavor::Simple),
            Err("unknown pattern letter 'Q'".into())
        );
        assert_eq!(
            compile("yyyy-bb", Flavor::Formatter),
            Err("unknown pattern letter 'b'".into())
        );
        assert_eq!(
            compile("'abc", Flavor::Simple),
            Err("unterminated quote".into())
        );
        assert!(compile("yyyy[-MM]", Flavor::Formatter).is_err());
        assert!(compile("dddddd", Flavor::Formatter).is_err());
    }
}
