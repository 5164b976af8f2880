//! Pseudonymisation of person identifiers at ingest: a keyed HMAC-SHA-256 with a per-dataset
//! key derived from the service's master secret. The raw value is never stored or logged; the
//! same person reported by two organisations gets the same pseudonym within a dataset, and
//! different pseudonyms in different datasets.

use crate::model::DatasetId;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so new_from_slice cannot fail.
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(msg);
    m.finalize().into_bytes().into()
}

/// The pseudonymisation key of one dataset: HMAC(master, "subject-key:" + dataset id).
pub fn dataset_key(master: &[u8], ds: &DatasetId) -> [u8; 32] {
    hmac(master, format!("subject-key:{}", ds.as_str()).as_bytes())
}

/// Normalises an identifier before hashing, so `" 123 456 782 "` and `"123456782"` agree:
/// whitespace removed, ASCII upper case.
pub fn normalise(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase()
}

/// The pseudonym of a person identifier: `p_` + the first 128 bits of the HMAC, hex.
///
/// ```
/// use hotspots::privacy::pseudonym::{dataset_key, pseudonymise};
/// use hotspots::model::DatasetId;
/// let k = dataset_key(b"master", &DatasetId::new("a").unwrap());
/// assert_eq!(pseudonymise(&k, "C-1"), pseudonymise(&k, " c-1 "));
/// assert_ne!(pseudonymise(&k, "C-1"), "C-1");
/// ```
pub fn pseudonymise(key: &[u8; 32], raw: &str) -> String {
    format!(
        "p_{}",
        hex::encode(&hmac(key, normalise(raw).as_bytes())[..16])
    )
}
