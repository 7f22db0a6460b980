//! `null`: accepts and discards every batch (counted as sent). For benchmarks and tests.

use super::{DeliveryError, DeliveryProgress, Output};
use crate::event::Batch;

/// The `null` output.
#[derive(Default)]
pub struct NullOutput;

impl Output for NullOutput {
    async fn deliver(
        &mut self,
        _batch: &Batch,
        _progress: &mut DeliveryProgress,
    ) -> Result<(), DeliveryError> {
        Ok(())
    }
}
