//! Inputs: where events enter the router.

pub mod forward;
