//! Hot reload of WASM filters: on SIGHUP, `POST /api/v2/reload`, or when the config file or a
//! plugin's `.wasm` changes (polled every [`POLL_INTERVAL`]), the new plugins are compiled and
//! started as a canary (`info` + `init`, through the plugin runtime's normal loading path) on a
//! blocking thread — off the data path — and only if every one of them starts are they swapped
//! in. A broken file or config leaves the running plugins in place and logs why.
//!
//! **The swap.** Each filter stage of the pipeline holds a [`FilterSlot`] instead of the filter
//! itself. A batch takes the slot's current filter (an `Arc`) once and runs through it to the
//! end, so a batch in flight during a swap finishes on the old plugin while the next batch uses
//! the new one; the old plugin is dropped with its last batch. Inputs, buffers and outputs are
//! untouched, so no event is lost or delivered twice by a reload. Slots are swapped one after
//! the other: a batch passing through two reloaded filters during the swap may meet the new
//! first and the old second.
//!
//! **What reloads.** A filter's `path`, `config`, `on_error` and `limits`, and the `.wasm` file
//! itself. Adding, removing, reordering or re-matching filters, renaming one, or changing
//! `[service]`, `[[inputs]]` or `[[outputs]]` needs a restart: such a reload is refused with a
//! message naming what changed, and the router keeps running as it was.
//!
//! The config file may be TOML or Fluent Bit classic (as FireLens generates it); files it
//! `@INCLUDE`s are not watched: send SIGHUP after changing one.
//!
//! **Why polling.** A stat of a handful of files per second costs nothing, needs no extra
//! dependency, and works where inotify does not (bind mounts, overlay and network filesystems,
//! files replaced by an atomic rename or a symlink swap, as orchestrators do).
//!
//! Every outcome is counted in `config_reloads_total{result="ok"|"refused"}`.

use super::Config;
use crate::ops::metrics::Metrics;
use crate::ops::reload::{ReloadRequests, reload_channel};
use crate::ops::shutdown::Shutdown;
use crate::pipeline::{Filter, FilterSlot};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;

/// How often the config file and the plugin files are checked for changes.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Builds a started filter (compiled, `init` done) for filter `i` of a config, under the
/// component id the running one has, so its metrics continue.
pub type FilterBuilder = Arc<
    dyn Fn(&Config, usize, &str, Arc<Metrics>) -> Result<Arc<dyn Filter>, String> + Send + Sync,
>;

/// A running filter the reloader may replace.
pub struct ReloadableFilter {
    /// Its slot in the pipeline.
    pub slot: Arc<FilterSlot>,
    /// Its component id (kept across reloads).
    pub id: String,
}

/// Why a reload did not happen. The running configuration stays.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new config could not be read or is invalid.
    #[error("{0}")]
    Config(String),
    /// The change cannot be applied without a restart.
    #[error("this change needs a restart: {0}")]
    NeedsRestart(String),
    /// A new plugin failed to compile or start.
    #[error("filters[{index}] ({path}): {message}")]
    Plugin {
        /// Position in `[[filters]]`.
        index: usize,
        /// The plugin file.
        path: String,
        /// Why, from the plugin runtime.
        message: String,
    },
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    result: &'static str,
}

/// Identity of a file's current content as far as `stat` tells.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode: meta.ino(),
    })
}

/// What the reloader knows about the running configuration.
#[derive(Clone)]
struct Running {
    /// What reload compares, from the loaded config.
    snapshot: ConfigSnapshot,
    /// Each filter's `.wasm`.
    plugin_paths: Vec<PathBuf>,
    /// Stamps of each filter's `.wasm` when its running plugin was built.
    loaded_stamps: Vec<Option<FileStamp>>,
}

/// The files as last polled.
struct Seen {
    config: Option<FileStamp>,
    plugins: Vec<Option<FileStamp>>,
}

