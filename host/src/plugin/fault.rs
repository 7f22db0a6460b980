//! Plugin faults: everything that makes the host discard an instance and apply the plugin's
//! `on_error` policy to the batch.

use super::limits::MemoryCapExceeded;
use super::msgpack::BodyError;
use std::time::Duration;

/// Why a call into a plugin did not produce a usable result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Fault {
    /// The call ran past its deadline and was interrupted.
    #[error(
        "the call ran past its {deadline:?} deadline and was interrupted; raise the plugin's deadline (router config: `limits = {{ deadline = \"200ms\" }}` in its [[filters]] or [[outputs]] entry; `wasm-router test`: `--limit deadline=200ms`), send fewer events per call (`wasm-router test --batch-size`), or make the plugin faster"
    )]
    Deadline {
        /// The deadline.
        deadline: Duration,
    },
    /// The plugin asked for more memory than its cap.
    #[error(
        "{0}; raise the plugin's memory cap (router config: `limits = {{ memory = \"256MiB\" }}` in its [[filters]] or [[outputs]] entry; `wasm-router test`: `--limit memory=256MiB`) or make the plugin use less"
    )]
    Memory(String),
    /// The call used up its fuel (`wasm-router test` only).
    #[error(
        "the call used up its fuel budget of {budget} instructions; raise it with `wasm-router test --limit fuel=…`"
    )]
    OutOfFuel {
        /// The budget.
        budget: u64,
    },
    /// The plugin trapped (a panic, `unreachable`, an out-of-bounds access, `exit`, …).
    #[error("the plugin trapped: {message}")]
    Trap {
        /// The trap and its wasm backtrace.
        message: String,
    },
    /// `process` returned a different number of outcomes than it was given events.
    #[error(
        "process returned {got} outcomes for {expected} events (the contract is one outcome per event)"
    )]
    WrongLength {
        /// Events in the batch.
        expected: usize,
        /// Outcomes returned.
        got: usize,
    },
    /// A `replace` or `expand` body is not one msgpack map.
    #[error("the new body for event {event} is invalid: {error}")]
    InvalidBody {
        /// Index of the input event in the batch.
        event: usize,
        /// What is wrong with it.
        error: BodyError,
    },
    /// A new tag is empty or longer than the router accepts.
    #[error("the new tag for event {event} is empty or longer than {max} bytes")]
    InvalidTag {
        /// Index of the input event in the batch.
        event: usize,
        /// Longest tag accepted.
        max: usize,
    },
    /// `replace`/`expand` produced more than the expansion cap.
    #[error(
        "the plugin produced {produced} ({what}) from a batch of {input}, over the cap of {limit}"
    )]
    Expansion {
        /// `events` or `body bytes`.
        what: &'static str,
        /// What the input had.
        input: usize,
        /// What the plugin produced, when it was stopped.
        produced: usize,
        /// The cap.
        limit: usize,
    },
    /// A fresh instance could not be created or initialised.
    #[error("a new instance could not be started: {message}")]
    Instantiate {
        /// Why.
        message: String,
    },
}

impl Fault {
    /// A short snake_case name for metric labels: `deadline`, `memory`, `fuel`, `trap`,
    /// `wrong_length`, `invalid_body`, `invalid_tag`, `expansion`, `instantiate`.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Deadline { .. } => "deadline",
            Fault::Memory(_) => "memory",
            Fault::OutOfFuel { .. } => "fuel",
            Fault::Trap { .. } => "trap",
            Fault::WrongLength { .. } => "wrong_length",
            Fault::InvalidBody { .. } => "invalid_body",
            Fault::InvalidTag { .. } => "invalid_tag",
            Fault::Expansion { .. } => "expansion",
            Fault::Instantiate { .. } => "instantiate",
        }
    }

    /// Can one event of a batch cause this fault, so that calling parts of the batch alone
    /// finds it? A trap, the memory cap and fuel: yes. Not the deadline (it is the whole
    /// call's time, and halves would each wait for it again), not a fresh instance that
    /// cannot start, not a result the plugin gets wrong for every batch (length, bodies,
    /// tags, expansion, which name their event or apply to the call).
    pub fn may_be_one_event(&self) -> bool {
        matches!(
            self,
            Fault::Trap { .. } | Fault::Memory(_) | Fault::OutOfFuel { .. }
        )
    }

    /// Classify the error of a failed call.
    pub fn from_call_error(
        error: wasmtime::Error,
        deadline: Duration,
        fuel_budget: Option<u64>,
    ) -> Fault {
        if let Some(cap) = error.downcast_ref::<MemoryCapExceeded>() {
            return Fault::Memory(cap.to_string());
        }
        match error.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::Interrupt) => return Fault::Deadline { deadline },
            Some(wasmtime::Trap::OutOfFuel) => {
                return Fault::OutOfFuel {
                    budget: fuel_budget.unwrap_or(0),
                };
            }
            _ => {}
        }
        if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
            return Fault::Trap {
                message: format!("the plugin called exit({})", exit.0),
            };
        }
        Fault::Trap {
            message: format!("{error:?}"),
        }
    }
}
