//! The integration tests, as one test binary: each module was its own binary once, and
//! each linked the whole library and its dependencies again (see BENCHMARKS.md, test
//! suite). They drive the real `gitops-render` binary (assert_cmd), real git, and
//! servers they start on 127.0.0.1; `common` holds what they share.
//!
//! Run one module with `cargo test --test it check::` (a filter on the test path), or
//! one test by name as usual.

mod common;

mod check;
mod deploy_api;
mod deploy_client;
mod docs;
mod events;
mod hardening;
mod injection;
mod output;
mod policy_paths;
mod rendered;
mod replicas;
mod repo;
mod repo_concurrency;
mod repo_crash;
mod repo_remote;
mod report;
mod rerender;
mod serve;
mod settings;
mod validate;
