//! Work spread over threads, results consumed in input order.
//!
//! Encoding payload groups is the slow part of making a bundle, and groups vary from a few
//! bytes (an unchanged gzip file) to a whole 8 MiB piece of a library. Batches with a barrier
//! between them leave cores idle behind the slowest group; here every worker takes the next
//! item as soon as it is free, and only the window of items not yet consumed bounds how far
//! the workers run ahead (so memory stays bounded by `window` results). A caller may also
//! say in which order to start the items (`map_in_order_starting`): starting the costliest
//! first keeps one big item from running alone at the end while the other cores idle.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex};

use crate::Result;

/// Progress shared by the workers and the consumer.
struct Cursor<'o> {
    /// The order in which items are started.
    order: &'o [usize],
    /// Position in `order` of the next item to start (items before it are started).
    pos: usize,
    started: Vec<bool>,
    started_count: usize,
    /// Items the consumer has taken, in order.
    consumed: usize,
    /// Set when the consumer fails: workers stop taking items.
    stop: bool,
}

/// Run `work` on every item on `workers` threads and hand each result to `consume` in the
/// items' order. At most `window` items are taken ahead of the one being consumed. The first
/// error (from `work` for the earliest failing item, or from `consume`) stops the run and is
/// returned.
pub fn map_in_order<T, R, W, C>(items: &[T], workers: usize, window: usize, work: W, consume: C) -> Result<()>
where
    T: Sync,
    R: Send,
    W: Fn(&T) -> Result<R> + Sync,
    C: FnMut(usize, R) -> Result<()>,
{
    let order: Vec<usize> = (0..items.len()).collect();
    map_in_order_starting(items, &order, workers, window, work, consume)
}

/// `map_in_order`, with the items started in `order` (a permutation of their indices).
/// Results still reach `consume` in the items' order. When `window` results are waiting,
/// workers start only the item the consumer needs next, so memory stays bounded and the
/// run always makes progress.
pub fn map_in_order_starting<T, R, W, C>(
    items: &[T],
    order: &[usize],
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
    assert_eq!(
        order.len(),
        items.len(),
        "the start order must name every item once"
    );
    let window = window.max(1);
    let cursor = Mutex::new(Cursor {
        order,
        pos: 0,
        started: vec![false; items.len()],
        started_count: 0,
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
fn take_next(cursor: &Mutex<Cursor<'_>>, freed: &Condvar, len: usize, window: usize) -> Option<usize> {
    let mut c = lock(cursor);
    loop {
        while c.pos < len && c.started[c.order[c.pos]] {
            c.pos += 1;
        }
        if c.stop || c.pos >= len {
            return None;
        }
        let i = if c.started_count - c.consumed < window {
            Some(c.order[c.pos])
        } else {
            // The window is full of results waiting for the next one: start that.
            Some(c.consumed).filter(|&k| k < len && !c.started[k])
        };
        if let Some(i) = i {
            c.started[i] = true;
            c.started_count += 1;
            return Some(i);
        }
        c = freed.wait(c).unwrap_or_else(|e| e.into_inner());
    }
}

fn lock<'a, 'o>(m: &'a Mutex<Cursor<'o>>) -> std::sync::MutexGuard<'a, Cursor<'o>> {
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
    fn a_start_order_changes_when_items_run_not_the_order_results_arrive() {
        let items: Vec<u64> = (0..300).collect();
        // Some permutation; a small window forces the fallback of starting the item the
        // consumer waits for.
        let mut order: Vec<usize> = (0..300).collect();
        order.sort_by_key(|&i| std::cmp::Reverse((i * 7919) % 300));
        for window in [1, 3, 64, 1000] {
            let started = Mutex::new(Vec::new());
            let mut seen = Vec::new();
            map_in_order_starting(
                &items,
                &order,
                3,
                window,
                |&i| {
                    started.lock().unwrap().push(i as usize);
                    std::thread::sleep(std::time::Duration::from_micros((i % 5) * 30));
                    Ok(i + 1)
                },
                |k, v| {
                    seen.push((k, v));
                    Ok(())
                },
            )
            .unwrap();
            assert_eq!(seen, (0..300).map(|i| (i as usize, i + 1)).collect::<Vec<_>>());
            let mut started = started.into_inner().unwrap();
            if window == 1000 {
                // Nothing holds the workers back: the first item to run is one of the
                // first three (one per worker) in the given order.
                assert!(order[..3].contains(&started[0]), "{:?}", &started[..3]);
            }
            started.sort();
            assert_eq!(started, (0..300).collect::<Vec<_>>(), "every item runs once");
        }
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
