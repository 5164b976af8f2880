//! Data parallelism on the machine's two cores, std only: large loops split in two halves on
//! scoped threads (a thread spawn costs tens of microseconds, so small inputs stay on one).

/// `f` on the two halves of `0..n` on two threads when `n >= from`, else on the whole range;
/// the results in order. A panic in either half is resumed on the caller's thread.
pub fn in_halves<T: Send>(
    n: usize,
    from: usize,
    f: impl Fn(std::ops::Range<usize>) -> T + Sync,
) -> Vec<T> {
    if n < from.max(2) {
        return vec![f(0..n)];
    }
    let mid = n / 2;
    std::thread::scope(|s| {
        let second = s.spawn(|| f(mid..n));
        let first = f(0..mid);
        let second = second
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        vec![first, second]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_cover_the_range_in_order() {
        for (n, from) in [(0, 1), (1, 1), (10, 100), (10, 2), (10_001, 2)] {
            let parts = in_halves(n, from, |r| r.collect::<Vec<usize>>());
            assert_eq!(parts.concat(), (0..n).collect::<Vec<_>>());
            assert_eq!(parts.len(), if n >= from.max(2) { 2 } else { 1 });
        }
    }
}
