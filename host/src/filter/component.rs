//! What every filter type provides to the topology ([`crate::topology`]): its config check and
//! its build. A filter type is its module plus one line in the registry
//! (`topology/registry.rs`).

use super::{NativeFilter, RecordFilter};
use crate::ops::metrics::Metrics;
use crate::pipeline::Filter;
use std::path::Path;
use std::sync::Arc;

/// What building a filter gets from the topology.
pub struct FilterContext<'a> {
    /// Its `name`, if set.
    pub name: Option<&'a str>,
    /// The id it gets when it has no `name` and does not name itself: `<type>.<n>`
    /// (Fluent Bit's instance names, e.g. `grep.0`).
    pub default_id: &'a str,
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
    /// `[service] plugin_cache_dir`, for filters that load a plugin.
    pub plugin_cache_dir: Option<&'a Path>,
}

impl FilterContext<'_> {
    /// The filter's id: its `name`, else its default id.
    pub fn id(&self) -> &str {
        self.name.unwrap_or(self.default_id)
    }
}

/// A filter type's config: its check and its build.
pub trait FilterComponent: std::fmt::Debug + Send + Sync {
    /// Check the filter's own keys (`match` and `name` are checked by the topology), adding
    /// one problem per mistake, each starting with `key` (`filters[2]`).
    fn validate(&self, key: &str, problems: &mut Vec<String>);

    /// Build the filter: its id (in metrics and logs) and the pipeline stage.
    fn build(&self, cx: FilterContext<'_>) -> Result<(String, Arc<dyn Filter>), String>;

    /// Whether it takes its default id from what it loads (a WASM filter: its plugin's name)
    /// instead of `<type>.<n>`.
    fn names_itself(&self) -> bool {
        false
    }

    /// The plugin file it loads, if any (watched for hot reload).
    fn plugin_path(&self) -> Option<&Path> {
        None
    }
}

/// A native filter's config (`grep`, `modify`, …): its checks and the per-event filter it
/// compiles to. Every native config is a [`FilterComponent`] through it, run as a
/// [`NativeFilter`] stage.
pub trait NativeConfig: std::fmt::Debug + Send + Sync {
    /// The per-event filter.
    type Filter: RecordFilter + 'static;

    /// Compile it for the filter component `id`. An error names the key under the filter
    /// (`.rules[0].regex: …`) and the fix.
    fn compile(&self, id: &str, metrics: &Arc<Metrics>) -> Result<Self::Filter, String>;

    /// Check its keys without running it (default: compile it); errors as [`compile`](Self::compile)'s.
    fn check(&self) -> Result<(), String> {
        self.compile("check", &Metrics::new()).map(drop)
    }
}

impl<T: NativeConfig> FilterComponent for T {
    fn validate(&self, key: &str, problems: &mut Vec<String>) {
        if let Err(e) = self.check() {
            problems.push(format!("{key}{e}"));
        }
    }

    fn build(&self, cx: FilterContext<'_>) -> Result<(String, Arc<dyn Filter>), String> {
        let id = cx.id().to_string();
        let filter = self.compile(&id, &cx.metrics)?;
        let stage = Arc::new(NativeFilter::new(filter, &id, cx.metrics));
        Ok((id, stage))
    }
}
