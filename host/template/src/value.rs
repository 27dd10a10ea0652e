//! The data a template sees: a small dynamic model of the Go values Prometheus and
//! Alertmanager hand to `text/template`.
//!
//! Go templates are driven by reflection over typed Go values. Pharos has no such types at
//! run time, so the few distinctions that change what a template prints or whether it
//! fails are kept explicitly:
//! - integers and floats are different kinds (Go refuses `lt 1 1.5`, and prints them
//!   differently);
//! - a string-valued map ([`Value::StrMap`], e.g. a label set) yields `""` for a missing
//!   key where Go's zero value of `string` would, while a generic [`Value::Map`] yields no
//!   value;
//! - a [`Value::Struct`] has a fixed set of fields: a missing one is an error, as in Go;
//! - a [`Value::Named`] is a map or list of a Go named type with methods (Alertmanager's
//!   `KV`, `Alerts`, `Pairs`): `.Name` calls the method before looking up a key, and it
//!   prints through its `String` method when it has one.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

#[cfg(feature = "prometheus")]
use pharos_model::labels::Labels;

/// One template value. Cloning is cheap: lists, maps and structs are shared.
#[derive(Debug, Clone, Default)]
pub enum Value {
    /// Go's nil (and "no value", e.g. a missing map key).
    #[default]
    Nil,
    Bool(bool),
    /// Go's `int`: what integer constants in a template and `len` produce.
    Int(i64),
    /// Go's `float64`: sample values.
    Float(f64),
    String(String),
    List(Arc<Vec<Value>>),
    /// `map[string]interface{}`; iterated in key order, as Go's templates do.
    Map(Arc<BTreeMap<String, Value>>),
    /// `map[string]string`, e.g. a label set: a missing key is `""` where Go gives the
    /// zero value.
    StrMap(Arc<BTreeMap<String, String>>),
    /// A Go struct: named fields in declaration order.
    Struct(Arc<Struct>),
    /// A Go `time.Time`, always UTC here.
    Time(Time),
    /// A Go `time.Duration`.
    Duration(Duration),
    /// A value of a Go named type with methods, e.g. Alertmanager's `template.KV`.
    Named(Arc<Named>),
}

/// The methods of a named type: `Some` result for a method the type has, `None` otherwise.
/// Called with the underlying value, the method's name and its arguments.
pub type Methods = fn(&Value, &str, &[Value]) -> Option<Result<Value, String>>;

/// A Go named type's value: everywhere but method calls and printing it is its
/// underlying `value` (indexing, `len`, `range`, comparisons, function arguments).
#[derive(Debug, Clone)]
pub struct Named {
    /// The Go type name, for error messages (`template.KV`).
    pub type_name: String,
    pub value: Value,
    pub methods: Methods,
}

impl PartialEq for Named {
    fn eq(&self, other: &Named) -> bool {
        self.type_name == other.type_name && self.value == other.value
    }
}

/// A Go struct value: a type name (for error messages) and its fields in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Struct {
    pub type_name: String,
    pub fields: Vec<(String, Value)>,
}

impl Struct {
    /// The field called `name`, if the struct has one.
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// An instant as Unix seconds and nanoseconds, printed as Go prints a UTC `time.Time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Time {
    pub secs: i64,
    /// Always in `0..1_000_000_000`.
    pub nanos: u32,
}

impl Time {
    /// The instant `nanos` nanoseconds after the Unix epoch.
    pub fn from_unix_nanos(nanos: i64) -> Time {
        Time {
            secs: nanos.div_euclid(1_000_000_000),
            nanos: nanos.rem_euclid(1_000_000_000) as u32,
        }
    }

    /// Seconds since the epoch as a float, as Prometheus's templates use timestamps.
    pub fn as_f64(&self) -> f64 {
        self.secs as f64 + f64::from(self.nanos) / 1e9
    }
}

/// Days since 1970-01-01 to a civil (year, month, day): Howard Hinnant's algorithm.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl fmt::Display for Time {
    /// Go's `Time.String()` for a UTC time: `2006-01-02 15:04:05.999999999 +0000 UTC`,
    /// the fraction without trailing zeros and absent when zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.secs.div_euclid(86_400);
        let rem = self.secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        )?;
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            write!(f, ".{}", frac.trim_end_matches('0'))?;
        }
        f.write_str(" +0000 UTC")
    }
}

/// A Go `time.Duration`: nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub i64);

impl fmt::Display for Duration {
    /// Go's `Duration.String()`: `72h3m0.5s`, `1.5ms`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.0 < 0;
        let u = self.0.unsigned_abs();
        let sign = if neg { "-" } else { "" };
        if u < 1_000_000_000 {
            if u == 0 {
                return f.write_str("0s");
            }
            let (unit, scale) = if u < 1_000 {
                ("ns", 1)
            } else if u < 1_000_000 {
                ("µs", 1_000)
            } else {
                ("ms", 1_000_000)
            };
            return write!(f, "{sign}{}{unit}", frac_str(u, scale));
        }
        let secs = u / 1_000_000_000;
        let sub = u % 1_000_000_000;
        let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        let s_part = frac_str(s * 1_000_000_000 + sub, 1_000_000_000);
        if h > 0 {
            write!(f, "{sign}{h}h{m}m{s_part}s")
        } else if m > 0 {
            write!(f, "{sign}{m}m{s_part}s")
        } else {
            write!(f, "{sign}{s_part}s")
        }
    }
}

