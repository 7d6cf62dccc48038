//! Small helpers for the few locks shared between threads. No I/O.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks a mutex whose data stays valid even if a holder panicked: every shared value in
/// the daemon is replaced whole under its lock, so a panic never leaves it half-written.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
