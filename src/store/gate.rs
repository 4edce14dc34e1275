//! The gc interlock inside one process: gc sweeps only while no writer is between its first
//! chunk and the record that links it (store-format.md 2.4).
//!
//! Writers nest: a pull holds a session for a whole image while each of its layer ingests
//! opens one of its own, and an import holds one while its chunk writer ingests inner
//! streams. A writer-preferring `RwLock` would deadlock there (a nested read waits behind a
//! waiting gc, which waits for the outer read). So writers are preferred here instead: a
//! new session waits only while gc *runs*, and gc starts once no session is open. Inside the
//! service, gc is additionally serialised with all other work at a higher level
//! (`serve::work`), so it does not starve.

use std::sync::{Arc, Condvar, Mutex};

#[derive(Default)]
struct State {
    writers: usize,
    collecting: bool,
}

#[derive(Default, Clone)]
pub struct Gate {
    inner: Arc<(Mutex<State>, Condvar)>,
}

/// An open writer session; the gate counts it until it is dropped. Owned (no borrow of the
/// store), so an async task can hold it across awaits and hand clones to blocking work.
pub struct WriterSession {
    gate: Gate,
}

/// gc's exclusive hold.
pub struct Collecting {
    gate: Gate,
}

impl Gate {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, g: std::sync::MutexGuard<'a, State>) -> std::sync::MutexGuard<'a, State> {
        self.inner.1.wait(g).unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a writer session, waiting while gc runs.
    pub fn writer(&self) -> WriterSession {
        let mut s = self.state();
        while s.collecting {
            s = self.wait(s);
        }
        s.writers += 1;
        WriterSession { gate: self.clone() }
    }

    /// Waits until no writer session is open, then holds every new one off until dropped.
    pub fn collect(&self) -> Collecting {
        let mut s = self.state();
        while s.collecting || s.writers > 0 {
            s = self.wait(s);
        }
        s.collecting = true;
        Collecting { gate: self.clone() }
    }

    /// Writer sessions open now.
    #[cfg(test)]
    fn writers(&self) -> usize {
        self.state().writers
    }
}

impl Drop for WriterSession {
    fn drop(&mut self) {
        let mut s = self.gate.state();
        s.writers -= 1;
        if s.writers == 0 {
            self.gate.inner.1.notify_all();
        }
    }
}

impl Drop for Collecting {
    fn drop(&mut self) {
        self.gate.state().collecting = false;
        self.gate.inner.1.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn nested_writers_do_not_deadlock_behind_a_waiting_gc() {
        let gate = Gate::default();
        let outer = gate.writer();
        let g2 = gate.clone();
        let gc = std::thread::spawn(move || {
            let _c = g2.collect();
        });
        std::thread::sleep(Duration::from_millis(50));
        // gc is waiting for `outer`; a nested session must still open.
        let inner = gate.writer();
        assert_eq!(gate.writers(), 2);
        drop(inner);
        assert!(!gc.is_finished());
        drop(outer);
        gc.join().unwrap();
        assert_eq!(gate.writers(), 0);
    }

    #[test]
    fn writers_wait_while_gc_runs() {
        let gate = Gate::default();
        let c = gate.collect();
        let g2 = gate.clone();
        let w = std::thread::spawn(move || {
            let _w = g2.writer();
        });
        std::thread::sleep(Duration::from_millis(50));
        assert!(!w.is_finished());
        drop(c);
        w.join().unwrap();
    }
}
