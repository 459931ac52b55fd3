//! The domain layer's one error type. The HTTP layer maps it to a status in
//! one place (`crate::http::errors`); the CLI prints it as one line.

use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input; names the field.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// A duplicate, a third client secret, a revoked token regenerated…
    #[error("{0}")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The caller may not do this (e.g. a non-admin asking for `admin:*`).
    #[error("{0}")]
    Forbidden(String),
    /// The client's credentials turned out not to hold when the request was
    /// recorded (a client assertion replayed, or the client deleted,
    /// meanwhile); says nothing more.
    #[error("client authentication failed")]
    ClientRefused,
    /// The database cannot serve now (unreachable, busy past its timeout,
    /// out of space): a 503, worth a retry. Logged in full.
    #[error("the database is unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Anything unexpected: logged in full, shown to nobody.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl Error {
    pub fn invalid(field: &'static str, message: impl fmt::Display) -> Self {
        Self::Invalid {
            field,
            message: message.to_string(),
        }
    }

    pub fn conflict(message: impl fmt::Display) -> Self {
        Self::Conflict(message.to_string())
    }

    /// An unexpected failure from below the domain: [`Self::Unavailable`]
    /// when a database outage caused it, [`Self::Internal`] otherwise.
    pub fn unexpected(e: anyhow::Error) -> Self {
        if let Some(db) = e.downcast_ref::<sea_orm::DbErr>() {
            crate::storage::outage::note(db);
        }
        if e.downcast_ref::<sea_orm::DbErr>()
            .is_some_and(crate::storage::outage::is_outage)
        {
            Self::Unavailable(e)
        } else {
            Self::Internal(e)
        }
    }
}

impl From<sea_orm::DbErr> for Error {
    fn from(e: sea_orm::DbErr) -> Self {
        crate::storage::outage::note(&e);
        if crate::storage::outage::is_outage(&e) {
            Self::Unavailable(anyhow::Error::new(e))
        } else {
            Self::Internal(anyhow::Error::new(e))
        }
    }
}

impl From<crate::storage::recorder::RecordError> for Error {
    fn from(e: crate::storage::recorder::RecordError) -> Self {
        // The machine user was deleted after it authenticated: its
        // credentials no longer hold, as a moment later they would not.
        if e.owner_gone {
            return Self::ClientRefused;
        }
        if e.outage {
            Self::Unavailable(anyhow::Error::new(e))
        } else {
            Self::Internal(anyhow::Error::new(e))
        }
    }
}

impl From<sea_orm::TransactionError<Error>> for Error {
    fn from(e: sea_orm::TransactionError<Error>) -> Self {
        match e {
            sea_orm::TransactionError::Connection(db) => db.into(),
            sea_orm::TransactionError::Transaction(inner) => inner,
        }
    }
}

/// True when a database error is a unique-constraint violation, on either backend.
pub fn is_unique_violation(e: &sea_orm::DbErr) -> bool {
    matches!(
        e.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}
