//! `null`: accepts and discards every batch (counted as sent). For benchmarks and tests.

use super::component::{BuildFuture, OutputComponent, OutputContext, OutputTask};
use super::{DeliveryError, DeliveryProgress, Output};
use crate::event::Batch;

/// `type = "null"`: no keys of its own.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NullConfig {}

impl OutputComponent for NullConfig {
    fn build<'a>(&'a self, _cx: OutputContext<'a>, task: OutputTask) -> BuildFuture<'a> {
        Box::pin(async move { Ok(task.run(NullOutput)) })
    }
}

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
