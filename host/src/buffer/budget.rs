//! The one memory budget shared by every output buffer of a router.
//!
//! Each memory-buffered batch holds bytes from two pools until its output is done with it: its
//! output's own `max_bytes`, and this global budget. A disk-buffered batch holds budget bytes
//! only while it is being written. So the bytes of queued and in-flight events never exceed the
//! budget, however many outputs there are and whichever of them is down (the main cause of
//! FireLens sidecar OOM kills, reference firelens-aws.md §4 item 1).
//!
//! Default size: half the container's memory limit when the cgroup shows one
//! (`/sys/fs/cgroup/memory.max` on cgroup v2, `/sys/fs/cgroup/memory/memory.limit_in_bytes` on
//! v1), at least [`MIN_BUDGET`]; else [`DEFAULT_BUDGET`]. The other half is left for the
//! process itself: code, runtime, connection read buffers, plugin instances.

use std::path::Path;
use std::sync::Arc;
use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// The budget when no cgroup memory limit is visible and none is configured.
pub const DEFAULT_BUDGET: u64 = 256 << 20;
/// The smallest budget derived from a cgroup limit.
pub const MIN_BUDGET: u64 = 4 << 20;
/// Share of a cgroup memory limit given to buffers: 1/2.
const CGROUP_SHARE_DIVISOR: u64 = 2;
/// cgroup v1 reports "no limit" as a huge number; anything above this is treated as none.
const UNLIMITED_THRESHOLD: u64 = 1 << 50;

/// Where the budget's size came from (for the startup log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BudgetSource {
    /// `[service] memory_budget`.
    Configured,
    /// A fraction of the cgroup limit found in this file.
    Cgroup {
        /// The limit file.
        file: String,
        /// The limit it holds.
        limit: u64,
    },
    /// [`DEFAULT_BUDGET`]: no limit visible.
    Default,
}

/// A byte budget shared by the buffers of every output. Cheap to clone.
#[derive(Clone, Debug)]
pub struct MemoryBudget {
    bytes: Arc<Semaphore>,
    total: usize,
}

/// Bytes held from a [`MemoryBudget`]; returned when dropped.
#[derive(Debug)]
pub struct BudgetPermit {
    _permit: Option<OwnedSemaphorePermit>,
}

impl MemoryBudget {
    /// A budget of `total` bytes (clamped to `1..=u32::MAX`).
    pub fn new(total: u64) -> Self {
        let total = total.clamp(1, u64::from(u32::MAX)) as usize;
        MemoryBudget {
            bytes: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// The budget for a router: `configured`, else from the cgroup limit, else the default.
    pub fn for_router(configured: Option<u64>) -> (Self, BudgetSource) {
        if let Some(bytes) = configured {
            return (MemoryBudget::new(bytes), BudgetSource::Configured);
        }
        match cgroup_memory_limit(Path::new("/sys/fs/cgroup")) {
            Some((file, limit)) => {
                let bytes = (limit / CGROUP_SHARE_DIVISOR).max(MIN_BUDGET);
                (
                    MemoryBudget::new(bytes),
                    BudgetSource::Cgroup { file, limit },
                )
            }
            None => (MemoryBudget::new(DEFAULT_BUDGET), BudgetSource::Default),
        }
    }

    /// The budget's size in bytes.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Bytes currently held.
    pub fn in_use(&self) -> usize {
        self.total - self.bytes.available_permits()
    }

    /// Hold `bytes` (at most the whole budget), waiting for room. Fails only once closed.
    pub async fn acquire(&self, bytes: usize) -> Result<BudgetPermit, AcquireError> {
        let n = self.clamp(bytes);
        let permit = self.bytes.clone().acquire_many_owned(n).await?;
        Ok(BudgetPermit {
            _permit: Some(permit),
        })
    }

    /// Hold `bytes` (at most the whole budget) if there is room now.
    pub fn try_acquire(&self, bytes: usize) -> Result<BudgetPermit, TryAcquireError> {
        let n = self.clamp(bytes);
        let permit = self.bytes.clone().try_acquire_many_owned(n)?;
        Ok(BudgetPermit {
            _permit: Some(permit),
        })
    }

    fn clamp(&self, bytes: usize) -> u32 {
        // A batch larger than the whole budget still goes through, alone.
        bytes.clamp(1, self.total) as u32
    }
}

/// The container's memory limit and the file that holds it, if the cgroup shows one.
pub fn cgroup_memory_limit(root: &Path) -> Option<(String, u64)> {
    let candidates = [
        root.join("memory.max"),
        root.join("memory/memory.limit_in_bytes"),
    ];
    candidates.iter().find_map(|file| {
        let text = std::fs::read_to_string(file).ok()?;
        let limit = parse_limit(&text)?;
        Some((file.display().to_string(), limit))
    })
}

fn parse_limit(text: &str) -> Option<u64> {
    let limit: u64 = text.trim().parse().ok()?; // "max" (v2, no limit) does not parse
    (limit > 0 && limit < UNLIMITED_THRESHOLD).then_some(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cgroup_v2_then_v1_and_ignores_no_limit() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(cgroup_memory_limit(dir.path()), None);
        std::fs::write(dir.path().join("memory.max"), "max\n").unwrap();
        assert_eq!(cgroup_memory_limit(dir.path()), None);
        std::fs::create_dir(dir.path().join("memory")).unwrap();
        std::fs::write(
            dir.path().join("memory/memory.limit_in_bytes"),
            "9223372036854771712\n",
        )
        .unwrap();
        assert_eq!(
            cgroup_memory_limit(dir.path()),
            None,
            "v1's 'unlimited' value"
        );
        std::fs::write(
            dir.path().join("memory/memory.limit_in_bytes"),
            "104857600\n",
        )
        .unwrap();
        assert_eq!(cgroup_memory_limit(dir.path()).unwrap().1, 100 << 20);
        std::fs::write(dir.path().join("memory.max"), "52428800\n").unwrap();
        let (file, limit) = cgroup_memory_limit(dir.path()).unwrap();
        assert!(file.ends_with("memory.max"));
        assert_eq!(limit, 50 << 20);
    }

    #[tokio::test]
    async fn accounting_adds_up_and_oversized_requests_take_the_whole_budget() {
        let budget = MemoryBudget::new(1000);
        let a = budget.try_acquire(600).unwrap();
        assert_eq!(budget.in_use(), 600);
        assert!(budget.try_acquire(500).is_err());
        let b = budget.try_acquire(400).unwrap();
        assert_eq!(budget.in_use(), 1000);
        drop(a);
        drop(b);
        assert_eq!(budget.in_use(), 0);
        let whole = budget.acquire(5000).await.unwrap();
        assert_eq!(budget.in_use(), 1000);
        drop(whole);
        assert_eq!(budget.in_use(), 0);
    }
}