/// Watches for reload triggers and performs reloads.
pub struct Reloader {
    config_path: PathBuf,
    filters: Vec<ReloadableFilter>,
    builder: FilterBuilder,
    metrics: Arc<Metrics>,
    reloads: Family<ReloadLabels, Counter>,
    running: Running,
    seen: Seen,
}

/// New filters, compiled and started, ready to swap in.
struct Prepared {
    running: Running,
    built: Vec<(usize, Arc<dyn Filter>)>,
}

/// The files of a configuration as they were when it was loaded. Capture it before the router
/// builds its plugins: a file replaced while they compile is then seen as changed.
pub struct ReloadBaseline {
    config_path: PathBuf,
    running: Running,
    seen: Seen,
    watch_files: bool,
}

impl ReloadBaseline {
    /// The state of `config_path` (from which `config` was just loaded) and of its plugin files.
    pub fn capture(config_path: PathBuf, config: &Config) -> ReloadBaseline {
        let config_stamp = stamp(&config_path);
        let plugin_paths = filter_paths(config);
        let loaded_stamps: Vec<_> = plugin_paths.iter().map(|p| stamp(p)).collect();
        let running = Running {
            snapshot: ConfigSnapshot::of(config),
            plugin_paths,
            loaded_stamps: loaded_stamps.clone(),
        };
        let seen = Seen {
            config: config_stamp,
            plugins: loaded_stamps,
        };
        ReloadBaseline {
            config_path,
            running,
            seen,
            watch_files: config.service.reload_on_change,
        }
    }
}

impl Reloader {
    /// A reloader for the router whose configuration `baseline` describes, and whose filters
    /// are `filters` (one per `[[filters]]` entry, in order).
    pub fn new(
        baseline: ReloadBaseline,
        filters: Vec<ReloadableFilter>,
        builder: FilterBuilder,
        metrics: Arc<Metrics>,
    ) -> Reloader {
        let reloads = Family::<ReloadLabels, Counter>::default();
        metrics.with_registry(|r| {
            r.register(
                "config_reloads",
                "Reloads of plugins and config, by result",
                reloads.clone(),
            )
        });
        let ReloadBaseline {
            config_path,
            running,
            seen,
            ..
        } = baseline;
        Reloader {
            config_path,
            filters,
            builder,
            metrics,
            reloads,
            running,
            seen,
        }
    }

