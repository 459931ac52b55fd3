//! Password hashing and verification (argon2id, at most one computation per
//! core) and the rules a new password must meet.

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
    password_hash::SaltString,
};

use crate::{domain::Error, secret::HashedPassword};

fn argon2() -> Argon2<'static> {
    // OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane.
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters"),
    )
}

pub fn check_password_rules(password: &str) -> Result<(), Error> {
    let len = password.chars().count();
    if len < 8 {
        return Err(Error::invalid("password", "must be at least 8 characters"));
    }
    if len > 1024 {
        return Err(Error::invalid(
            "password",
            "must be at most 1024 characters",
        ));
    }
    // A line break or tab (say, from a file piped to --password-stdin) could
    // never be typed into the sign-in form.
    if password.chars().any(char::is_control) {
        return Err(Error::invalid(
            "password",
            "must not contain line breaks, tabs or other control characters",
        ));
    }
    Ok(())
}

/// Argon2 runs with at most one computation per core: each holds about
/// 19 MiB, so a flood of sign-ins can neither exhaust memory nor take every
/// core from the token endpoint.
static ARGON2_PERMITS: std::sync::LazyLock<tokio::sync::Semaphore> =
    std::sync::LazyLock::new(|| {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        tokio::sync::Semaphore::new(cores)
    });

/// Every argon2 computation is busy: a password check is refused at once
/// (429) rather than queued without bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordCheckBusy;

/// How long a refused password check should wait before trying again.
pub const PASSWORD_BUSY_RETRY_SECS: u64 = 1;

/// Whether a password check would be refused now (cheap: lets callers skip
/// their own work under a flood).
pub fn password_checks_saturated() -> bool {
    ARGON2_PERMITS.available_permits() == 0
}

/// Hashes off the async threads: argon2id takes tens of milliseconds by design.
/// Hashing (an admin setting a password, the first-admin setup) waits for a
/// free permit: its callers are authenticated or hold a setup code, so the
/// queue is not an attacker's to grow.
pub async fn hash_password(password: String) -> Result<HashedPassword, Error> {
    let permit = ARGON2_PERMITS
        .acquire()
        .await
        .map_err(|e| Error::Internal(e.into()))?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let salt = SaltString::encode_b64(&crate::secret::random_bytes::<16>())
            .expect("16 bytes is a valid salt");
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| HashedPassword::new(h.to_string()))
    })
    .await
    .map_err(|e| Error::Internal(e.into()))?
    .map_err(|e| Error::Internal(anyhow::anyhow!("argon2: {e}")))
}

/// Verifies against `hash`, or against a dummy hash when there is no user, so
/// the time taken does not tell whether a username exists. Refused at once
/// when every argon2 permit is taken.
pub async fn verify_password(
    hash: Option<HashedPassword>,
    password: String,
) -> Result<bool, PasswordCheckBusy> {
    const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$1dNy3Gx0k9Itn9yF7hqwTf5qqfl9V0W5fvMCHzN8l+I";
    let permit = ARGON2_PERMITS
        .try_acquire()
        .map_err(|_| PasswordCheckBusy)?;
    let known = hash.is_some();
    let hash = hash.unwrap_or_else(|| HashedPassword::new(DUMMY.to_owned()));
    let ok = tokio::task::spawn_blocking(move || {
        // Held until the computation ends, even if the request is dropped.
        let _permit = permit;
        PasswordHash::new(hash.as_phc()).is_ok_and(|parsed| {
            argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false);
    Ok(ok && known)
}

#[cfg(test)]
mod tests {
    use super::check_password_rules;

    #[test]
    fn a_password_is_what_a_sign_in_form_can_send() {
        assert!(check_password_rules("a long passphrase, with ünïcode").is_ok());
        for bad in [
            "short",
            "line one\nline two",
            "tab\tseparated",
            "nul\0inside!",
        ] {
            assert!(check_password_rules(bad).is_err(), "{bad:?}");
        }
        assert!(check_password_rules(&"x".repeat(1025)).is_err());
    }
}