/// `v / scale` with the fraction's trailing zeros removed.
fn frac_str(v: u64, scale: u64) -> String {
    let whole = v / scale;
    let frac = v % scale;
    if frac == 0 {
        return whole.to_string();
    }
    let width = scale.ilog10() as usize;
    let f = format!("{frac:0width$}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

impl Value {
    /// A struct value with the given Go type name and fields.
    pub fn structure<K: Into<String>>(
        type_name: &str,
        fields: impl IntoIterator<Item = (K, Value)>,
    ) -> Value {
        Value::Struct(Arc::new(Struct {
            type_name: type_name.to_string(),
            fields: fields.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        }))
    }

    /// Go's notion of truth used by `if`, `with`, `and`, `or`, `not`: false for the zero
    /// value of a type and for empty collections, true for every struct.
    pub fn is_true(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::String(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::StrMap(m) => !m.is_empty(),
            Value::Struct(_) | Value::Time(_) => true,
            Value::Duration(d) => d.0 != 0,
            Value::Named(n) => n.value.is_true(),
        }
    }

    /// A value of Go named type `type_name` over `value`, with `methods`.
    pub fn named(type_name: &str, value: Value, methods: Methods) -> Value {
        Value::Named(Arc::new(Named {
            type_name: type_name.to_string(),
            value,
            methods,
        }))
    }

    /// The value under any named types: what builtins and functions operate on.
    pub fn underlying(&self) -> &Value {
        let mut v = self;
        while let Value::Named(n) = v {
            v = &n.value;
        }
        v
    }

    /// The Go type name, for error messages (`wrong type`, `%!d(string=x)`).
    pub fn type_name(&self) -> String {
        match self {
            Value::Nil => "<nil>".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) => "int".into(),
            Value::Float(_) => "float64".into(),
            Value::String(_) => "string".into(),
            Value::List(_) => "[]interface {}".into(),
            Value::Map(_) => "map[string]interface {}".into(),
            Value::StrMap(_) => "map[string]string".into(),
            Value::Struct(s) => s.type_name.clone(),
            Value::Time(_) => "time.Time".into(),
            Value::Duration(_) => "time.Duration".into(),
            Value::Named(n) => n.type_name.clone(),
        }
    }

    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Go's `fmt.Sprint` of one value (`%v`): what an action prints.
    pub fn to_go_string(&self) -> String {
        let mut s = String::new();
        crate::gofmt::write_v(&mut s, self, false, true);
        s
    }
}

impl PartialEq for Value {
    /// Structural equality, floats by value (so NaN != NaN, as in Go).
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Nil, Value::Nil) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::List(a), Value::List(b)) => a == b,
            (Value::Map(a), Value::Map(b)) => a == b,
            (Value::StrMap(a), Value::StrMap(b)) => a == b,
            (Value::Struct(a), Value::Struct(b)) => a == b,
            (Value::Time(a), Value::Time(b)) => a == b,
            (Value::Duration(a), Value::Duration(b)) => a == b,
            (Value::Named(a), Value::Named(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_go_string())
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Value {
        Value::Int(i64::from(v))
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::Int(i64::from(v))
    }
}
impl From<usize> for Value {
    fn from(v: usize) -> Value {
        Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::String(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::String(v)
    }
}
impl From<Time> for Value {
    fn from(v: Time) -> Value {
        Value::Time(v)
    }
}
impl From<Duration> for Value {
    fn from(v: Duration) -> Value {
        Value::Duration(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Nil, Into::into)
    }
}
impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Value {
        Value::List(Arc::new(v.into_iter().map(Into::into).collect()))
    }
}
impl From<BTreeMap<String, Value>> for Value {
    fn from(m: BTreeMap<String, Value>) -> Value {
        Value::Map(Arc::new(m))
    }
}
impl From<HashMap<String, Value>> for Value {
    fn from(m: HashMap<String, Value>) -> Value {
        Value::Map(Arc::new(m.into_iter().collect()))
    }
}
impl From<HashMap<String, String>> for Value {
    fn from(m: HashMap<String, String>) -> Value {
        Value::StrMap(Arc::new(m.into_iter().collect()))
    }
}
#[cfg(feature = "prometheus")]
impl From<&Labels> for Value {
    /// A label set is a `map[string]string` in Prometheus's template data.
    fn from(l: &Labels) -> Value {
        Value::StrMap(Arc::new(
            l.iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect(),
        ))
    }
}
impl From<BTreeMap<String, String>> for Value {
    fn from(m: BTreeMap<String, String>) -> Value {
        Value::StrMap(Arc::new(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_prints_like_go() {
        let t = Time::from_unix_nanos(1_435_065_584_128_000_000);
        assert_eq!(t.to_string(), "2015-06-23 13:19:44.128 +0000 UTC");
        assert_eq!(
            Time::from_unix_nanos(-1_000_000_000).to_string(),
            "1969-12-31 23:59:59 +0000 UTC"
        );
        assert_eq!(
            Time::from_unix_nanos(9_223_372_036_000_000_000).to_string(),
            "2262-04-11 23:47:16 +0000 UTC"
        );
    }

    #[test]
    fn duration_prints_like_go() {
        let cases = [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (1_500_000, "1.5ms"),
            (1_000_000_000, "1s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_661_500_000_000, "1h1m1.5s"),
            (-2_000_000_000, "-2s"),
        ];
        for (n, want) in cases {
            assert_eq!(Duration(n).to_string(), want, "{n}");
        }
    }

    #[test]
    fn truth_follows_go() {
        assert!(!Value::Nil.is_true());
        assert!(!Value::from("").is_true());
        assert!(Value::from("x").is_true());
        assert!(!Value::Int(0).is_true());
        assert!(!Value::Float(0.0).is_true());
        assert!(!Value::from(Vec::<Value>::new()).is_true());
        assert!(Value::structure::<&str>("T", []).is_true());
    }
}
