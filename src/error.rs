//! Exit codes and the one error type commands return.
//!
//! Findings are not errors (see `findings`). An `Error` means the command could not do
//! its work: bad usage, an unreadable input, a broken platform directory, a repository
//! or network failure. Its kind decides the exit code, which other programs rely on
//! (PRODUCT.md pins them).

use std::fmt;

/// Exit codes, as PRODUCT.md pins them.
pub mod exit {
    /// Success, or nothing to do.
    pub const OK: i32 = 0;
    /// The input was rejected (values schema, Kubernetes schema or policy); nothing written.
    pub const REJECTED: i32 = 1;
    /// Usage error: bad flags, unreadable file, broken platform directory.
    pub const USAGE: i32 = 2;
    /// Repository or network failure after retries; nothing half-written.
    pub const REPOSITORY: i32 = 3;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The user asked for something that cannot be done as asked.
    Usage,
    /// The platform directory (templates, schemas, policies) is broken.
    Platform,
    /// The input was rejected: used where a command must refuse without findings to show
    /// (a rollback hold, an unknown app).
    Rejected,
    /// The GitOps repository or the network failed.
    Repository,
    /// A bug: something that should not happen did.
    Internal,
}

/// `Clone`, so a value loaded once (the platform's policies) gives every caller its error.
#[derive(Debug, Clone)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    /// A next step for the user, printed after the message.
    pub hint: Option<String>,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            hint: None,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Usage, message)
    }

    pub fn platform(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Platform, message)
    }

    pub fn rejected(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Rejected, message)
    }

    pub fn repository(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Repository, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal, message)
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn exit_code(&self) -> i32 {
        match self.kind {
            ErrorKind::Rejected => exit::REJECTED,
            ErrorKind::Usage | ErrorKind::Platform | ErrorKind::Internal => exit::USAGE,
            ErrorKind::Repository => exit::REPOSITORY,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;