    /// Serve reload requests and, with `watch_files`, poll the files, until `shutdown`.
    pub async fn run(
        mut self,
        mut requests: mpsc::Receiver<()>,
        watch_files: bool,
        mut shutdown: Shutdown,
    ) {
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                Some(()) = requests.recv() => {
                    tracing::info!("reload requested");
                    let _ = self.reload(true).await;
                }
                _ = tick.tick(), if watch_files => {
                    if let Some(what) = self.changed_file() {
                        tracing::info!(changed = %what, "file changed: reloading");
                        let _ = self.reload(false).await;
                    }
                }
                _ = shutdown.wait() => return,
            }
        }
    }

    /// A watched file whose stamp changed since the last poll, if any. Every new stamp is
    /// noted, so a broken file is tried once, not every second.
    pub fn changed_file(&mut self) -> Option<String> {
        let mut changed = None;
        let now = stamp(&self.config_path);
        if now != self.seen.config {
            self.seen.config = now;
            changed = Some(self.config_path.display().to_string());
        }
        self.seen
            .plugins
            .resize(self.running.plugin_paths.len(), None);
        for (path, seen) in self
            .running
            .plugin_paths
            .iter()
            .zip(self.seen.plugins.iter_mut())
        {
            let now = stamp(path);
            if now != *seen {
                *seen = now;
                changed.get_or_insert_with(|| path.display().to_string());
            }
        }
        changed
    }

    /// Reload now. With `everything`, every filter is rebuilt (SIGHUP, HTTP); otherwise only
    /// those whose config section or `.wasm` changed. Logs and counts the outcome; returns how
    /// many plugins were swapped.
    pub async fn reload(&mut self, everything: bool) -> Result<usize, ReloadError> {
        let result = self.try_reload(everything).await;
        match &result {
            Ok(n) => {
                self.reloads
                    .get_or_create(&ReloadLabels { result: "ok" })
                    .inc();
                tracing::info!(reloaded_plugins = n, "reload done");
            }
            Err(e) => {
                self.reloads
                    .get_or_create(&ReloadLabels { result: "refused" })
                    .inc();
                tracing::error!(reason = %e, "reload refused; the running plugins and config stay in place");
            }
        }
        result
    }

    async fn try_reload(&mut self, everything: bool) -> Result<usize, ReloadError> {
        let path = self.config_path.clone();
        let running = self.running.clone();
        let ids: Vec<String> = self.filters.iter().map(|f| f.id.clone()).collect();
        let (builder, metrics) = (self.builder.clone(), self.metrics.clone());
        // Compiling and `init` run on a blocking thread: the data path never waits for them.
        let prepared = tokio::task::spawn_blocking(move || {
            prepare(&path, &running, &ids, everything, &builder, metrics)
        })
        .await
        .map_err(|e| ReloadError::Config(format!("the reload task failed: {e}")))??;
        let count = prepared.built.len();
        for (i, filter) in prepared.built {
            // Batches inside the old filter finish there; it is dropped after the last one.
            drop(self.filters[i].slot.replace(filter));
            tracing::info!(filter = %self.filters[i].id, path = %prepared.running.plugin_paths[i].display(), "plugin reloaded");
        }
        self.running = prepared.running;
        Ok(count)
    }
}

/// The reload side of a router: the slots of its filters, the request channel (SIGHUP and
/// `POST /api/v2/reload` send on it) and, once enabled, the reloader.
pub struct RouterReload {
    filters: Vec<ReloadableFilter>,
    requests: ReloadRequests,
    receiver: mpsc::Receiver<()>,
    reloader: Option<(Reloader, bool)>,
}

impl Default for RouterReload {
    fn default() -> Self {
        let (requests, receiver) = reload_channel();
        RouterReload {
            filters: Vec::new(),
            requests,
            receiver,
            reloader: None,
        }
    }
}

impl RouterReload {
    /// Put a freshly built filter with component id `id` in a slot the reloader can swap; the
    /// pipeline stage holds the slot.
    pub fn slot(&mut self, id: &str, filter: Arc<dyn Filter>) -> Arc<dyn Filter> {
        let slot = FilterSlot::new(filter);
        self.filters.push(ReloadableFilter {
            slot: slot.clone(),
            id: id.to_string(),
        });
        slot
    }

    /// Where to ask for a reload.
    pub fn requests(&self) -> ReloadRequests {
        self.requests.clone()
    }

    /// Reload the configuration `baseline` describes, rebuilding filters with `builder`; with
    /// `[service] reload_on_change`, also when its files change.
    pub fn enable(
        &mut self,
        baseline: ReloadBaseline,
        builder: FilterBuilder,
        metrics: Arc<Metrics>,
    ) {
        let filters = std::mem::take(&mut self.filters);
        let watch_files = baseline.watch_files;
        self.reloader = Some((
            Reloader::new(baseline, filters, builder, metrics),
            watch_files,
        ));
    }

    /// Serve reload requests until `shutdown`.
    pub fn spawn(self, mut shutdown: Shutdown) -> tokio::task::JoinHandle<()> {
        let RouterReload {
            receiver, reloader, ..
        } = self;
        match reloader {
            Some((reloader, watch_files)) => {
                tokio::spawn(reloader.run(receiver, watch_files, shutdown))
            }
            None => tokio::spawn(async move {
                let mut receiver = receiver;
                loop {
                    tokio::select! {
                        Some(()) = receiver.recv() => tracing::warn!(
                            "reload requested, but this router runs without a config file (the embedded default): nothing to reload"
                        ),
                        _ = shutdown.wait() => return,
                    }
                }
            }),
        }
    }
}

