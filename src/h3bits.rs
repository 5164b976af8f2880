//! H3 indexes as raw `u64`: the bit arithmetic the hot loops need (resolution, parent) without
//! h3o's per-call validation, and a hash map keyed by them. Std only.
//!
//! Layout of an H3 cell index (the H3 spec, "H3 Index Representations"): bits 52..56 hold the
//! resolution, and the 3-bit digit of resolution `r` (1..=15) sits at bits `3 * (15 - r)`;
//! digits finer than the cell's resolution are all ones (7).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

const RES_SHIFT: u32 = 52;
const RES_MASK: u64 = 0xF << RES_SHIFT;

/// Resolution of a (valid) H3 cell index.
#[inline]
pub fn resolution(cell: u64) -> u8 {
    ((cell & RES_MASK) >> RES_SHIFT) as u8
}

/// The parent at `res` of a valid cell index whose resolution is at least `res` (not checked:
/// callers compare [`resolution`] first). Equal to h3o's `CellIndex::parent`.
#[inline]
pub fn parent(cell: u64, res: u8) -> u64 {
    let unused = (1u64 << (3 * (15 - u32::from(res.min(15))))) - 1;
    (cell & !RES_MASK) | (u64::from(res) << RES_SHIFT) | unused
}

/// Multiplicative (Fibonacci) hasher for `u64` keys such as H3 indexes: std's SipHash costs
/// several times more per lookup in the aggregation loops.
#[derive(Default, Clone, Copy)]
pub struct MulHasher(u64);

impl Hasher for MulHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        let h = (v ^ (v >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = h ^ (h >> 32);
    }
}

/// Hash map keyed by 64-bit H3 indexes.
pub type CellMap<V> = HashMap<u64, V, BuildHasherDefault<MulHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use h3o::{CellIndex, LatLng, Resolution};

    #[test]
    fn parent_and_resolution_equal_h3o() {
        // cells near Zaandam, the equator, a pentagon's neighbourhood and the antimeridian
        let places = [
            (52.44, 4.82),
            (0.1, 0.1),
            (64.7, 10.53),
            (-16.5, 179.99),
            (-89.9, -45.0),
        ];
        for (lat, lng) in places {
            let ll = LatLng::new(lat, lng).expect("valid");
            for fine in [12u8, 15, 9, 0] {
                let c = ll.to_cell(Resolution::try_from(fine).expect("res"));
                assert_eq!(resolution(u64::from(c)), fine);
                for r in 0..=fine {
                    let want = c
                        .parent(Resolution::try_from(r).expect("res"))
                        .expect("parent");
                    assert_eq!(parent(u64::from(c), r), u64::from(want), "{c} at {r}");
                    assert!(CellIndex::try_from(parent(u64::from(c), r)).is_ok());
                }
            }
        }
        // every base cell, including the pentagons
        for base in CellIndex::base_cells() {
            for child in base.children(Resolution::Three) {
                assert_eq!(parent(u64::from(child), 0), u64::from(base));
            }
        }
    }
}
