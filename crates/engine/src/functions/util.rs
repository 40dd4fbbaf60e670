//! Scaffolding shared by the Flink functions: one UDF type driven by plain
//! functions, argument coercion and validation helpers, and the step from
//! argument arrays back to a scalar or an array.
//!
//! Coercion (`coerce`) never fails: it maps the types it knows (every string
//! type to `Utf8`, integers to `Int64`, ...) and leaves the rest, so that
//! `ret` can reject them with a message naming the function and argument
//! (DataFusion wraps errors raised in coercion in a generic sentence).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{exec_err, internal_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

/// Maps argument types to the types the function wants (never fails).
pub(crate) type Coerce = fn(&[DataType]) -> Vec<DataType>;
/// The return type from the coerced argument types and the literal
/// arguments (`None` where an argument is not a literal); rejects bad calls.
pub(crate) type Ret = fn(&[DataType], &[Option<&ScalarValue>]) -> Result<DataType>;
/// Evaluates a call.
pub(crate) type Invoke = fn(&ScalarFunctionArgs) -> Result<ColumnarValue>;

/// A scalar function made of three plain functions.
pub(crate) struct Udf {
    name: &'static str,
    aliases: Vec<String>,
    signature: Signature,
    coerce: Coerce,
    ret: Ret,
    invoke: Invoke,
}

impl Udf {
    /// An immutable function.
    pub(crate) fn new(name: &'static str, coerce: Coerce, ret: Ret, invoke: Invoke) -> Self {
        Self::with_volatility(name, Volatility::Immutable, coerce, ret, invoke)
    }

    /// A function of the given volatility.
    pub(crate) fn with_volatility(
        name: &'static str,
        volatility: Volatility,
        coerce: Coerce,
        ret: Ret,
        invoke: Invoke,
    ) -> Self {
        Udf {
            name,
            aliases: vec![],
            signature: Signature::user_defined(volatility),
            coerce,
            ret,
            invoke,
        }
    }

    /// Also callable as `aliases`.
    pub(crate) fn aliases(mut self, aliases: &[&str]) -> Self {
        self.aliases = aliases.iter().map(|a| a.to_string()).collect();
        self
    }

    /// As a DataFusion function.
    pub(crate) fn build(self) -> ScalarUDF {
        ScalarUDF::new_from_impl(self)
    }
}

impl fmt::Debug for Udf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Udf").field("name", &self.name).finish()
    }
}

impl PartialEq for Udf {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Udf {}

impl Hash for Udf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for Udf {
    fn name(&self) -> &str {
        self.name
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        internal_err!("{}: return_field_from_args is used instead", self.name)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let t = (self.ret)(&types, args.scalar_arguments)?;
        Ok(Arc::new(Field::new(self.name, t, true)))
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok((self.coerce)(arg_types))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        (self.invoke)(&args)
    }
}

/// The upper-case SQL name of a function, for messages.
pub(crate) fn upper(name: &str) -> String {
    name.to_ascii_uppercase()
}

/// Every string type (and NULL) as `Utf8`; other types unchanged.
pub(crate) fn to_utf8(t: &DataType) -> DataType {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {
            DataType::Utf8
        }
        other => other.clone(),
    }
}

/// Integers (and NULL) as `Int64`; other types unchanged.
pub(crate) fn to_i64(t: &DataType) -> DataType {
    if t.is_integer() || *t == DataType::Null {
        DataType::Int64
    } else {
        t.clone()
    }
}

/// Numbers (and NULL) as `Float64`; other types unchanged.
pub(crate) fn to_f64(t: &DataType) -> DataType {
    if t.is_numeric() || *t == DataType::Null {
        DataType::Float64
    } else {
        t.clone()
    }
}

/// Coerce each argument with `f`.
pub(crate) fn map_all(types: &[DataType], f: fn(&DataType) -> DataType) -> Vec<DataType> {
    types.iter().map(f).collect()
}

