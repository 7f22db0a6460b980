//! The plugin's own metrics, exported by the router as `plugin_<plugin name>_<name>`. The
//! router caps the number of series per plugin. Inside a filter function, prefer
//! [`Ctx::count`](crate::Ctx::count): it adds up per batch and calls the router once.

/// Adds `value` to the counter `name`.
pub fn counter_add(name: &str, value: u64) {
    crate::host::counter_add(name, value, &[]);
}

/// Adds `value` to the counter `name` with labels (keep their values few: every distinct set
/// is a series).
pub fn counter_add_with_labels(name: &str, value: u64, labels: &[(&str, &str)]) {
    crate::host::counter_add(name, value, labels);
}

/// Sets the gauge `name`.
pub fn gauge_set(name: &str, value: f64) {
    crate::host::gauge_set(name, value, &[]);
}

/// Sets the gauge `name` with labels.
pub fn gauge_set_with_labels(name: &str, value: f64, labels: &[(&str, &str)]) {
    crate::host::gauge_set(name, value, labels);
}
