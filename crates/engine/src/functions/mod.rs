//! Flink SQL functions: the ones DataFusion lacks and the ones whose
//! DataFusion namesake means something else (Flink's meaning wins; a UDF
//! registered under an existing name replaces DataFusion's).
//!
//! * [`java_time`] compiles Java date patterns, [`java_format`] formats and
//!   [`java_parse`] parses with them; [`calendar`] is the date arithmetic.
//! * [`datetime`]: DATE_FORMAT, TO_TIMESTAMP, TO_DATE. [`epoch`]:
//!   TO_TIMESTAMP_LTZ, UNIX_TIMESTAMP, FROM_UNIXTIME. [`timeadd`]: TIMESTAMPADD,
//!   TIMESTAMPDIFF, FLOOR/CEIL(x TO unit). [`extract`]: YEAR .. SECOND.
//!   [`clock`]: NOW, CURRENT_TIMESTAMP, LOCALTIMESTAMP, LOCALTIME,
//!   CURRENT_DATE.
//! * [`strings`], [`regex`], [`encoding`], [`math`], [`predicates`]:
//!   string, regex, base64/SHA-2/HEX, numeric and IS_ALPHA/IS_DIGIT/
//!   IS_DECIMAL functions. [`listagg`]: the LISTAGG
//!   aggregate.
//! * [`control`]: GREATEST and LEAST (NULL if any argument is NULL).
//! * [`cast`]: the analyzer rule giving CAST(x AS STRING) Flink's format.
//! * [`watermark`]: CURRENT_WATERMARK (typed here, planned by the planner).
//!
//! IF and IFNULL are rewritten on the AST (into CASE and COALESCE, which
//! evaluate lazily), as are the keyword arguments of TIMESTAMPADD & co.: see
//! `sluice_sql::flink_calls`.

use std::sync::Arc;

use arrow::compute::kernels::numeric::rem;
use arrow::datatypes::DataType;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{create_udf, ColumnarValue, Volatility};
use datafusion::optimizer::AnalyzerRule;

mod calendar;
mod cast;
mod clock;
mod control;
mod datetime;
mod encoding;
mod epoch;
mod extract;
mod java_format;
mod java_parse;
mod java_time;
mod listagg;
mod math;
mod predicates;
mod regex;
mod strings;
mod timeadd;
mod util;
mod watermark;

pub(crate) use watermark::CURRENT_WATERMARK;

pub use cast::FlinkCastRule;

/// The analyzer rule formatting CAST(x AS STRING) as Flink does; append it
/// after DataFusion's rules.
pub(crate) fn cast_rule() -> Arc<dyn AnalyzerRule + Send + Sync> {
    Arc::new(FlinkCastRule)
}

/// Register Flink-compatible functions, replacing DataFusion's functions of
/// the same name.
pub(crate) fn register(ctx: &SessionContext) {
    ctx.register_udf(modulo());
    let groups = [
        datetime::functions(),
        epoch::functions(),
        timeadd::functions(),
        extract::functions(),
        clock::functions(),
        control::functions(),
        strings::functions(),
        regex::functions(),
        encoding::functions(),
        math::functions(),
        predicates::functions(),
        watermark::functions(),
    ];
    for udf in groups.into_iter().flatten() {
        ctx.register_udf(udf);
    }
    ctx.register_udf(cast::to_string_udf().as_ref().clone());
    ctx.register_udaf(listagg::listagg());
}

/// `MOD(a, b)`: the remainder, as `%`.
fn modulo() -> datafusion::logical_expr::ScalarUDF {
    create_udf(
        "mod",
        vec![DataType::Int64, DataType::Int64],
        DataType::Int64,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let (a, b) = (&arrays[0], &arrays[1]);
            let out = rem(a, b)?;
            // A scalar call gives a scalar back.
            if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
                Ok(ColumnarValue::Scalar(
                    datafusion::common::ScalarValue::try_from_array(&out, 0)?,
                ))
            } else {
                Ok(ColumnarValue::Array(out))
            }
        }),
    )
}

/// Names of the functions Sluice defines or redefines, for docs and tests.
#[cfg(test)]
pub(crate) fn names() -> Vec<String> {
    let ctx = SessionContext::new();
    register(&ctx);
    let mut names: Vec<String> = ctx.state().scalar_functions().keys().cloned().collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_flink_names() {
        let names = names();
        for n in [
            "date_format",
            "timestampadd",
            "split_index",
            "now",
            "substr",
            "log",
        ] {
            assert!(names.iter().any(|x| x == n), "{n} missing");
        }
    }
}
