//! Work spread over threads, results consumed in input order.
//!
//! Encoding payload groups is the slow part of making a bundle, and groups vary from a few
//! bytes (an unchanged gzip file) to a whole 8 MiB piece of a library. Batches with a barrier
//! between them leave cores idle behind the slowest group; here every worker takes the next
//! item as soon as it is free, and only the window of items not yet consumed bounds how far
//! the workers run ahead (so memory stays bounded by `window` results).

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex};

use crate::Result;

/// Progress shared by the workers and the consumer.
struct Cursor {
    /// The next item a worker will take.
    next: usize,
    /// Items the consumer has taken, in order.
    consumed: usize,
    /// Set when the consumer fails: workers stop taking items.
    stop: bool,
}

/// Run `work` on every item on `workers` threads and hand each result to `consume` in the
/// items' order. At most `window` items are taken ahead of the one being consumed. The first
/// error (from `work` for the earliest failing item, or from `consume`) stops the run and is
/// returned.
pub fn map_in_order<T, R, W, C>(
    items: &[T],
    workers: usize,
    window: usize,
    work: W,
    mut consume: C,
) -> Result<()>
where
    T: Sync,
    R: Send,
    W: Fn(&T) -> Result<R> + Sync,
    C: FnMut(usize, R) -> Result<()>,
{
    if items.is_empty() {
        return Ok(());
    }
    let window = window.max(1);
    let cursor = Mutex::new(Cursor {
        next: 0,
        consumed: 0,
        stop: false,
    });
    let freed = Condvar::new();
    let (tx, rx) = crossbeam_channel::unbounded::<(usize, Result<R>)>();
    std::thread::scope(|s| {
        for _ in 0..workers.clamp(1, items.len()) {
            let tx = tx.clone();
            let (cursor, freed, work) = (&cursor, &freed, &work);
            s.spawn(move || {
                while let Some(i) = take_next(cursor, freed, items.len(), window) {
                    if tx.send((i, work(&items[i]))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let mut pending: BTreeMap<usize, Result<R>> = BTreeMap::new();
        let mut want = 0;
        let outcome = 'recv: {
            for (i, r) in rx.iter() {
                pending.insert(i, r);
                while let Some(r) = pending.remove(&want) {
                    let step = r.and_then(|v| consume(want, v));
                    want += 1;
                    let mut c = lock(&cursor);
                    c.consumed = want;
                    c.stop |= step.is_err();
                    drop(c);
                    freed.notify_all();
                    if step.is_err() {
                        break 'recv step;
                    }
                }
            }
            Ok(())
        };
        // Dropping the receiver makes any worker still sending give up.
        drop(rx);
        lock(&cursor).stop = true;
        freed.notify_all();
        outcome
    })
}

/// The next item for a worker, waiting while the window is full; None when the run is over.
fn take_next(cursor: &Mutex<Cursor>, freed: &Condvar, len: usize, window: usize) -> Option<usize> {
    let mut c = lock(cursor);
    loop {
        if c.stop || c.next >= len {
            return None;
        }
        if c.next < c.consumed + window {
            c.next += 1;
            return Some(c.next - 1);
        }
        c = freed.wait(c).unwrap_or_else(|e| e.into_inner());
    }
}

fn lock(m: &Mutex<Cursor>) -> std::sync::MutexGuard<'_, Cursor> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn results_arrive_in_order_whatever_the_timing() {
        let items: Vec<u64> = (0..200).collect();
        let mut seen = Vec::new();
        map_in_order(
            &items,
            4,
            8,
            |&i| {
                // Early items are the slow ones.
                std::thread::sleep(std::time::Duration::from_micros((200 - i) * 20));
                Ok(i * 2)
            },
            |k, v| {
                seen.push((k, v));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, (0..200).map(|i| (i as usize, i * 2)).collect::<Vec<_>>());
    }

    #[test]
    fn workers_never_run_more_than_the_window_ahead() {
        let items: Vec<usize> = (0..100).collect();
        let started = AtomicUsize::new(0);
        let consumed = AtomicUsize::new(0);
        map_in_order(
            &items,
            3,
            5,
            |_| {
                let s = started.fetch_add(1, Ordering::SeqCst) + 1;
                assert!(
                    s <= consumed.load(Ordering::SeqCst) + 5,
                    "ran {s} with {consumed:?} consumed"
                );
                Ok(())
            },
            |_, ()| {
                consumed.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_micros(200));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(consumed.load(Ordering::SeqCst), 100);
    }

    #[test]
    fn the_first_failure_in_order_is_returned_and_stops_the_run() {
        let items: Vec<usize> = (0..1000).collect();
        let ran = AtomicUsize::new(0);
        let mut consumed = Vec::new();
        let err = map_in_order(
            &items,
            2,
            4,
            |&i| {
                ran.fetch_add(1, Ordering::SeqCst);
                if i == 7 || i == 9 {
                    Err(Error::format("test", format!("item {i}")))
                } else {
                    Ok(i)
                }
            },
            |_, v| {
                consumed.push(v);
                Ok(())
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("item 7"), "{err}");
        assert_eq!(consumed, (0..7).collect::<Vec<_>>());
        assert!(ran.load(Ordering::SeqCst) < 20);
    }

    #[test]
    fn a_failing_consumer_stops_the_workers() {
        let items: Vec<usize> = (0..1000).collect();
        let ran = AtomicUsize::new(0);
        let err = map_in_order(
            &items,
            2,
            4,
            |&i| {
                ran.fetch_add(1, Ordering::SeqCst);
                Ok(i)
            },
            |k, _| {
                if k == 3 {
                    Err(Error::format("test", "full disk"))
                } else {
                    Ok(())
                }
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("full disk"), "{err}");
        assert!(ran.load(Ordering::SeqCst) < 20);
    }
}