/// The builder the router itself uses ([`super::build::build_filter`]), as a [`FilterBuilder`]:
/// a filter is built the same way at start and at reload.
pub fn router_builder() -> FilterBuilder {
    Arc::new(
        |config: &Config, i: usize, id: &str, metrics: Arc<Metrics>| {
            super::build::build_filter(config, i, Some(id), metrics)
                .map(|(_, filter)| filter)
                .map_err(|e| match e {
                    super::BuildError::Component { message, .. } => message,
                    other => other.to_string(),
                })
        },
    )
}

/// Read and check the new config, and build (compile + canary) every filter that changed.
/// Nothing running is touched.
fn prepare(
    path: &Path,
    running: &Running,
    ids: &[String],
    everything: bool,
    builder: &FilterBuilder,
    metrics: Arc<Metrics>,
) -> Result<Prepared, ReloadError> {
    // Either format: TOML, or Fluent Bit classic as FireLens generates it.
    let config = super::load_any(path)
        .map_err(|e| ReloadError::Config(e.to_string()))?
        .config;
    let snapshot = ConfigSnapshot::of(&config);
    check_same_structure(&running.snapshot, &snapshot).map_err(ReloadError::NeedsRestart)?;
    let plugin_paths = filter_paths(&config);
    let loaded_stamps: Vec<_> = plugin_paths.iter().map(|p| stamp(p)).collect();
    let mut built = Vec::new();
    for (i, f) in config.filters.iter().enumerate() {
        let changed = running.snapshot.filters.get(i) != snapshot.filters.get(i)
            || running.plugin_paths.get(i) != Some(&plugin_paths[i])
            || running.loaded_stamps.get(i) != Some(&loaded_stamps[i]);
        if everything || changed {
            let filter = builder(&config, i, &ids[i], metrics.clone()).map_err(|message| {
                ReloadError::Plugin {
                    index: i,
                    path: f
                        .component()
                        .plugin_path()
                        .map_or_else(|| f.type_name().to_string(), |p| p.display().to_string()),
                    message,
                }
            })?;
            built.push((i, filter));
        }
    }
    Ok(Prepared {
        running: Running {
            snapshot,
            plugin_paths,
            loaded_stamps,
        },
        built,
    })
}

fn filter_paths(config: &Config) -> Vec<PathBuf> {
    config
        .filters
        .iter()
        .map(|f| {
            f.component()
                .plugin_path()
                .map(Path::to_path_buf)
                .unwrap_or_default()
        })
        .collect()
}

/// The parts of a loaded config that reload compares, in whatever format the file was. Values
/// are kept as their `Debug` text: compared in memory, never logged (they may hold secrets).
#[derive(Clone, Debug, Default, PartialEq)]
struct ConfigSnapshot {
    service: String,
    inputs: String,
    outputs: String,
    filters: Vec<FilterSnapshot>,
}

#[derive(Clone, Debug, PartialEq)]
struct FilterSnapshot {
    /// What places the filter in the chain: `match`, `match_regex`, `name`.
    placement: String,
    /// Everything about it.
    whole: String,
}

impl ConfigSnapshot {
    fn of(config: &Config) -> ConfigSnapshot {
        ConfigSnapshot {
            service: format!("{:?}", config.service),
            inputs: format!("{:?}", config.inputs),
            outputs: format!("{:?}", config.outputs),
            filters: config
                .filters
                .iter()
                .map(|f| FilterSnapshot {
                    placement: format!("{:?}", f.route()),
                    whole: format!("{f:?}"),
                })
                .collect(),
        }
    }
}

