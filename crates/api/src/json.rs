//! Careful JSON parsing: request bodies, vector components and ids.
//!
//! [`parse_json`] turns serde errors into 400s: syntax errors (and empty or
//! truncated bodies) become [`ApiError::InvalidJson`], well-formed JSON of the
//! wrong shape (wrong type, missing required field, unknown `type` tag)
//! becomes [`ApiError::InvalidBody`].
//!
//! Vectors and ids are *not* deserialized straight into `Vec<f32>` / `u64`:
//! serde would either fail the whole body with a line/column message that
//! does not name the batch item, or — worse — silently turn `1e39` into
//! `f32::INFINITY`. Instead [`VectorValues`] and [`IdInput`] accept any JSON
//! value and record the *first problem* they saw; the `validate` functions
//! then report it with the item index and field
//! (`vectors[3].vector[7]: 1e39 is outside the f32 range`).
//!
//! Invariant: a [`VectorValues`] with no problem holds only finite `f32`s:
//! a number is accepted iff rounding it to the nearest `f32` is finite
//! (`3.4028235e38`, the printed `f32::MAX`, is accepted; `1e39` is not).

use std::fmt;

use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::error::Category;

use crate::ApiError;

/// Parses a request body, mapping every failure to a 400 [`ApiError`].
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::InvalidJson("request body is empty".to_owned()));
    }
    serde_json::from_slice(bytes).map_err(json_error)
}

/// Maps a serde_json error to [`ApiError::InvalidJson`] (syntax, EOF) or
/// [`ApiError::InvalidBody`] (wrong type, missing field, unknown variant).
pub fn json_error(e: serde_json::Error) -> ApiError {
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::InvalidJson(e.to_string()),
        Category::Data => ApiError::InvalidBody(e.to_string()),
    }
}

impl From<serde_json::Error> for ApiError {
    /// Same mapping as [`json_error`].
    fn from(e: serde_json::Error) -> Self {
        json_error(e)
    }
}

/// Parses a vector id from a URL path segment: ASCII digits only (no sign,
/// no spaces), fitting in a u64. Anything else is [`ApiError::InvalidId`].
pub fn parse_vector_id(s: &str) -> Result<u64, ApiError> {
    let invalid = || ApiError::InvalidId(format!("invalid vector id {s:?}: expected an unsigned 64-bit integer"));
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    s.parse::<u64>().map_err(|_| invalid())
}

/// What was wrong with one element of a vector.
#[derive(Debug, Clone, PartialEq)]
pub enum ComponentProblem {
    /// `null`.
    Null,
    /// Not a number: the JSON kind that was found (`string`, `boolean`, …).
    NotANumber(&'static str),
    /// A number outside the finite `f32` range (e.g. `1e39`).
    OutOfRange(f64),
    /// NaN or ±infinity (JSON has no literal for these, but other formats do).
    NotFinite(f64),
}

impl fmt::Display for ComponentProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComponentProblem::Null => f.write_str("null is not a number"),
            ComponentProblem::NotANumber(kind) => write!(f, "expected a number, got {kind}"),
            ComponentProblem::OutOfRange(v) => write!(f, "{v:e} is outside the f32 range (±3.4028235e38)"),
            ComponentProblem::NotFinite(v) => write!(f, "{v} is not a finite number"),
        }
    }
}

/// What was wrong with a whole `vector` field.
#[derive(Debug, Clone, PartialEq)]
pub enum VectorProblem {
    /// The field was not an array: the JSON kind that was found.
    NotAnArray(&'static str),
    /// Element `index` was bad.
    Component {
        /// Position in the array.
        index: usize,
        /// What was wrong with it.
        problem: ComponentProblem,
    },
}

/// A JSON array of numbers, deserialized without failing on bad elements.
///
/// `values` always has one entry per array element (0.0 stands in for a bad
/// one), so the dimension can be checked even when a component is bad.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VectorValues {
    values: Vec<f32>,
    problem: Option<VectorProblem>,
}

impl VectorValues {
    /// The parsed components (0.0 in place of bad ones).
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// The first problem seen, if any.
    pub fn problem(&self) -> Option<&VectorProblem> {
        self.problem.as_ref()
    }

    /// The components, or the first problem.
    pub fn into_result(self) -> Result<Vec<f32>, VectorProblem> {
        match self.problem {
            Some(p) => Err(p),
            None => Ok(self.values),
        }
    }
}

impl From<Vec<f32>> for VectorValues {
    /// Wraps already-parsed components, recording the first non-finite one.
    fn from(values: Vec<f32>) -> Self {
        let problem = values.iter().position(|v| !v.is_finite()).map(|index| VectorProblem::Component {
            index,
            problem: ComponentProblem::NotFinite(f64::from(values[index])),
        });
        VectorValues { values, problem }
    }
}

/// One element of a vector, as found in the JSON.
enum Component {
    Number(f64),
    Bad(ComponentProblem),
}

impl Component {
    fn from_f64(v: f64) -> Component {
        if !v.is_finite() {
            Component::Bad(ComponentProblem::NotFinite(v))
        } else if (v as f32).is_infinite() {
            Component::Bad(ComponentProblem::OutOfRange(v))
        } else {
            Component::Number(v)
        }
    }
}

