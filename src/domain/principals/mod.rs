//! Users (people, with passwords and a role) and machine users (API users,
//! whose username is their OAuth `client_id`), and machine users' client
//! secrets. Both kinds live in one table so usernames share one namespace.
//!
//! One file per area; this module only re-exports them, so every
//! `domain::principals::X` path names the same item as before.

mod client_auth;
mod client_secrets;
mod common;
mod machine_users;
mod managers;
mod passwords;
mod users;

pub use client_auth::{AuthenticatedClient, authenticate_client};
pub use client_secrets::{
    CLIENT_SECRET_PREFIX, MAX_ACTIVE_SECRETS, NewSecret, Replacement, SecretInfo, create_secret,
    delete_secret, remove_expired,
};
pub use common::{
    DEFAULT_CC_TTL_MINUTES, any_admin, find, find_by_username, is_admin, parse_email, permits, refs,
};
pub(in crate::domain) use common::{blank, duplicate_username};
pub use machine_users::{
    ClientCredentials, MachineUser, MachineUserInput, create_machine_user,
    create_machine_user_with_secret, delete_machine_user, get_machine_user, list_machine_users,
    list_machine_users_filtered, list_machine_users_for, update_machine_user, view_machine_user,
};
pub use managers::{MachineUserFilter, Need, authorize, is_manager, managed_by};
pub use passwords::{
    PASSWORD_BUSY_RETRY_SECS, PasswordCheckBusy, check_password_rules, hash_password,
    password_checks_saturated, verify_password,
};
pub use users::{
    ADMIN_CHANGE_LOCK, NewUser, User, UserPatch, create_user, get_user, list_users, record_login,
    set_own_email, update_user,
};