/// Refuse what only a restart can apply: a different `[service]`, `[[inputs]]` or
/// `[[outputs]]`, or filters added, removed, reordered, re-matched or renamed.
fn check_same_structure(old: &ConfigSnapshot, new: &ConfigSnapshot) -> Result<(), String> {
    let mut changes = Vec::new();
    for (section, a, b) in [
        ("[service]", &old.service, &new.service),
        ("[[inputs]]", &old.inputs, &new.inputs),
        ("[[outputs]]", &old.outputs, &new.outputs),
    ] {
        if a != b {
            changes.push(format!("{section} changed"));
        }
    }
    if old.filters.len() != new.filters.len() {
        changes.push(format!(
            "[[filters]] went from {} to {} entries",
            old.filters.len(),
            new.filters.len()
        ));
    } else {
        for (i, (o, n)) in old.filters.iter().zip(&new.filters).enumerate() {
            if o.placement != n.placement {
                changes.push(format!(
                    "filters[{i}] has another match, match_regex or name"
                ));
            }
        }
    }
    if changes.is_empty() {
        Ok(())
    } else {
        Err(changes.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Batch, Event};
    use crate::topology::FilterConfig;
    use bytes::Bytes;
    use std::sync::mpsc as std_mpsc;

    /// Sets every event's body to its name, so a test sees which filter a batch went through.
    struct Marker(String);
    impl Filter for Marker {
        fn process(&self, mut batch: Batch) -> Vec<Batch> {
            for e in &mut batch.events {
                e.body = Bytes::from(self.0.clone());
            }
            vec![batch]
        }
    }

    fn batch() -> Batch {
        Batch::new(
            Bytes::from_static(b"t"),
            vec![Event {
                time_ns: 1,
                body: Bytes::from_static(&[0x80]),
            }],
        )
    }

    fn mark_of(filter: &dyn Filter) -> String {
        String::from_utf8(filter.process(batch())[0].events[0].body.to_vec()).unwrap()
    }

    /// Builds a `Marker` named after the plugin file's content; a file saying `broken` fails.
    fn file_builder() -> FilterBuilder {
        Arc::new(|config: &Config, i: usize, _id: &str, _metrics| {
            let FilterConfig::Wasm(config) = &config.filters[i] else {
                return Err("not a wasm filter".to_string());
            };
            let content = std::fs::read_to_string(&config.path).map_err(|e| e.to_string())?;
            let extra = config
                .config
                .as_ref()
                .map(|c| format!("+{c}"))
                .unwrap_or_default();
            match content.trim() {
                "broken" => Err("init refused its config".to_string()),
                name => Ok(Arc::new(Marker(format!("{name}{extra}"))) as Arc<dyn Filter>),
            }
        })
    }

    const CONFIG: &str = "[[inputs]]\ntype = \"forward\"\nlisten = \"127.0.0.1:1\"\n\n[[filters]]\ntype = \"wasm\"\nmatch = \"*\"\npath = \"{dir}/a.wasm\"\n{extra}\n[[outputs]]\ntype = \"null\"\nmatch = \"*\"\n";

    fn write(dir: &Path, name: &str, content: &str) {
        // Write-then-rename, as a deployment replaces a file.
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, content).unwrap();
        std::fs::rename(&tmp, dir.join(name)).unwrap();
    }

    fn write_config(dir: &Path, extra: &str) -> PathBuf {
        let text = CONFIG
            .replace("{dir}", dir.to_str().unwrap())
            .replace("{extra}", extra);
        write(dir, "router.toml", &text);
        dir.join("router.toml")
    }

    #[tokio::test]
    async fn changed_plugins_are_swapped_broken_ones_refused_and_structure_changes_need_a_restart()
    {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.wasm", "v1");
        let path = write_config(dir.path(), "");
        let config = crate::topology::load(&path).unwrap();
        let metrics = Metrics::new();
        let builder = file_builder();
        let slot = FilterSlot::new(builder(&config, 0, "a", metrics.clone()).unwrap());
        let filters = vec![ReloadableFilter {
            slot: slot.clone(),
            id: "a".into(),
        }];
        let baseline = ReloadBaseline::capture(path.clone(), &config);
        let mut reloader = Reloader::new(baseline, filters, builder, metrics.clone());
        assert_eq!(reloader.changed_file(), None);
        assert_eq!(mark_of(&*slot), "v1");

        write(dir.path(), "a.wasm", "v2");
        assert!(reloader.changed_file().unwrap().ends_with("a.wasm"));
        assert_eq!(reloader.reload(false).await.unwrap(), 1);
        assert_eq!(mark_of(&*slot), "v2");

        // A broken plugin is refused; the running one stays, and it is tried once.
        write(dir.path(), "a.wasm", "broken");
        assert!(reloader.changed_file().is_some());
        let e = reloader.reload(false).await.unwrap_err();
        assert!(matches!(e, ReloadError::Plugin { index: 0, .. }), "{e}");
        assert!(e.to_string().contains("init refused"), "{e}");
        assert_eq!(mark_of(&*slot), "v2");
        assert_eq!(reloader.changed_file(), None);

        write(dir.path(), "a.wasm", "v3");
        assert!(reloader.changed_file().is_some());
        assert_eq!(reloader.reload(false).await.unwrap(), 1);
        assert_eq!(mark_of(&*slot), "v3");

        // A new plugin config reloads; nothing changed reloads nothing unless asked.
        write_config(dir.path(), "config = { level = 2 }");
        assert!(reloader.changed_file().unwrap().ends_with("router.toml"));
        assert_eq!(reloader.reload(false).await.unwrap(), 1);
        assert_eq!(mark_of(&*slot), "v3+level = 2\n");
        assert_eq!(reloader.reload(false).await.unwrap(), 0);
        assert_eq!(reloader.reload(true).await.unwrap(), 1);

        // Re-matching a filter needs a restart; so does an invalid config.
        write_config(dir.path(), "config = { level = 2 }\nname = \"renamed\"");
        let e = reloader.reload(false).await.unwrap_err();
        assert!(
            e.to_string()
                .contains("needs a restart: filters[0] has another match, match_regex or name"),
            "{e}"
        );
        write(dir.path(), "router.toml", "[[inputs]]\ntype = \"kafka\"\n");
        assert!(matches!(
            reloader.reload(false).await.unwrap_err(),
            ReloadError::Config(_)
        ));
        assert_eq!(mark_of(&*slot), "v3+level = 2\n");

        let text = metrics.encode();
        assert!(
            text.contains("config_reloads_total{result=\"ok\"} 5"),
            "{text}"
        );
        assert!(
            text.contains("config_reloads_total{result=\"refused\"} 3"),
            "{text}"
        );
    }

    /// Holds its batch until told to go on.
    struct Gate {
        entered: std_mpsc::Sender<()>,
        release: std::sync::Mutex<std_mpsc::Receiver<()>>,
    }
    impl Filter for Gate {
        fn process(&self, batch: Batch) -> Vec<Batch> {
            self.entered.send(()).unwrap();
            self.release.lock().unwrap().recv().unwrap();
            Marker("old".into()).process(batch)
        }
    }

    #[test]
    fn a_batch_in_flight_finishes_on_the_old_filter_while_new_batches_use_the_new_one() {
        let (entered_tx, entered) = std_mpsc::channel();
        let (release, release_rx) = std_mpsc::channel();
        let slot = FilterSlot::new(Arc::new(Gate {
            entered: entered_tx,
            release: std::sync::Mutex::new(release_rx),
        }));
        let in_flight = {
            let slot = slot.clone();
            std::thread::spawn(move || mark_of(&*slot))
        };
        entered.recv().unwrap();
        slot.replace(Arc::new(Marker("new".into())));
        assert_eq!(mark_of(&*slot), "new");
        release.send(()).unwrap();
        assert_eq!(in_flight.join().unwrap(), "old");
    }
}
