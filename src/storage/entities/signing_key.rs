use sea_orm::entity::prelude::*;

use crate::kinds::{KeyAlg, KeyState};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signing_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub kid: String,
    pub alg: KeyAlg,
    pub state: KeyState,
    pub public_jwk: String,
    /// PKCS#8 private key sealed with AES-256-GCM under the master key
    /// (nonce ‖ ciphertext ‖ tag, the kid as associated data).
    pub private_key: Vec<u8>,
    pub created_at: TimeDateTimeWithTimeZone,
    pub retired_at: Option<TimeDateTimeWithTimeZone>,
    /// For a `next` key: when it starts signing (published in the JWKS before).
    pub activates_at: Option<TimeDateTimeWithTimeZone>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
