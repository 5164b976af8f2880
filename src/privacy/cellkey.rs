//! Calibrated, deterministic noise on published counts: the cell key method (as used by the
//! Australian Bureau of Statistics and by CBS for the census grid).
//!
//! 1. Every incident gets a *record key*, a number uniform on `0..256`, fixed for the life of
//!    the record: the first byte of SHA-256(salt ‖ fid), with a random per-dataset salt kept
//!    in the store (never shown).
//! 2. The *cell key* of a published count is the sum of the record keys of the incidents it
//!    counts, modulo 256. The same incidents give the same cell key, so the same cell and
//!    period give the same published value in every query, and repeating a query cannot
//!    average the noise away; a different set of incidents (another month window, another
//!    filter) gets an unrelated key, so subtracting two answers gives a noisy difference.
//! 3. The cell key picks the perturbation from a fixed table: 0 with probability 1/2, ±1 with
//!    51/256 each, ±2 with 13/256 each (mean 0, variance 206/256 ≈ 0.80).
//!
//! Counts of zero are not perturbed (an empty cell stays empty, as in the ABS method).
//! Suppression is decided on the true count first (`disclosure`); a shown count is then
//! perturbed and never published below the threshold `k`, so a published `k` means "k to k+2".

use sha2::{Digest, Sha256};

/// Perturbation as a function of the cell key (`0..256`).
pub fn perturbation(cell_key: u8) -> i64 {
    match cell_key {
        0..13 => -2,
        13..64 => -1,
        64..192 => 0,
        192..243 => 1,
        _ => 2,
    }
}

/// Record keys of fids under a dataset's salt.
pub fn record_keys(salt: &[u8], fids: &[i64]) -> Vec<u8> {
    let base = Sha256::new_with_prefix(salt);
    fids.iter()
        .map(|fid| base.clone().chain_update(fid.to_le_bytes()).finalize()[0])
        .collect()
}

/// The published value of a count whose record keys add up to `key_sum`, under the threshold
/// `min_count` (counts below it are suppressed before this is asked).
pub fn noisy(count: u64, key_sum: u64, min_count: u32) -> u64 {
    if count == 0 {
        return 0;
    }
    let p = perturbation((key_sum % 256) as u8);
    let v = count.saturating_add_signed(p);
    v.max(u64::from(min_count)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_symmetric_with_the_stated_variance() {
        let p: Vec<i64> = (0..=255u8).map(perturbation).collect();
        assert_eq!(p.iter().sum::<i64>(), 0, "mean 0");
        assert_eq!(p.iter().map(|v| v * v).sum::<i64>(), 206);
        assert_eq!(p.iter().filter(|v| **v == 0).count(), 128);
    }

    #[test]
    fn record_keys_are_fixed_per_salt_and_spread() {
        let fids: Vec<i64> = (1..=25_600).collect();
        let a = record_keys(b"salt-a", &fids);
        assert_eq!(a, record_keys(b"salt-a", &fids));
        let b = record_keys(b"salt-b", &fids);
        assert!(a.iter().zip(&b).filter(|(x, y)| x == y).count() < 300);
        let mut hist = [0usize; 256];
        for k in &a {
            hist[*k as usize] += 1;
        }
        // 100 expected per value; a fair byte stays well inside 50..150
        assert!(hist.iter().all(|&h| (50..150).contains(&h)), "{hist:?}");
    }

    #[test]
    fn noise_keeps_zero_and_the_threshold() {
        assert_eq!(noisy(0, 5, 10), 0);
        // key 0 -> -2: 10 would become 8, published as the threshold 10
        assert_eq!(noisy(10, 0, 10), 10);
        assert_eq!(noisy(50, 0, 10), 48);
        assert_eq!(noisy(50, 256 + 200, 10), 51);
        assert_eq!(noisy(50, 100, 10), 50);
        assert_eq!(noisy(1, 0, 1), 1);
    }
}