/// Check the number of arguments.
pub(crate) fn arity(name: &str, types: &[DataType], min: usize, max: usize) -> Result<()> {
    let n = types.len();
    if n >= min && n <= max {
        return Ok(());
    }
    let expected = if min == max {
        format!("{min}")
    } else if max == usize::MAX {
        format!("at least {min}")
    } else {
        format!("{min} to {max}")
    };
    plan_err!(
        "{}: expected {expected} argument{}, got {n}",
        upper(name),
        if expected == "1" || expected == "at least 1" {
            ""
        } else {
            "s"
        }
    )
}

/// Check that argument `i` (0-based) has type `want` after coercion.
pub(crate) fn expect(name: &str, types: &[DataType], i: usize, want: &DataType) -> Result<()> {
    match types.get(i) {
        Some(t) if t == want => Ok(()),
        Some(t) => plan_err!(
            "{}: argument {} must be {}, got {}",
            upper(name),
            i + 1,
            kind(want),
            sluice_sql::types::sql_type_name(t)
        ),
        None => plan_err!("{}: missing argument {}", upper(name), i + 1),
    }
}

fn kind(t: &DataType) -> &'static str {
    match t {
        DataType::Utf8 => "a string",
        DataType::Int64 => "an integer",
        DataType::Float64 => "a number",
        _ => "of another type",
    }
}

/// The arguments as arrays of one length (scalars repeated).
pub(crate) fn arrays(args: &ScalarFunctionArgs) -> Result<Vec<ArrayRef>> {
    ColumnarValue::values_to_arrays(&args.args)
}

/// `out` as the call's result: a scalar when every argument was a scalar.
pub(crate) fn finish(args: &ScalarFunctionArgs, out: ArrayRef) -> Result<ColumnarValue> {
    let all_scalar = !args.args.is_empty()
        && args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
    if all_scalar && out.len() == 1 {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
    } else {
        Ok(ColumnarValue::Array(out))
    }
}

/// Argument `i` as a `Utf8` array (the coercion guarantees the type).
pub(crate) fn str_arg<'a>(name: &str, a: &'a [ArrayRef], i: usize) -> Result<&'a StringArray> {
    match a.get(i).and_then(|a| a.as_string_opt::<i32>()) {
        Some(s) => Ok(s),
        None => exec_err!("{}: argument {} is not a string", upper(name), i + 1),
    }
}

/// Argument `i` as an `Int64` array.
pub(crate) fn i64_arg<'a>(name: &str, a: &'a [ArrayRef], i: usize) -> Result<&'a Int64Array> {
    match a
        .get(i)
        .and_then(|a| a.as_primitive_opt::<arrow::datatypes::Int64Type>())
    {
        Some(s) => Ok(s),
        None => exec_err!("{}: argument {} is not an integer", upper(name), i + 1),
    }
}

/// A literal string argument, if argument `i` is one (`Some(None)` for a
/// NULL literal).
pub(crate) fn literal_str<'a>(
    scalars: &[Option<&'a ScalarValue>],
    i: usize,
) -> Option<Option<&'a str>> {
    scalars
        .get(i)
        .copied()
        .flatten()
        .and_then(|s| s.try_as_str())
}

/// Keeps the last compiled form of a per-row argument (a pattern or a regex),
/// so a constant argument is compiled once per batch.
pub(crate) struct Cache<T> {
    key: Option<String>,
    value: Option<T>,
}

impl<T> Default for Cache<T> {
    fn default() -> Self {
        Cache {
            key: None,
            value: None,
        }
    }
}

impl<T> Cache<T> {
    /// The compiled form of `key`, compiling it with `f` when it changed.
    pub(crate) fn get<E>(
        &mut self,
        key: &str,
        f: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<&T, E> {
        if self.key.as_deref() != Some(key) {
            self.value = None;
        }
        let v = match self.value.take() {
            Some(v) => v,
            None => {
                let v = f(key)?;
                self.key = Some(key.to_string());
                v
            }
        };
        Ok(self.value.insert(v))
    }
}
