//! The one memory budget shared by every output buffer of a router.
//!
//! Each memory-buffered batch holds bytes from two pools until its output is done with it: its
//! output's own `max_bytes`, and this global budget. A disk-buffered batch holds budget bytes
//! only while it is being written. So the bytes of queued and in-flight events never exceed the
//! budget, however many outputs there are and whichever of them is down (the main cause of
//! FireLens sidecar OOM kills, reference firelens-aws.md §4 item 1).
//!
//! The inputs draw from the same budget: a router's budget ([`MemoryBudget::for_router`]) sets
//! aside a quarter ([`InputBudget`]) for what the forward input holds — partial requests in
//! read buffers, decoded batches, batches waiting on a push — and leaves the rest to the output
//! buffers. The two pools are separate so neither can starve the other: a push waiting for
//! buffer room never waits on bytes the input holds, and the input, which releases what it
//! holds once its pushes return, never waits on the outputs' pool for its reads. Only the
//! outputs' own delivery frees the outputs' pool, so a blocked input is backpressure, never a
//! deadlock.
//!
//! Default size: half the container's memory limit when the cgroup shows one
//! (`/sys/fs/cgroup/memory.max` on cgroup v2, `/sys/fs/cgroup/memory/memory.limit_in_bytes` on
//! v1), at least [`MIN_BUDGET`]; else [`DEFAULT_BUDGET`]. The other half is left for the
//! process itself: code, runtime, plugin instances.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// The budget when no cgroup memory limit is visible and none is configured.
pub const DEFAULT_BUDGET: u64 = 256 << 20;
/// The smallest budget derived from a cgroup limit.
pub const MIN_BUDGET: u64 = 4 << 20;
/// Share of a cgroup memory limit given to buffers: 1/2.
const CGROUP_SHARE_DIVISOR: u64 = 2;
/// cgroup v1 reports "no limit" as a huge number; anything above this is treated as none.
const UNLIMITED_THRESHOLD: u64 = 1 << 50;
/// Share of a router's budget set aside for the inputs: 1/4.
const INPUT_SHARE_DIVISOR: usize = 4;

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

/// A byte budget shared by the buffers of every output, and the inputs' share of it. Cheap to
/// clone.
#[derive(Clone, Debug)]
pub struct MemoryBudget {
    bytes: Arc<Semaphore>,
    total: usize,
    input: InputBudget,
}

/// Bytes held from a [`MemoryBudget`]; returned when dropped.
#[derive(Debug)]
pub struct BudgetPermit {
    _permit: Option<OwnedSemaphorePermit>,
}

impl MemoryBudget {
    /// A budget of `total` bytes (clamped to `1..=u32::MAX`), all of it for output buffers (for
    /// tests and tools; the inputs get a share of it only with [`MemoryBudget::for_router`]).
    pub fn new(total: u64) -> Self {
        let total = total.clamp(1, u64::from(u32::MAX)) as usize;
        MemoryBudget {
            bytes: Arc::new(Semaphore::new(total)),
            total,
            input: InputBudget::new(0),
        }
    }

    /// A budget of `total` bytes of which a quarter is the inputs' ([`MemoryBudget::input`]) and
    /// the rest the output buffers'.
    pub fn with_input_share(total: u64) -> Self {
        let total = total.clamp(2, u64::from(u32::MAX)) as usize;
        let input = total / INPUT_SHARE_DIVISOR;
        MemoryBudget {
            bytes: Arc::new(Semaphore::new(total - input)),
            total,
            input: InputBudget::new(input),
        }
    }

    /// The budget for a router: `configured`, else from the cgroup limit, else the default; a
    /// quarter of it for the inputs.
    pub fn for_router(configured: Option<u64>) -> (Self, BudgetSource) {
        if let Some(bytes) = configured {
            return (
                MemoryBudget::with_input_share(bytes),
                BudgetSource::Configured,
            );
        }
        match cgroup_memory_limit(Path::new("/sys/fs/cgroup")) {
            Some((file, limit)) => {
                let bytes = (limit / CGROUP_SHARE_DIVISOR).max(MIN_BUDGET);
                (
                    MemoryBudget::with_input_share(bytes),
                    BudgetSource::Cgroup { file, limit },
                )
            }
            None => (
                MemoryBudget::with_input_share(DEFAULT_BUDGET),
                BudgetSource::Default,
            ),
        }
    }

    /// The budget's size in bytes (outputs and inputs together).
    pub fn total(&self) -> usize {
        self.total
    }

    /// The inputs' share.
    pub fn input(&self) -> &InputBudget {
        &self.input
    }

    /// Bytes currently held by output buffers.
    pub fn in_use(&self) -> usize {
        self.outputs_total() - self.bytes.available_permits()
    }

    fn outputs_total(&self) -> usize {
        self.total - self.input.total
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
        bytes.clamp(1, self.outputs_total()) as u32
    }
}

/// The inputs' share of a [`MemoryBudget`]: bytes held by connections (read buffers, decoded
/// batches, batches being pushed). Cheap to clone.
#[derive(Clone, Debug)]
pub struct InputBudget {
    bytes: Arc<Semaphore>,
    total: usize,
    waiting: Arc<AtomicUsize>,
}

