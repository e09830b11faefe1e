//! gitops-render: team values in, hardened Kubernetes manifests out, proven and committed.
//!
//! A team's values file is read strictly with positions (`yaml`, `values`), resolved for
//! one environment against the platform's schema and defaults (`platform`), rendered by
//! the platform's templates with values reaching them only as data (`render`), then
//! proven against the pinned Kubernetes API schema and the platform's Rego policies and
//! waivers (`validate`). `check` is that pipeline for one file, the one function every
//! entry point calls; what it finds is a list of `findings`, rendered by `output` in the
//! format asked for. `layout` names the GitOps repository's paths; `repo` reads and
//! writes that repository (one commit per change, compare-and-swap on the branch); `ops`
//! holds the GitOps operations (deploy, promote, rollback, verify, drift and diff) as
//! library functions over resolved settings and a tree source. `server` is the GitHub
//! App and `cli` the command line: both parse input, call `check` or `ops`, and print.
//! `events` records what the commands did and turns it into the DORA report.

pub mod check;
pub mod cli;
pub mod error;
pub mod events;
pub mod findings;
pub mod layout;
pub mod ops;
pub mod output;
pub mod platform;
pub mod pointer;
pub mod render;
pub mod repo;
pub mod rules;
pub mod server;
pub mod validate;
pub mod values;
pub mod yaml;

/// The allocator of the `gitops-render` binary, here so the stage benchmarks measure
/// with the same one: mimalloc, for the reason in Cargo.toml (figures in BENCHMARKS.md).
pub type Allocator = mimalloc::MiMalloc;
pub const ALLOCATOR: Allocator = mimalloc::MiMalloc;