/// The JSON kind names used in messages.
const STRING: &str = "a string";
const BOOLEAN: &str = "a boolean";
const ARRAY: &str = "an array";
const OBJECT: &str = "an object";
const NUMBER: &str = "a number";
const NULL: &str = "null";

struct ComponentVisitor;

impl<'de> Visitor<'de> for ComponentVisitor {
    type Value = Component;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_f64<E>(self, v: f64) -> Result<Component, E> {
        Ok(Component::from_f64(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Component, E> {
        Ok(Component::from_f64(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Component, E> {
        Ok(Component::from_f64(v as f64))
    }
    fn visit_unit<E>(self) -> Result<Component, E> {
        Ok(Component::Bad(ComponentProblem::Null))
    }
    fn visit_none<E>(self) -> Result<Component, E> {
        Ok(Component::Bad(ComponentProblem::Null))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Component, E> {
        Ok(Component::Bad(ComponentProblem::NotANumber(BOOLEAN)))
    }
    fn visit_str<E>(self, _: &str) -> Result<Component, E> {
        Ok(Component::Bad(ComponentProblem::NotANumber(STRING)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Component, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Component::Bad(ComponentProblem::NotANumber(ARRAY)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Component, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Component::Bad(ComponentProblem::NotANumber(OBJECT)))
    }
}

impl<'de> Deserialize<'de> for Component {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ComponentVisitor)
    }
}

struct VectorVisitor;

impl VectorVisitor {
    fn not_an_array(kind: &'static str) -> VectorValues {
        VectorValues { values: Vec::new(), problem: Some(VectorProblem::NotAnArray(kind)) }
    }
}

impl<'de> Visitor<'de> for VectorVisitor {
    type Value = VectorValues;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of numbers")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<VectorValues, A::Error> {
        // Cap the pre-allocation: the hint comes from the client.
        let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        let mut problem = None;
        while let Some(c) = seq.next_element::<Component>()? {
            match c {
                Component::Number(v) => values.push(v as f32),
                Component::Bad(p) => {
                    if problem.is_none() {
                        problem = Some(VectorProblem::Component { index: values.len(), problem: p });
                    }
                    values.push(0.0);
                }
            }
        }
        Ok(VectorValues { values, problem })
    }
    fn visit_f64<E>(self, _: f64) -> Result<VectorValues, E> {
        Ok(Self::not_an_array(NUMBER))
    }
    fn visit_i64<E>(self, _: i64) -> Result<VectorValues, E> {
        Ok(Self::not_an_array(NUMBER))
    }
    fn visit_u64<E>(self, _: u64) -> Result<VectorValues, E> {
        Ok(Self::not_an_array(NUMBER))
    }
    fn visit_bool<E>(self, _: bool) -> Result<VectorValues, E> {
        Ok(Self::not_an_array(BOOLEAN))
    }
    fn visit_str<E>(self, _: &str) -> Result<VectorValues, E> {
        Ok(Self::not_an_array(STRING))
    }
    fn visit_unit<E>(self) -> Result<VectorValues, E> {
        Ok(Self::not_an_array(NULL))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<VectorValues, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Self::not_an_array(OBJECT))
    }
}

impl<'de> Deserialize<'de> for VectorValues {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(VectorVisitor)
    }
}

/// A vector id as found in the JSON: a u64, or a description of what was
/// there instead (kept so validation can name the item).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdInput {
    /// A non-negative integer that fits in a u64.
    Valid(u64),
    /// Anything else: what was found, e.g. `a negative number (-1)`.
    Invalid(String),
}

impl IdInput {
    /// The id, or what was found instead.
    pub fn into_result(self) -> Result<u64, String> {
        match self {
            IdInput::Valid(id) => Ok(id),
            IdInput::Invalid(found) => Err(found),
        }
    }
}

impl From<u64> for IdInput {
    fn from(id: u64) -> Self {
        IdInput::Valid(id)
    }
}

struct IdVisitor;

impl<'de> Visitor<'de> for IdVisitor {
    type Value = IdInput;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an unsigned 64-bit integer")
    }
    fn visit_u64<E>(self, v: u64) -> Result<IdInput, E> {
        Ok(IdInput::Valid(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<IdInput, E> {
        Ok(match u64::try_from(v) {
            Ok(id) => IdInput::Valid(id),
            Err(_) => IdInput::Invalid(format!("a negative number ({v})")),
        })
    }
    fn visit_f64<E>(self, v: f64) -> Result<IdInput, E> {
        Ok(IdInput::Invalid(format!("a non-integer or too large number ({v})")))
    }
    fn visit_bool<E>(self, v: bool) -> Result<IdInput, E> {
        Ok(IdInput::Invalid(format!("a boolean ({v})")))
    }
    fn visit_str<E>(self, v: &str) -> Result<IdInput, E> {
        let shown: String = v.chars().take(32).collect();
        Ok(IdInput::Invalid(format!("a string ({shown:?}); ids are JSON numbers, not strings")))
    }
    fn visit_unit<E>(self) -> Result<IdInput, E> {
        Ok(IdInput::Invalid(NULL.to_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<IdInput, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(IdInput::Invalid(ARRAY.to_owned()))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<IdInput, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(IdInput::Invalid(OBJECT.to_owned()))
    }
}

impl<'de> Deserialize<'de> for IdInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(IdVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vv(json: &str) -> VectorValues {
        serde_json::from_str(json).expect("VectorValues never fails on well-formed JSON")
    }

    #[test]
    fn good_vectors_parse() {
        let v = vv("[1, -2, 0.5, 3.4028235e38, 1e-50]");
        assert_eq!(v.problem(), None);
        assert_eq!(v.values(), &[1.0, -2.0, 0.5, f32::MAX, 0.0]);
    }

    #[test]
    fn out_of_f32_range_is_recorded_not_turned_into_infinity() {
        let v = vv("[0.0, 1e39, -1e39]");
        assert_eq!(
            v.problem(),
            Some(&VectorProblem::Component { index: 1, problem: ComponentProblem::OutOfRange(1e39) })
        );
        assert_eq!(v.values().len(), 3);
        assert!(v.values().iter().all(|x| x.is_finite()));
    }

    #[test]
    fn bad_components_are_named() {
        for (json, index, problem) in [
            ("[1, null]", 1, ComponentProblem::Null),
            (r#"[1, 2, "3"]"#, 2, ComponentProblem::NotANumber(STRING)),
            ("[true]", 0, ComponentProblem::NotANumber(BOOLEAN)),
            ("[[1]]", 0, ComponentProblem::NotANumber(ARRAY)),
            (r#"[1, {"a": 1}, null]"#, 1, ComponentProblem::NotANumber(OBJECT)),
        ] {
            assert_eq!(vv(json).problem(), Some(&VectorProblem::Component { index, problem }), "{json}");
        }
    }

    #[test]
    fn non_arrays_are_recorded() {
        assert_eq!(vv(r#""1,2""#).problem(), Some(&VectorProblem::NotAnArray(STRING)));
        assert_eq!(vv("{}").problem(), Some(&VectorProblem::NotAnArray(OBJECT)));
        assert_eq!(vv("3").problem(), Some(&VectorProblem::NotAnArray(NUMBER)));
    }

    #[test]
    fn from_vec_flags_non_finite() {
        let v = VectorValues::from(vec![1.0, f32::NAN]);
        assert!(matches!(
            v.problem(),
            Some(VectorProblem::Component { index: 1, problem: ComponentProblem::NotFinite(_) })
        ));
        assert_eq!(VectorValues::from(vec![1.0]).into_result(), Ok(vec![1.0]));
    }

    #[test]
    fn ids() {
        let id = |json: &str| serde_json::from_str::<IdInput>(json).expect("IdInput never fails");
        assert_eq!(id("0"), IdInput::Valid(0));
        assert_eq!(id("18446744073709551615"), IdInput::Valid(u64::MAX));
        for bad in ["-1", "1.5", "1.0", "18446744073709551616", "\"7\"", "true", "[1]", "{}", "null"] {
            assert!(matches!(id(bad), IdInput::Invalid(_)), "{bad}");
        }
        assert!(matches!(id("-1"), IdInput::Invalid(m) if m.contains("negative")));
        assert!(matches!(id("\"7\""), IdInput::Invalid(m) if m.contains("string")));
    }

    #[test]
    fn path_ids() {
        assert_eq!(parse_vector_id("42"), Ok(42));
        assert_eq!(parse_vector_id("007"), Ok(7));
        assert_eq!(parse_vector_id("18446744073709551615"), Ok(u64::MAX));
        for bad in ["", "abc", "-1", "+1", " 1", "1.0", "18446744073709551616", "1e3"] {
            let e = parse_vector_id(bad).expect_err(bad);
            assert_eq!(e.code(), "invalid_id");
            assert_eq!(e.status_u16(), 400);
        }
    }

    #[test]
    fn parse_json_distinguishes_syntax_from_shape() {
        #[derive(Debug, Deserialize)]
        struct T {
            #[allow(dead_code)]
            k: u32,
        }
        assert_eq!(parse_json::<T>(b"").expect_err("empty").code(), "invalid_json");
        assert_eq!(parse_json::<T>(b"  \n").expect_err("blank").code(), "invalid_json");
        assert_eq!(parse_json::<T>(b"{\"k\":").expect_err("eof").code(), "invalid_json");
        assert_eq!(parse_json::<T>(b"{k:1}").expect_err("syntax").code(), "invalid_json");
        assert_eq!(parse_json::<T>(b"[1e400]").expect_err("range").code(), "invalid_json");
        let e = parse_json::<T>(br#"{"k":"x"}"#).expect_err("type");
        assert_eq!(e.code(), "invalid_body");
        assert!(e.to_string().contains("invalid type"), "{e}");
        assert_eq!(parse_json::<T>(b"{}").expect_err("missing").code(), "invalid_body");
        assert!(parse_json::<T>(br#"{"k":1}"#).is_ok());
    }
}
