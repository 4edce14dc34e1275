//! Work spread over threads, results consumed in input order.
//!
//! Encoding payload groups is the slow part of making a bundle, and groups vary from a few
//! bytes (an unchanged gzip file) to a whole 8 MiB piece of a library. Batches with a barrier
//! between them leave cores idle behind the slowest group; here every worker takes the next
//! item as soon as it is free. What bounds how far the workers run ahead is the weight (a
//! caller's measure of memory) of the items started but not yet consumed. A caller may also
//! say in which order to start the items: starting the costliest first keeps one big item
//! from running alone at the end while the other cores idle.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Condvar, Mutex};

use crate::{Error, Result};

/// Progress shared by the workers and the consumer.
struct Cursor<'o> {
    /// The order in which items are started.
    order: &'o [usize],
    weights: &'o [u64],
    budget: u64,
    /// Position in `order` of the next item to start (items before it are started).
    pos: usize,
    /// Lowest index not started yet.
    low: usize,
    started: Vec<bool>,
    /// Weight of the items started and not consumed.
    held: u64,
    /// Items the consumer has taken, in order.
    consumed: usize,
    /// Set when the run ends early (an error, a panic): workers stop taking items.
    stop: bool,
}

/// Run `work` on every item on `workers` threads and hand each result to `consume` in the
/// items' order, starting items in order while the weight of the items started and not yet
/// consumed stays within `budget`. Past it, workers take items by index (the ones the
/// consumer needs soonest) up to twice the budget, and the item the consumer waits for is
/// always allowed, so the run makes progress and memory stays bounded by about twice
/// `budget` plus one item. The first error (from `work` for the earliest failing item, or
/// from `consume`) stops the run and is returned; a panic in `work` is an error too.
pub fn map_in_order<T, R, W, C>(
    items: &[T],
    weights: &[u64],
    budget: u64,
    workers: usize,
    work: W,
    consume: C,
) -> Result<()>
where
    T: Sync,
    R: Send,
    W: Fn(&T) -> Result<R> + Sync,
    C: FnMut(usize, R) -> Result<()>,
{
    let order: Vec<usize> = (0..items.len()).collect();
    map_in_order_starting(items, &order, weights, budget, workers, work, consume)
}

