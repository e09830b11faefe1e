//! What can go wrong with the GitOps repository, as data a caller can decide on.
//!
//! The repository layer says what happened (the branch kept moving, the remote stayed
//! unreachable after so many attempts, an object is missing, gix failed at this step and
//! why); the exit code and the next step for the user are decided at the edge, in
//! `From<Error> for crate::error::Error`, so `deploy`, `serve` and the tests print the
//! same text and exit with the codes PRODUCT.md pins.

use std::path::PathBuf;

use gix::ObjectId;

use crate::error::ErrorKind;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The compare-and-swap of the branch lost to other writers on every attempt the
    /// time budget (or `--attempts`) allowed.
    #[error(
        "{branch} kept moving: {attempts} attempts in {seconds:.1} s lost the race to other deploys"
    )]
    LostRace {
        branch: String,
        attempts: u32,
        seconds: f64,
    },
    /// Talking to the remote failed on every attempt; `message` is the last failure,
    /// as git printed it (scrubbed of credentials).
    #[error("{message}")]
    Transport {
        message: String,
        attempts: u32,
        /// While landing a commit (else while reading).
        writing: bool,
    },
    /// A commit the walk needs is not in the repository (nor below a shallow cache's
    /// boundary, after deepening).
    #[error("cannot read commit {id}: it is not in the repository")]
    ObjectMissing { id: ObjectId },
    /// The branch name is not one git accepts for a branch, or would be misread.
    #[error("invalid branch name {branch:?}: {why}")]
    BadBranchName { branch: String, why: String },
    /// A stored file over `trust::MAX_STORED_FILE`, refused unread.
    #[error("a stored file ({id}) is {size} bytes, over the {bound} byte bound: not read")]
    StoredFileTooLarge { id: ObjectId, size: u64, bound: u64 },
    /// One of our lock files could not be opened, locked or written.
    #[error("cannot {what} {}: {source}", path.display())]
    Lock {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// gix failed at `what` (read a tree, write a commit, move the branch, ...).
    #[error("cannot {what}: {source}")]
    Git {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Refusals already worded for a user, with their kind and hint (a missing branch
    /// and the ones that exist, a work tree with the branch checked out, commit
    /// signing), and the errors of the plan `Repo::apply` runs, passed through.
    #[error(transparent)]
    User(#[from] crate::error::Error),
}

/// The next step after a write that ran out of time or attempts.
pub const RUN_AGAIN: &str =
    "nothing was written; run the deploy again (--timeout gives concurrent deploys more time)";

/// For `.map_err`: gix's error at step `what`, kept as the source.
pub fn git<E: std::error::Error + Send + Sync + 'static>(
    what: &'static str,
) -> impl Fn(E) -> Error {
    move |e| Error::Git {
        what,
        source: Box::new(e),
    }
}

impl Error {
    /// A refusal worded for the user (see `User`): a usage error, exit 2.
    pub fn usage(message: impl Into<String>) -> Error {
        Error::User(crate::error::Error::usage(message))
    }

    /// A repository failure worded for the user, exit 3.
    pub fn repository(message: impl Into<String>) -> Error {
        Error::User(crate::error::Error::repository(message))
    }

    /// Something that should not happen did.
    pub fn internal(message: impl Into<String>) -> Error {
        Error::User(crate::error::Error::internal(message))
    }

    /// Adds the next step to a refusal worded for the user; the other variants get
    /// theirs from `hint`, at the edge.
    pub fn with_hint(self, hint: impl Into<String>) -> Error {
        match self {
            Error::User(e) => Error::User(e.with_hint(hint)),
            other => other,
        }
    }

    /// What the edge makes of it: the exit code's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::BadBranchName { .. } => ErrorKind::Usage,
            Error::StoredFileTooLarge { .. } => ErrorKind::Rejected,
            Error::User(e) => e.kind,
            Error::LostRace { .. }
            | Error::Transport { .. }
            | Error::ObjectMissing { .. }
            | Error::Lock { .. }
            | Error::Git { .. } => ErrorKind::Repository,
        }
    }

    /// The next step for the user.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::LostRace { .. } | Error::Transport { writing: true, .. } => {
                Some(RUN_AGAIN.into())
            }
            Error::Transport { writing: false, .. } => {
                Some("nothing was written; check the network and the URL".into())
            }
            Error::BadBranchName { .. } => {
                Some("name the branch as Argo CD or Flux sees it, e.g. --branch main".into())
            }
            Error::User(e) => e.hint.clone(),
            _ => None,
        }
    }
}

impl From<Error> for crate::error::Error {
    fn from(e: Error) -> Self {
        if let Error::User(e) = e {
            return e;
        }
        let mut out = crate::error::Error::new(e.kind(), e.to_string());
        out.hint = e.hint();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::exit;

    #[test]
    fn the_edge_decides_exit_codes_and_hints() {
        let lost: crate::error::Error = Error::LostRace {
            branch: "main".into(),
            attempts: 7,
            seconds: 1.3,
        }
        .into();
        assert_eq!(lost.exit_code(), exit::REPOSITORY);
        assert_eq!(
            lost.message,
            "main kept moving: 7 attempts in 1.3 s lost the race to other deploys"
        );
        assert!(lost.hint.unwrap().contains("run the deploy again"));

        let bad: crate::error::Error = Error::BadBranchName {
            branch: "-f".into(),
            why: "it would be read as an option".into(),
        }
        .into();
        assert_eq!(bad.exit_code(), exit::USAGE);

        let user = crate::error::Error::rejected("held").with_hint("release it");
        let back: crate::error::Error = Error::from(user).into();
        assert_eq!(
            (
                back.exit_code(),
                back.message.as_str(),
                back.hint.as_deref()
            ),
            (exit::REJECTED, "held", Some("release it"))
        );
    }

    #[test]
    fn gix_errors_are_kept_as_the_source() {
        let io = std::io::Error::other("disk on fire");
        let e = git("write a tree")(io);
        assert_eq!(e.to_string(), "cannot write a tree: disk on fire");
        let source = std::error::Error::source(&e).expect("a source");
        assert_eq!(source.to_string(), "disk on fire");
    }
}
