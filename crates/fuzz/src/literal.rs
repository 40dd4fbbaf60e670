//! Literals of every type, including the awkward ones: extremes, tiny and
//! huge numbers, empty and non-ASCII strings, invalid dates, odd intervals.

use crate::catalog::Ty;
use crate::rng::Rng;

const INTS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "7",
    "-13",
    "100",
    "127",
    "-128",
    "32767",
    "2147483647",
    "-2147483648",
    "2147483648",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "18446744073709551616",
    "99999999999999999999999999999999999999",
    "000123",
];

const FLOATS: &[&str] = &[
    "0.0",
    "-0.0",
    "1.5",
    "-2.75",
    "3.141592653589793",
    "1e308",
    "1.7976931348623157e308",
    "-1e308",
    "1e309",
    "4.9e-324",
    "1e-320",
    "2.2250738585072014e-308",
    "1e-45",
    "123456789.123456789",
    "CAST('NaN' AS DOUBLE)",
    "CAST('inf' AS DOUBLE)",
    "CAST('-Infinity' AS DOUBLE)",
];

const DECIMALS: &[&str] = &[
    "CAST(1.25 AS DECIMAL(10, 2))",
    "CAST(-0.01 AS DECIMAL(10, 2))",
    "CAST(99999999.99 AS DECIMAL(10, 2))",
    "CAST(0 AS DECIMAL(38, 10))",
    "CAST(12345678901234567890.123 AS DECIMAL(38, 3))",
    "CAST('3.5' AS DECIMAL(4, 1))",
    "CAST(1 AS DECIMAL(1, 0))",
    "0.000000000000000000000000000001",
];

const STRINGS: &[&str] = &[
    "''",
    "' '",
    "'a'",
    "'abc'",
    "'A'",
    "'it''s'",
    "'ünïcødé ✓'",
    "'日本語'",
    "'%'",
    "'_a%'",
    "'\\n'",
    "'NULL'",
    "'123'",
    "'-42'",
    "'1.5e3'",
    "'true'",
    "'2024-01-01'",
    "'2024-01-01 00:00:10'",
    "'not a number'",
    "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'",
];

const TIMESTAMPS: &[&str] = &[
    "TIMESTAMP '2024-01-01 00:00:00'",
    "TIMESTAMP '2024-01-01 00:00:05.123'",
    "TIMESTAMP '1970-01-01 00:00:00'",
    "TIMESTAMP '1969-12-31 23:59:59.999'",
    "TIMESTAMP '2262-04-11 23:47:16'",
    "TIMESTAMP '1677-09-21 00:12:44'",
    "TIMESTAMP '9999-12-31 23:59:59'",
    "TIMESTAMP '0001-01-01 00:00:00'",
    "TIMESTAMP '2024-02-30 00:00:00'",
    "TIMESTAMP '2024-13-01 00:00:00'",
    "TIMESTAMP '2024-01-01 25:61:61'",
    "TIMESTAMP 'yesterday'",
    "TIMESTAMP ''",
    "TIMESTAMP '2024-01-01T12:00:00Z'",
    "TIMESTAMP '2024-01-01 12:00:00+05:30'",
];

const DATES: &[&str] = &[
    "DATE '2024-01-01'",
    "DATE '2024-02-29'",
    "DATE '2023-02-29'",
    "DATE '1970-01-01'",
    "DATE '0001-01-01'",
    "DATE '9999-12-31'",
    "DATE '10000-01-01'",
    "DATE '2024-00-10'",
    "DATE 'tomorrow'",
    "DATE '-0001-01-01'",
];

/// Interval literals, valid and not.
pub const INTERVALS: &[&str] = &[
    "INTERVAL '1' SECOND",
    "INTERVAL '10' SECOND",
    "INTERVAL '2' MINUTE",
    "INTERVAL '1' HOUR",
    "INTERVAL '1' DAY",
    "INTERVAL '0' SECOND",
    "INTERVAL '-5' SECOND",
    "INTERVAL '0.5' SECOND",
    "INTERVAL '1.5' MINUTE",
    "INTERVAL '1' MONTH",
    "INTERVAL '1-2' YEAR TO MONTH",
    "INTERVAL '1 02:03:04' DAY TO SECOND",
    "INTERVAL '999999999' DAY",
    "INTERVAL '9223372036854775807' SECOND",
    "INTERVAL '1 second'",
    "INTERVAL 'banana' SECOND",
    "INTERVAL '' SECOND",
    "INTERVAL '3' MILLISECOND",
];

/// Interval literals that make sense as window sizes (mostly valid, small).
pub const WINDOW_SIZES: &[&str] = &[
    "INTERVAL '1' SECOND",
    "INTERVAL '5' SECOND",
    "INTERVAL '10' SECOND",
    "INTERVAL '1' MINUTE",
    "INTERVAL '2' SECOND",
    "INTERVAL '30' SECOND",
    "INTERVAL '1' HOUR",
    "INTERVAL '1' DAY",
];

/// A literal of type `ty`; now and then NULL or a typed NULL.
pub fn literal(r: &mut Rng, ty: Ty) -> String {
    if r.chance(4) {
        return "NULL".into();
    }
    if r.chance(3) {
        return format!("CAST(NULL AS {})", crate::expr::type_name(r, ty));
    }
    let list = match ty {
        Ty::Int => INTS,
        Ty::Float => FLOATS,
        Ty::Dec => DECIMALS,
        Ty::Str => STRINGS,
        Ty::Bool => &["TRUE", "FALSE", "NOT TRUE"][..],
        Ty::Ts => TIMESTAMPS,
        Ty::Date => DATES,
    };
    // Mostly the first, ordinary entries; the rest are the extremes.
    let i = if r.chance(60) {
        r.below(list.len().min(6))
    } else {
        r.below(list.len())
    };
    list[i].to_string()
}

/// Any literal at all, including intervals.
pub fn any_literal(r: &mut Rng) -> String {
    if r.chance(10) {
        return r.pick(INTERVALS).to_string();
    }
    let ty = *r.pick(&crate::catalog::TYPES);
    literal(r, ty)
}
