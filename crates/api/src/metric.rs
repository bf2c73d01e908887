//! The distance metric as it appears on the wire.
//!
//! The API crate has its own [`Metric`] (it must not depend on the index);
//! the engine maps it one-to-one onto the index's metric. Names serialize in
//! canonical form (`cosine`, `euclidean`, `dotproduct`, `manhattan`) and parse
//! from the name or an alias, case-insensitively:
//!
//! | metric | accepted spellings |
//! |---|---|
//! | [`Metric::Cosine`] | `cosine` |
//! | [`Metric::Euclidean`] | `euclidean`, `l2` |
//! | [`Metric::DotProduct`] | `dotproduct`, `dot` |
//! | [`Metric::Manhattan`] | `manhattan`, `l1` |

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::ApiError;

/// A distance metric: smaller distance is nearer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// `1 − cos(a, b)`. The default. Zero vectors are rejected.
    #[default]
    Cosine,
    /// Euclidean (L2) distance `‖a − b‖₂`.
    Euclidean,
    /// Negated inner product `−(a·b)`.
    DotProduct,
    /// Manhattan (L1) distance `‖a − b‖₁`.
    Manhattan,
}

impl Metric {
    /// Every metric, in a stable order.
    pub const ALL: [Metric; 4] = [Metric::Cosine, Metric::Euclidean, Metric::DotProduct, Metric::Manhattan];

    /// The canonical name.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::Euclidean => "euclidean",
            Metric::DotProduct => "dotproduct",
            Metric::Manhattan => "manhattan",
        }
    }

    /// Parses a metric as given in a create request: `None`, or an empty /
    /// blank string (what Go clients send for an unset field), means the
    /// default, cosine.
    pub fn parse_optional(name: Option<&str>) -> Result<Metric, ApiError> {
        match name.map(str::trim) {
            None | Some("") => Ok(Metric::default()),
            Some(s) => s.parse(),
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Metric {
    type Err = ApiError;

    /// Parses a name or alias, case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "cosine" => Ok(Metric::Cosine),
            "euclidean" | "l2" => Ok(Metric::Euclidean),
            "dotproduct" | "dot" => Ok(Metric::DotProduct),
            "manhattan" | "l1" => Ok(Metric::Manhattan),
            _ => Err(ApiError::InvalidMetric(format!(
                "unknown metric {s:?}: expected cosine, euclidean (l2), dotproduct (dot) or manhattan (l1)"
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for Metric {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_parse_case_insensitively() {
        for (name, metric) in [
            ("cosine", Metric::Cosine),
            ("COSINE", Metric::Cosine),
            ("euclidean", Metric::Euclidean),
            ("l2", Metric::Euclidean),
            ("L2", Metric::Euclidean),
            ("dotproduct", Metric::DotProduct),
            ("dot", Metric::DotProduct),
            ("DotProduct", Metric::DotProduct),
            ("manhattan", Metric::Manhattan),
            ("l1", Metric::Manhattan),
        ] {
            assert_eq!(name.parse::<Metric>(), Ok(metric), "{name}");
        }
        for m in Metric::ALL {
            assert_eq!(m.name().parse::<Metric>(), Ok(m));
            assert_eq!(serde_json::to_string(&m).expect("ser"), format!("\"{}\"", m.name()));
            assert_eq!(serde_json::from_str::<Metric>(&format!("\"{}\"", m.name())).expect("de"), m);
        }
    }

    #[test]
    fn unknown_metric_is_invalid_metric() {
        let e = "hamming".parse::<Metric>().expect_err("must fail");
        assert_eq!(e.code(), "invalid_metric");
        assert!(e.to_string().contains("hamming"));
    }

    #[test]
    fn blank_or_missing_means_cosine() {
        assert_eq!(Metric::parse_optional(None), Ok(Metric::Cosine));
        assert_eq!(Metric::parse_optional(Some("")), Ok(Metric::Cosine));
        assert_eq!(Metric::parse_optional(Some(" l2 ")), Ok(Metric::Euclidean));
    }
}
