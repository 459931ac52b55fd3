//! Helpers shared by several admin areas.

use crate::domain;

/// A domain error the admin fixes by changing the form (re-rendered with the
/// message) rather than an error page.
pub(super) fn is_user_error(e: &domain::Error) -> bool {
    matches!(
        e,
        domain::Error::Invalid { .. } | domain::Error::Conflict(_)
    )
}
