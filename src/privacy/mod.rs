//! Who may see what. Every request runs as a [`Principal`] (an organisation with a tier, or
//! the admin); the rules of what each tier may see live here, so that every output passes
//! through one place.
//!
//! This module currently holds the access rules of the foundation (point layers are for the
//! private tier and for an organisation's own records), API key generation and hashing, and
//! the pseudonymisation of person identifiers at ingest.

pub mod cellkey;
pub mod disclosure;
pub mod pseudonym;

use crate::model::{DatasetMeta, Layer, Tier};
use sha2::{Digest, Sha256};

/// Access refusals.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PrivacyError {
    /// The tier of the caller may not see this layer's points.
    #[error(
        "{tier} tier keys may not list the points of the {layer} layer; ask for the private tier, or restrict the request to your own organisation's records with source={own}"
    )]
    PointsForbidden {
        tier: &'static str,
        layer: &'static str,
        own: String,
    },
    /// Only the admin may do this.
    #[error("this action needs the admin key")]
    AdminOnly,
    /// Anonymous callers may not write.
    #[error("authentication required")]
    Unauthenticated,
}

/// The caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `None` for anonymous callers and for the admin.
    pub organisation: Option<String>,
    pub tier: Tier,
    pub admin: bool,
    /// Key id for audit (never the key).
    pub key_id: Option<String>,
    /// May read the audit entries of its organisation's datasets.
    pub privacy_officer: bool,
}

impl Principal {
    pub fn anonymous() -> Principal {
        Principal {
            organisation: None,
            tier: Tier::Open,
            admin: false,
            key_id: None,
            privacy_officer: false,
        }
    }
    pub fn admin() -> Principal {
        Principal {
            organisation: None,
            tier: Tier::Private,
            admin: true,
            key_id: Some("admin".into()),
            privacy_officer: true,
        }
    }

    /// May this caller know that the dataset exists? The admin sees all; an organisation's key
    /// only the datasets it is a member of; anonymous callers only datasets published as open
    /// data. Everything else answers 404, so existence does not leak.
    pub fn may_see(&self, meta: &DatasetMeta) -> bool {
        match (&self.organisation, self.admin) {
            (_, true) => true,
            (Some(org), _) => meta.members.iter().any(|m| m == org),
            (None, false) => meta.open,
        }
    }

    /// May this caller list the features of `layer`, given the `source` filter of the request?
    ///
    /// The study area is a polygon everybody may see. Point layers need the private tier;
    /// an organisation may always list its own incidents (a `source` filter naming only itself).
    pub fn may_list(&self, layer: Layer, sources: Option<&[String]>) -> Result<(), PrivacyError> {
        if !layer.is_points() || self.tier == Tier::Private {
            return Ok(());
        }
        let own = self.organisation.clone().unwrap_or_default();
        let only_own = layer == Layer::Incidents
            && !own.is_empty()
            && sources.is_some_and(|s| !s.is_empty() && s.iter().all(|x| *x == own));
        if only_own {
            Ok(())
        } else {
            Err(PrivacyError::PointsForbidden {
                tier: self.tier.as_str(),
                layer: layer.as_str(),
                own,
            })
        }
    }

    /// May this caller write to `layer`? Organisations write their own incidents; the other
    /// layers and dataset management are for the admin.
    pub fn may_write(&self, layer: Layer) -> Result<(), PrivacyError> {
        if self.admin {
            return Ok(());
        }
        match (&self.organisation, layer) {
            (None, _) => Err(PrivacyError::Unauthenticated),
            (Some(_), Layer::Incidents) => Ok(()),
            (Some(_), _) => Err(PrivacyError::AdminOnly),
        }
    }

    pub fn require_admin(&self) -> Result<(), PrivacyError> {
        if self.admin {
            Ok(())
        } else if self.organisation.is_none() {
            Err(PrivacyError::Unauthenticated)
        } else {
            Err(PrivacyError::AdminOnly)
        }
    }
}

/// A new random API key: `hs_` + 64 hex characters (256 bits).
pub fn generate_key() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("hs_{}", hex::encode(bytes))
}

/// SHA-256 of a key, hex: what the store keeps.
pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The public id of a key: its first 11 characters (`hs_` + 8 hex).
pub fn key_id(key: &str) -> String {
    key.chars().take(11).collect()
}

/// Compares two strings in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
