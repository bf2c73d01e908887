//! Distance metrics and their semantics.
//!
//! Every metric is a *distance*: smaller is nearer. Internally the index ranks
//! by a cheaper monotone equivalent (squared L2 for Euclidean) and converts
//! to the reported distance only for results:
//!
//! | metric | reported distance | ranked internally by |
//! |---|---|---|
//! | cosine | `1 − cos(a, b)` | `1 − a·b` on vectors normalised at insert |
//! | euclidean | `‖a − b‖₂` | `‖a − b‖₂²` |
//! | dot | `−(a·b)` | the same |
//! | manhattan | `‖a − b‖₁` | the same |

use std::fmt;
use std::str::FromStr;

use crate::distance::Kernels;

/// A distance metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// `1 − cos(a, b)`; vectors are normalised once when inserted.
    Cosine,
    /// True Euclidean (L2) distance.
    Euclidean,
    /// Negated inner product, `−(a·b)`.
    DotProduct,
    /// Manhattan (L1) distance.
    Manhattan,
}

impl Metric {
    /// Every metric, in a stable order.
    pub const ALL: [Metric; 4] = [Metric::Cosine, Metric::Euclidean, Metric::DotProduct, Metric::Manhattan];

    /// The canonical name (`cosine`, `euclidean`, `dotproduct`, `manhattan`).
    pub fn name(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::Euclidean => "euclidean",
            Metric::DotProduct => "dotproduct",
            Metric::Manhattan => "manhattan",
        }
    }

    /// Whether stored vectors (and queries) are normalised to unit length.
    pub fn normalizes(self) -> bool {
        self == Metric::Cosine
    }

    /// The internal ranking distance between two (already prepared) vectors.
    pub fn ranking_distance(self, kernels: &Kernels, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Metric::Cosine => 1.0 - (kernels.dot)(a, b),
            Metric::Euclidean => (kernels.l2_squared)(a, b),
            Metric::DotProduct => -(kernels.dot)(a, b),
            Metric::Manhattan => (kernels.l1)(a, b),
        }
    }

    /// Converts an internal ranking distance to the reported distance.
    pub fn reported(self, ranking: f32) -> f32 {
        match self {
            Metric::Euclidean => ranking.max(0.0).sqrt(),
            Metric::Cosine | Metric::DotProduct | Metric::Manhattan => ranking,
        }
    }

    /// The reported distance between two raw (not yet normalised) vectors.
    pub fn distance(self, a: &[f32], b: &[f32]) -> f32 {
        let kernels = Kernels::get();
        match self {
            Metric::Cosine => {
                let norms = ((kernels.dot)(a, a) * (kernels.dot)(b, b)).sqrt();
                if norms == 0.0 { 1.0 } else { 1.0 - (kernels.dot)(a, b) / norms }
            }
            other => other.reported(other.ranking_distance(kernels, a, b)),
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error for a metric name that is not one of the known names or aliases.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown metric {0:?}: expected cosine, euclidean (l2), dotproduct (dot) or manhattan (l1)")]
pub struct UnknownMetric(pub String);

impl FromStr for Metric {
    type Err = UnknownMetric;

    /// Parses a name or alias, case-insensitively: `cosine`, `euclidean`|`l2`,
    /// `dotproduct`|`dot`, `manhattan`|`l1`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "cosine" => Ok(Metric::Cosine),
            "euclidean" | "l2" => Ok(Metric::Euclidean),
            "dotproduct" | "dot" => Ok(Metric::DotProduct),
            "manhattan" | "l1" => Ok(Metric::Manhattan),
            _ => Err(UnknownMetric(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_parse() {
        for (name, metric) in [
            ("cosine", Metric::Cosine),
            ("euclidean", Metric::Euclidean),
            ("L2", Metric::Euclidean),
            ("dotproduct", Metric::DotProduct),
            ("dot", Metric::DotProduct),
            ("manhattan", Metric::Manhattan),
            ("l1", Metric::Manhattan),
        ] {
            assert_eq!(name.parse::<Metric>(), Ok(metric));
        }
        assert!("hamming".parse::<Metric>().is_err());
        for m in Metric::ALL {
            assert_eq!(m.name().parse::<Metric>(), Ok(m));
        }
    }

    #[test]
    fn reported_distances_follow_the_documented_semantics() {
        let a = [3.0, 0.0];
        let b = [0.0, 4.0];
        assert_eq!(Metric::Euclidean.distance(&a, &b), 5.0);
        assert_eq!(Metric::Manhattan.distance(&a, &b), 7.0);
        assert_eq!(Metric::DotProduct.distance(&a, &[2.0, 1.0]), -6.0);
        assert!((Metric::Cosine.distance(&a, &b) - 1.0).abs() < 1e-6);
        assert!(Metric::Cosine.distance(&a, &[6.0, 0.0]).abs() < 1e-6);
    }
}
