//! The router's imports (`log`, `metrics`, `delivery-items`) as the SDK calls them: the real imports inside a
//! component, and in-memory stand-ins on native targets, where plugin logic runs under
//! `cargo test` (read them back through [`crate::testing`]).

use crate::log::Level;

#[cfg(target_arch = "wasm32")]
mod imports {
    use super::Level;
    use crate::bindings::filter::wasm_router::plugin::{log, metrics};

    pub(crate) fn log(level: Level, message: &str) {
        let level = match level {
            Level::Trace => log::Level::Trace,
            Level::Debug => log::Level::Debug,
            Level::Info => log::Level::Info,
            Level::Warn => log::Level::Warn,
            Level::Error => log::Level::Error,
        };
        log::emit(level, message);
    }

    fn owned(labels: &[(&str, &str)]) -> Vec<(String, String)> {
        labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    pub(crate) fn counter_add(name: &str, value: u64, labels: &[(&str, &str)]) {
        metrics::counter_add(name, value, &owned(labels));
    }

    pub(crate) fn gauge_set(name: &str, value: f64, labels: &[(&str, &str)]) {
        metrics::gauge_set(name, value, &owned(labels));
    }

    pub(crate) fn report_items(results: Vec<crate::output::ItemResult>) {
        use crate::bindings::delivery_items::wasm_router::plugin::delivery_items as wit;
        let results: Vec<wit::ItemResult> = results
            .into_iter()
            .map(|r| wit::ItemResult {
                position: r.position,
                outcome: match r.outcome {
                    crate::output::ItemOutcome::Delivered => wit::ItemOutcome::Delivered,
                    crate::output::ItemOutcome::Retry => wit::ItemOutcome::Retry,
                    crate::output::ItemOutcome::Fail { reason, detail } => {
                        wit::ItemOutcome::Fail(wit::ItemFailure { reason, detail })
                    }
                },
            })
            .collect();
        wit::report(&results);
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod imports {
    use super::Level;
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    /// At most this many log lines are kept per thread (the oldest are dropped).
    const MAX_LOG_LINES: usize = 10_000;

    /// A metric series: name and labels.
    pub(crate) type Series = (String, Vec<(String, String)>);

    /// What a plugin logged and counted on this thread.
    #[derive(Default)]
    pub(crate) struct Recorded {
        pub(crate) logs: std::collections::VecDeque<(Level, String)>,
        pub(crate) counters: BTreeMap<Series, u64>,
        pub(crate) gauges: BTreeMap<Series, f64>,
        pub(crate) items: Vec<crate::output::ItemResult>,
    }

    thread_local! {
        pub(crate) static RECORDED: RefCell<Recorded> = RefCell::new(Recorded::default());
    }

    fn series(name: &str, labels: &[(&str, &str)]) -> Series {
        (
            name.to_owned(),
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    pub(crate) fn log(level: Level, message: &str) {
        RECORDED.with(|recorded| {
            let mut recorded = recorded.borrow_mut();
            if recorded.logs.len() == MAX_LOG_LINES {
                recorded.logs.pop_front();
            }
            recorded.logs.push_back((level, message.to_owned()));
        });
    }

    pub(crate) fn counter_add(name: &str, value: u64, labels: &[(&str, &str)]) {
        RECORDED.with(|recorded| {
            let mut recorded = recorded.borrow_mut();
            let total = recorded.counters.entry(series(name, labels)).or_default();
            *total = total.saturating_add(value);
        });
    }

    pub(crate) fn gauge_set(name: &str, value: f64, labels: &[(&str, &str)]) {
        RECORDED.with(|recorded| {
            recorded
                .borrow_mut()
                .gauges
                .insert(series(name, labels), value);
        });
    }

    pub(crate) fn report_items(results: Vec<crate::output::ItemResult>) {
        RECORDED.with(|recorded| recorded.borrow_mut().items.extend(results));
    }
}

pub(crate) use imports::{counter_add, gauge_set, log, report_items};
