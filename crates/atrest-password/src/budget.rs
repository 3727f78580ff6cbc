//! The memory budget: a fair (first come, first served) weighted semaphore counted in KiB that
//! both threads and async tasks can wait on.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

#[derive(Debug)]
pub(crate) struct Budget {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    granted: Condvar,
}

#[derive(Debug)]
struct State {
    available: u64,
    waiters: VecDeque<Waiter>,
    next_id: u64,
}

#[derive(Debug)]
struct Waiter {
    id: u64,
    need: u64,
    granted: bool,
    waker: Option<Waker>,
}

impl State {
    /// Whether a newcomer may take memory now: nobody is queued ahead of it.
    fn nobody_waiting(&self) -> bool {
        self.waiters.iter().all(|w| w.granted)
    }

    /// Hands memory to waiters in arrival order; stops at the first that does not fit, so a
    /// large request is not starved by a stream of small ones.
    fn grant(&mut self) -> bool {
        let mut any = false;
        for waiter in self.waiters.iter_mut().filter(|w| !w.granted) {
            if waiter.need > self.available {
                break;
            }
            self.available -= waiter.need;
            waiter.granted = true;
            if let Some(waker) = waiter.waker.take() {
                waker.wake();
            }
            any = true;
        }
        any
    }

    fn take_granted(&mut self, id: u64) -> Option<bool> {
        let index = self.waiters.iter().position(|w| w.id == id)?;
        if self.waiters[index].granted {
            self.waiters.remove(index);
            Some(true)
        } else {
            Some(false)
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while the lock is held, so a poisoned state is still consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn release(&self, need: u64) {
        let mut state = self.lock();
        state.available += need;
        if state.grant() {
            self.granted.notify_all();
        }
    }
}

/// Memory held for one hash or verification; given back on drop.
#[derive(Debug)]
pub(crate) struct Permit {
    shared: Arc<Shared>,
    need: u64,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.shared.release(self.need);
    }
}

impl Budget {
    pub(crate) fn new(capacity: u64) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    available: capacity,
                    waiters: VecDeque::new(),
                    next_id: 0,
                }),
                granted: Condvar::new(),
            }),
        }
    }

    fn permit(&self, need: u64) -> Permit {
        Permit {
            shared: Arc::clone(&self.shared),
            need,
        }
    }

    /// Takes `need` now if it is free and nobody is queued.
    pub(crate) fn try_acquire(&self, need: u64) -> Option<Permit> {
        let mut state = self.shared.lock();
        if state.nobody_waiting() && state.available >= need {
            state.available -= need;
            drop(state);
            return Some(self.permit(need));
        }
        None
    }

    /// Blocks the thread until `need` is granted. `need` must not exceed the capacity.
    pub(crate) fn acquire(&self, need: u64) -> Permit {
        let mut state = self.shared.lock();
        if state.nobody_waiting() && state.available >= need {
            state.available -= need;
            drop(state);
            return self.permit(need);
        }
        let id = state.next_id;
        state.next_id += 1;
        state.waiters.push_back(Waiter {
            id,
            need,
            granted: false,
            waker: None,
        });
        loop {
            state = self
                .shared
                .granted
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if state.take_granted(id) == Some(true) {
                drop(state);
                return self.permit(need);
            }
        }
    }

    /// Waits without blocking the thread until `need` is granted. Cancel-safe: dropping the
    /// future gives back whatever it was granted.
    #[cfg_attr(
        not(feature = "tokio"),
        allow(dead_code, reason = "used by the async variants only")
    )]
    pub(crate) fn acquire_async(&self, need: u64) -> Acquire {
        Acquire {
            shared: Arc::clone(&self.shared),
            need,
            id: None,
        }
    }
}

/// Future returned by [`Budget::acquire_async`].
#[derive(Debug)]
pub(crate) struct Acquire {
    shared: Arc<Shared>,
    need: u64,
    /// Set while queued.
    id: Option<u64>,
}

impl Future for Acquire {
    type Output = Permit;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Permit> {
        let this = self.get_mut();
        let mut state = this.shared.lock();
        let granted = match this.id {
            None if state.nobody_waiting() && state.available >= this.need => {
                state.available -= this.need;
                true
            }
            None => {
                let id = state.next_id;
                state.next_id += 1;
                state.waiters.push_back(Waiter {
                    id,
                    need: this.need,
                    granted: false,
                    waker: Some(cx.waker().clone()),
                });
                this.id = Some(id);
                false
            }
            Some(id) => {
                if state.take_granted(id) == Some(true) {
                    this.id = None;
                    true
                } else {
                    if let Some(waiter) = state.waiters.iter_mut().find(|w| w.id == id) {
                        waiter.waker = Some(cx.waker().clone());
                    }
                    false
                }
            }
        };
        drop(state);
        if granted {
            Poll::Ready(Permit {
                shared: Arc::clone(&this.shared),
                need: this.need,
            })
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        let Some(id) = self.id else { return };
        let mut state = self.shared.lock();
        if let Some(index) = state.waiters.iter().position(|w| w.id == id) {
            if let Some(waiter) = state.waiters.remove(index)
                && waiter.granted
            {
                state.available += waiter.need;
            }
            // Whoever queued behind us may fit now.
            if state.grant() {
                self.shared.granted.notify_all();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    #[test]
    fn try_acquire_respects_capacity() {
        let budget = Budget::new(10);
        let a = budget.try_acquire(6).expect("fits");
        assert!(budget.try_acquire(5).is_none());
        let b = budget.try_acquire(4).expect("fits");
        drop(a);
        assert!(budget.try_acquire(7).is_none());
        drop(b);
        assert!(budget.try_acquire(10).is_some());
    }

    #[test]
    fn blocked_acquire_is_woken_and_queue_is_fifo() {
        let budget = Arc::new(Budget::new(10));
        let held = budget.try_acquire(8).expect("fits");
        let big_done = Arc::new(AtomicU64::new(0));
        let waiter = {
            let (budget, big_done) = (Arc::clone(&budget), Arc::clone(&big_done));
            std::thread::spawn(move || {
                let _permit = budget.acquire(10);
                big_done.store(1, Ordering::SeqCst);
            })
        };
        // Wait until the big request is queued; then a small request, which would fit, must
        // not jump the queue.
        while budget.shared.lock().waiters.is_empty() {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(budget.try_acquire(1).is_none(), "newcomer jumped the queue");
        drop(held);
        waiter.join().expect("waiter thread");
        assert_eq!(big_done.load(Ordering::SeqCst), 1);
        assert_eq!(budget.shared.lock().available, 10);
    }

    #[test]
    fn dropped_async_waiter_gives_back_and_unblocks() {
        let budget = Budget::new(10);
        let held = budget.try_acquire(8).expect("fits");
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut first = budget.acquire_async(5);
        assert!(Pin::new(&mut first).poll(&mut cx).is_pending());
        let mut second = budget.acquire_async(2);
        assert!(
            Pin::new(&mut second).poll(&mut cx).is_pending(),
            "must queue behind first"
        );
        drop(first);
        assert!(
            Pin::new(&mut second).poll(&mut cx).is_ready(),
            "unblocked by the cancellation"
        );
        // Granted while queued but never polled again: dropping must return the memory.
        let mut third = budget.acquire_async(5);
        assert!(Pin::new(&mut third).poll(&mut cx).is_pending());
        drop(held);
        assert!(
            budget.shared.lock().waiters.iter().all(|w| w.granted),
            "granted on release"
        );
        drop(third);
        assert_eq!(budget.shared.lock().available, 10);
        assert!(budget.shared.lock().waiters.is_empty());
    }
}
