//! Cooperative cancellation of heavy, read-only work (std only: no async runtime here).
//!
//! The API runs each analysis on the blocking pool under [`run`] with a [`Token`]; when the
//! client goes away or the time limit passes, the request's future is dropped and the token is
//! cancelled. Heavy loops in `analysis` call [`checkpoint`] now and then (per permutation
//! batch, per simulation, per block of points): once the token of the calling thread is
//! cancelled, the checkpoint unwinds to [`run`], which answers `Err(Cancelled)`.
//!
//! Only pure computations over immutable snapshots may contain checkpoints: unwinding out of
//! them leaves nothing half-done. Writes (ingest, admin) never reach one, so a client that
//! leaves during an upload does not stop a transaction half-way.
//! The unwind uses `resume_unwind`, which skips the panic hook: a cancellation is not logged
//! as a panic.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A cancellation flag shared between the request and its work.
#[derive(Clone, Debug, Default)]
pub struct Token(Arc<AtomicBool>);

impl Token {
    pub fn new() -> Token {
        Token::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The work was cancelled before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the work was cancelled (the client went away or the time limit passed)")]
pub struct Cancelled;

thread_local! {
    static CURRENT: RefCell<Option<Token>> = const { RefCell::new(None) };
}

/// Runs `f` on this thread with `token` as the current token. A [`checkpoint`] reached after
/// the token is cancelled ends `f` with `Err(Cancelled)`; other panics go on unwinding.
pub fn run<T>(token: &Token, f: impl FnOnce() -> T) -> Result<T, Cancelled> {
    if token.is_cancelled() {
        return Err(Cancelled);
    }
    let previous = CURRENT.with(|c| c.replace(Some(token.clone())));
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CURRENT.with(|c| *c.borrow_mut() = previous);
    match out {
        Ok(v) => Ok(v),
        Err(payload) if payload.is::<Cancelled>() => Err(Cancelled),
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

/// Ends the current work (see [`run`]) when its token was cancelled; free otherwise (one
/// relaxed load). Outside [`run`] it does nothing.
#[inline]
pub fn checkpoint() {
    let cancelled = CURRENT.with(|c| c.borrow().as_ref().is_some_and(Token::is_cancelled));
    if cancelled {
        std::panic::resume_unwind(Box::new(Cancelled));
    }
}

/// Whether the current work was cancelled, for loops that prefer to stop on their own.
pub fn is_cancelled() -> bool {
    CURRENT.with(|c| c.borrow().as_ref().is_some_and(Token::is_cancelled))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_cancelled_token_stops_the_work_at_the_next_checkpoint() {
        let token = Token::new();
        let t2 = token.clone();
        let start = Instant::now();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            t2.cancel();
        });
        let r = run(&token, || {
            loop {
                checkpoint();
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        assert_eq!(r, Err(Cancelled));
        assert!(start.elapsed() < Duration::from_secs(5));
        // the thread's token is restored: checkpoints outside run do nothing
        checkpoint();
        assert!(!is_cancelled());
    }

    #[test]
    fn work_that_finishes_returns_its_value_and_panics_still_panic() {
        assert_eq!(run(&Token::new(), || 42), Ok(42));
        let t = Token::new();
        t.cancel();
        assert_eq!(
            run(&t, || 1),
            Err(Cancelled),
            "not started when already cancelled"
        );
        let p = std::panic::catch_unwind(|| run(&Token::new(), || panic!("a bug")));
        assert!(p.is_err(), "a real panic is not taken for a cancellation");
    }
}
