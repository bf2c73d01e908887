//! The scorer seam: how graph algorithms see vectors.
//!
//! HNSW search needs only "how far is node `i` from the query". Hiding the
//! storage behind [`Scorer`] lets full-precision vectors, scalar-quantised
//! codes or product-quantised codes drive the same graph; the graph never
//! learns which one it walks.

/// Distance from one fixed query to any node of the index, by slot.
pub trait Scorer {
    /// The ranking distance (smaller is nearer) from the query to `node`.
    fn distance(&self, node: u32) -> f32;

    /// Hints that `node` will be scored soon, so its data can be loaded
    /// while other work proceeds. The default does nothing.
    #[inline]
    fn prefetch(&self, node: u32) {
        let _ = node;
    }

    /// Hints that `node` is scored next, so all of its data should be
    /// loaded. The default does nothing.
    #[inline]
    fn prefetch_all(&self, node: u32) {
        let _ = node;
    }
}

impl<F: Fn(u32) -> f32> Scorer for F {
    #[inline]
    fn distance(&self, node: u32) -> f32 {
        self(node)
    }
}
