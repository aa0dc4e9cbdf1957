//! The one error type every core operation returns. The HTTP layer maps each kind to a
//! status and the service's OpenStack error body; the message is for the user and never
//! carries internal detail (that goes to the log, with the request id).

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or asks for something impossible (400).
    #[error("{0}")]
    BadRequest(String),
    /// No token, or a token that is not (or no longer) valid (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The caller is known but its role may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such thing — or one that belongs to another project (404).
    #[error("{0}")]
    NotFound(String),
    /// The thing exists already, or is in a state that does not allow this (409).
    #[error("{0}")]
    Conflict(String),
    /// The project's quota does not allow this (413, as Annex A has it).
    #[error("{0}")]
    OverQuota(String),
    /// Something broke inside the cloud (500); the detail is logged, not returned.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn internal(e: impl Into<anyhow::Error>) -> Error {
        Error::Internal(e.into())
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate(what) => Error::Conflict(format!("{what} already exists")),
            StoreError::Constraint(what) => {
                Error::Conflict(format!("the change conflicts with existing data ({what})"))
            }
            other => Error::Internal(other.into()),
        }
    }
}

/// Turns a store's duplicate into a conflict that names the thing in the user's terms.
pub trait OrConflict<T> {
    fn or_conflict(self, message: impl FnOnce() -> String) -> Result<T>;
}

impl<T> OrConflict<T> for std::result::Result<T, StoreError> {
    fn or_conflict(self, message: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| match e {
            StoreError::Duplicate(_) => Error::Conflict(message()),
            other => other.into(),
        })
    }
}