/// `map_in_order`, with items started (within the budget) in `order`, a permutation of
/// their indices.
pub fn map_in_order_starting<T, R, W, C>(
    items: &[T],
    order: &[usize],
    weights: &[u64],
    budget: u64,
    workers: usize,
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
    let mut seen = vec![false; items.len()];
    assert!(
        order.len() == items.len()
            && order
                .iter()
                .all(|&i| i < items.len() && !std::mem::replace(&mut seen[i], true)),
        "the start order must name every item once"
    );
    assert_eq!(weights.len(), items.len(), "one weight per item");
    let cursor = Mutex::new(Cursor {
        order,
        weights,
        budget: budget.max(1),
        pos: 0,
        low: 0,
        started: vec![false; items.len()],
        held: 0,
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
                while let Some(i) = take_next(cursor, freed) {
                    // A panic (a bug, or a library meeting hostile input) must not leave the
                    // consumer waiting for this item forever.
                    let r = catch_unwind(AssertUnwindSafe(|| work(&items[i])))
                        .unwrap_or_else(|_| Err(Error::format("internal", format!("item {i} panicked"))));
                    if tx.send((i, r)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        // However this ends (an error, a panic in `consume`), workers must not wait on.
        let _stop = StopOnDrop {
            cursor: &cursor,
            freed: &freed,
        };
        let rx = rx;
        let mut pending: BTreeMap<usize, Result<R>> = BTreeMap::new();
        let mut want = 0;
        for (i, r) in rx.iter() {
            pending.insert(i, r);
            while let Some(r) = pending.remove(&want) {
                let step = r.and_then(|v| consume(want, v));
                let mut c = lock(&cursor);
                c.held -= c.weights[want];
                want += 1;
                c.consumed = want;
                c.stop |= step.is_err();
                drop(c);
                freed.notify_all();
                step?;
            }
        }
        if want != items.len() {
            return Err(Error::format(
                "internal",
                format!(
                    "{} of {} items produced no result",
                    items.len() - want,
                    items.len()
                ),
            ));
        }
        Ok(())
    })
}

/// Sets `stop` and wakes the workers when the consumer leaves, however it leaves.
struct StopOnDrop<'a, 'o> {
    cursor: &'a Mutex<Cursor<'o>>,
    freed: &'a Condvar,
}

impl Drop for StopOnDrop<'_, '_> {
    fn drop(&mut self) {
        lock(self.cursor).stop = true;
        self.freed.notify_all();
    }
}

/// The next item for a worker, waiting while too much is held; None when the run is over.
fn take_next(cursor: &Mutex<Cursor<'_>>, freed: &Condvar) -> Option<usize> {
    let mut c = lock(cursor);
    let len = c.started.len();
    loop {
        while c.pos < len && c.started[c.order[c.pos]] {
            c.pos += 1;
        }
        while c.low < len && c.started[c.low] {
            c.low += 1;
        }
        if c.stop || c.pos >= len {
            return None;
        }
        let next = c.order[c.pos];
        let i = if c.held + c.weights[next] <= c.budget {
            Some(next)
        } else if c.low == c.consumed || c.held + c.weights[c.low] <= 2 * c.budget {
            // Over budget: the items the consumer needs soonest, within a hard cap (the one
            // it waits for always).
            Some(c.low)
        } else {
            None
        };
        if let Some(i) = i {
            c.started[i] = true;
            c.held += c.weights[i];
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
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn results_arrive_in_order_whatever_the_timing() {
        let items: Vec<u64> = (0..200).collect();
        let mut seen = Vec::new();
        map_in_order(
            &items,
            &vec![1; items.len()],
            8,
            4,
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
    fn workers_never_run_more_than_twice_the_window_ahead() {
        let items: Vec<usize> = (0..100).collect();
        let started = AtomicUsize::new(0);
        let consumed = AtomicUsize::new(0);
        map_in_order(
            &items,
            &vec![1; items.len()],
            5,
            3,
            |_| {
                let s = started.fetch_add(1, Ordering::SeqCst) + 1;
                // The budget, then items by index up to twice it, then the one the
                // consumer waits for.
                assert!(
                    s <= consumed.load(Ordering::SeqCst) + 2 * 5 + 1,
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
                &[1; 300],
                window,
                3,
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
    fn heavy_items_are_held_back_by_their_weight() {
        // Every tenth item weighs 100; with a budget of 100 no two of them are held at once
        // by the first rule, and the hard cap keeps the total under twice the budget plus
        // one item.
        let items: Vec<usize> = (0..200).collect();
        let weights: Vec<u64> = (0..200).map(|i| if i % 10 == 0 { 100 } else { 1 }).collect();
        let mut order: Vec<usize> = (0..200).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(weights[i]));
        let held = Mutex::new(0u64);
        let peak = AtomicUsize::new(0);
        map_in_order_starting(
            &items,
            &order,
            &weights,
            100,
            4,
            |&i| {
                let mut h = held.lock().unwrap();
                *h += weights[i];
                peak.fetch_max(*h as usize, Ordering::SeqCst);
                Ok(i)
            },
            |k, _| {
                *held.lock().unwrap() -= weights[k];
                Ok(())
            },
        )
        .unwrap();
        assert!(peak.load(Ordering::SeqCst) <= 2 * 100 + 100, "peak {peak:?}");
    }

    #[test]
    fn a_panicking_worker_is_an_error_not_a_hang() {
        let items: Vec<usize> = (0..100).collect();
        let err = map_in_order(
            &items,
            &vec![1; items.len()],
            4,
            2,
            |&i| {
                assert!(i != 5, "hostile input");
                Ok(i)
            },
            |_, _| Ok(()),
        )
        .unwrap_err();
        assert!(err.to_string().contains("item 5 panicked"), "{err}");
    }

    #[test]
    fn a_panicking_consumer_stops_the_workers() {
        let items: Vec<usize> = (0..1000).collect();
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
            map_in_order(
                &items,
                &vec![1; items.len()],
                4,
                2,
                |&i| Ok(i),
                |k, _| {
                    assert!(k != 3, "consumer bug");
                    Ok(())
                },
            )
        }));
        assert!(r.is_err());
    }

    #[test]
    fn the_first_failure_in_order_is_returned_and_stops_the_run() {
        let items: Vec<usize> = (0..1000).collect();
        let ran = AtomicUsize::new(0);
        let mut consumed = Vec::new();
        let err = map_in_order(
            &items,
            &vec![1; items.len()],
            4,
            2,
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
            &vec![1; items.len()],
            4,
            2,
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