impl InputBudget {
    /// A pool of `total` bytes (at most `u32::MAX`).
    pub fn new(total: usize) -> Self {
        let total = total.min(u32::MAX as usize);
        InputBudget {
            bytes: Arc::new(Semaphore::new(total)),
            total,
            waiting: Arc::default(),
        }
    }

    /// The pool's size in bytes.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Bytes currently held.
    pub fn in_use(&self) -> usize {
        self.total - self.bytes.available_permits()
    }

    /// Connections waiting for room right now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// A charge of nothing yet, for one connection.
    pub fn charge(&self) -> InputCharge {
        InputCharge {
            budget: self.clone(),
            permit: None,
        }
    }
}

/// What one connection holds from an [`InputBudget`]; returned when dropped.
#[derive(Debug)]
pub struct InputCharge {
    budget: InputBudget,
    permit: Option<OwnedSemaphorePermit>,
}

/// An [`InputCharge`] cannot grow to the size asked: more than the whole pool.
#[derive(Debug, thiserror::Error)]
#[error("{asked} bytes is more than the inputs' whole memory budget of {total} bytes")]
pub struct OverBudget {
    /// The size asked for.
    pub asked: usize,
    /// The pool's size.
    pub total: usize,
}

impl InputCharge {
    /// Bytes held.
    pub fn held(&self) -> usize {
        self.permit.as_ref().map_or(0, |p| p.num_permits())
    }

    /// Hold exactly `bytes`: shrinking always succeeds; growing succeeds when there is room now.
    pub fn try_resize(&mut self, bytes: usize) -> Result<bool, OverBudget> {
        self.check(bytes)?;
        let held = self.held();
        if bytes <= held {
            self.shrink(bytes);
            return Ok(true);
        }
        match self
            .budget
            .bytes
            .clone()
            .try_acquire_many_owned((bytes - held) as u32)
        {
            Ok(more) => {
                self.add(more);
                Ok(true)
            }
            Err(_) => Ok(false),
        }
    }

    /// Hold exactly `bytes`, waiting for room (counted in [`InputBudget::waiting`] meanwhile).
    /// Cancel-safe: when the future is dropped, nothing more is held than before.
    pub async fn resize(&mut self, bytes: usize) -> Result<(), OverBudget> {
        if self.try_resize(bytes)? {
            return Ok(());
        }
        let waiting = WaitingGuard::new(&self.budget.waiting);
        let more = (bytes - self.held()) as u32;
        let more = self.budget.bytes.clone().acquire_many_owned(more).await;
        drop(waiting);
        self.add(more.expect("the input pool is never closed"));
        Ok(())
    }

    fn check(&self, bytes: usize) -> Result<(), OverBudget> {
        if bytes > self.budget.total {
            return Err(OverBudget {
                asked: bytes,
                total: self.budget.total,
            });
        }
        Ok(())
    }

    fn shrink(&mut self, bytes: usize) {
        if bytes == 0 {
            self.permit = None;
        } else if let Some(permit) = &mut self.permit {
            let extra = permit.num_permits() - bytes;
            if extra > 0 {
                drop(permit.split(extra));
            }
        }
    }

    fn add(&mut self, more: OwnedSemaphorePermit) {
        match &mut self.permit {
            Some(permit) => permit.merge(more),
            None => self.permit = Some(more),
        }
    }
}

struct WaitingGuard<'a>(&'a AtomicUsize);

impl<'a> WaitingGuard<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        WaitingGuard(counter)
    }
}

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
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

    #[tokio::test]
    async fn a_router_budget_sets_a_quarter_aside_for_the_inputs() {
        let budget = MemoryBudget::with_input_share(1000);
        assert_eq!(budget.total(), 1000);
        assert_eq!(budget.input().total(), 250);
        let outputs = budget.acquire(5000).await.unwrap();
        assert_eq!(budget.in_use(), 750, "the outputs get the rest");
        // The input's pool is untouched by a full output pool.
        let mut conn = budget.input().charge();
        assert!(conn.try_resize(250).unwrap());
        drop(outputs);
    }

    #[tokio::test]
    async fn an_input_charge_grows_shrinks_waits_and_refuses_more_than_the_pool() {
        let input = InputBudget::new(100);
        let mut a = input.charge();
        let mut b = input.charge();
        assert!(a.try_resize(60).unwrap());
        assert!(!b.try_resize(50).unwrap(), "only 40 left");
        assert_eq!(b.held(), 0, "a failed growth holds nothing more");
        assert!(b.try_resize(40).unwrap());
        assert_eq!(input.in_use(), 100);
        assert!(matches!(
            b.try_resize(101),
            Err(OverBudget {
                asked: 101,
                total: 100
            })
        ));
        // b waits for room until a shrinks.
        let waiter = tokio::spawn(async move {
            b.resize(70).await.unwrap();
            b
        });
        tokio::task::yield_now().await;
        while input.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        assert!(a.try_resize(30).unwrap());
        let b = waiter.await.unwrap();
        assert_eq!((a.held(), b.held(), input.in_use()), (30, 70, 100));
        drop(a);
        drop(b);
        assert_eq!(input.in_use(), 0);
        assert_eq!(input.waiting(), 0);
    }
}
