//! Upkeep of the graph, and who runs it.
//!
//! Four kinds of work keep an index healthy after mutations:
//!
//! * linking staged vectors into the graph ([`super::staging`]);
//! * repairing the links around deleted and replaced nodes and freeing
//!   their slots ([`super::delete`]), due when the deleted nodes reach 1 %
//!   of the live ones;
//! * the reachability pass ([`Hnsw::relink_unreachable`]), due after
//!   `n/10` links, so its O(n) cost is O(10) per insert;
//! * training the configured quantizer once the index first holds
//!   `training_size` vectors ([`super::quantized`]).
//!
//! By default an index does the due work itself, in the thread of the
//! mutation that made it due, so a library user needs no extra calls. With
//! [`super::HnswOptions::background_maintenance`] mutations never do it:
//! the owner (the engine's maintenance thread) calls [`Hnsw::maintain`] with
//! a bound, and reads [`Hnsw::backlog`] for its metrics. Every step takes
//! the shape lock shared except the short slot-freeing step of a repair.

use std::sync::atomic::Ordering;

use super::Hnsw;
use crate::IndexError;
use crate::quant::Quantization;

/// Outstanding upkeep of an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backlog {
    /// Staged vectors not linked into the graph yet (searched by scan).
    pub unlinked: usize,
    /// Deleted or replaced nodes whose links are not repaired yet.
    pub pending_deletes: usize,
    /// Nodes linked since the last reachability pass.
    pub linked_since_reachability_pass: usize,
    /// A configured quantizer waits to be trained and enough vectors exist.
    pub training_due: bool,
}

/// What one [`Hnsw::maintain`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MaintenanceWork {
    /// Staged vectors linked.
    pub linked: usize,
    /// Deleted nodes repaired and freed.
    pub repaired: usize,
    /// Whether the reachability pass ran, and how many nodes it relinked.
    pub reachability_pass: Option<usize>,
    /// Whether the quantizer was trained.
    pub trained: bool,
}

impl MaintenanceWork {
    /// Whether the call did anything.
    pub fn is_empty(&self) -> bool {
        *self == MaintenanceWork::default()
    }
}

impl Hnsw {
    /// Switches to background maintenance (see
    /// [`super::HnswOptions::background_maintenance`]), e.g. for an index
    /// just loaded from a snapshot, which does not record the choice.
    pub fn with_background_maintenance(mut self) -> Self {
        self.options.background_maintenance = true;
        self
    }

    /// The outstanding upkeep (cheap: counters and one lock each).
    pub fn backlog(&self) -> Backlog {
        Backlog {
            unlinked: self.unlinked(),
            pending_deletes: self.pending_deletes(),
            linked_since_reachability_pass: self.linked_since_relink.load(Ordering::Relaxed),
            training_due: self.training_due(),
        }
    }

    fn repair_due(&self) -> bool {
        let pending = self.pending_deletes();
        pending > 0 && pending >= (self.len() / 100).max(1)
    }

    fn relink_due(&self) -> bool {
        self.linked_since_relink.load(Ordering::Relaxed) >= (self.len() / 10).max(1)
    }

    fn training_due(&self) -> bool {
        self.quantization() != Quantization::None
            && self.options.auto_train
            && self.len() >= self.options.training_size
            && self.inner.read().quant.is_none()
    }

    /// Does one bounded slice of the due upkeep: links up to `max_links`
    /// staged vectors, then repairs deletes, runs the reachability pass and
    /// trains the quantizer if each is due. Searches and mutations go on
    /// meanwhile (see the module docs for the one short exclusive step).
    pub fn maintain(&self, max_links: usize) -> Result<MaintenanceWork, IndexError> {
        let mut work = MaintenanceWork { linked: self.link_pending(max_links), ..MaintenanceWork::default() };
        {
            let _gate = self.write_gate.read();
            if self.repair_due() {
                work.repaired = self.pending_deletes();
                self.repair_pending();
            }
            if self.relink_due() || work.repaired > 0 {
                self.linked_since_relink.store(0, Ordering::Relaxed);
                let inner = self.inner.read();
                work.reachability_pass = Some(self.relink_unreachable(&inner));
            }
        }
        if self.training_due() {
            self.train(false)?;
            work.trained = true;
        }
        Ok(work)
    }

    /// Links every staged vector, repairs every delete, runs the
    /// reachability pass and trains the quantizer if due: the index is
    /// then as if built in one go. For shutdown, tests and benchmarks.
    pub fn maintain_fully(&self) -> Result<(), IndexError> {
        while self.link_pending(usize::MAX) > 0 {}
        self.repair_deletes();
        if self.training_due() {
            self.train(false)?;
        }
        Ok(())
    }

    /// The upkeep a mutation does itself unless maintenance runs in the
    /// background.
    pub(super) fn maintain_inline(&self) -> Result<(), IndexError> {
        if self.options.background_maintenance {
            return Ok(());
        }
        self.maintain(0).map(|_| ())
    }
}
