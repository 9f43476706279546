//! A background producer feeding a bounded channel: item `i` of `0..n` is made on a worker
//! thread while the consumer works on earlier ones, at most `depth` items ahead. Dropping the
//! iterator stops the producer at its next send, so an abandoned epoch costs nothing.

use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver};

use crate::error::Result;

/// Iterator over items produced in order on a background thread.
pub struct Prefetch<T> {
    rx: Option<Receiver<Result<T>>>,
    worker: Option<JoinHandle<()>>,
}

impl<T: Send + 'static> Prefetch<T> {
    /// Produces `make(i)` for `i in 0..n` on a new thread, up to `depth` (>= 1) items ahead.
    /// Stops after the first error, which is yielded like any item.
    pub fn spawn(depth: usize, n: usize, mut make: impl FnMut(usize) -> Result<T> + Send + 'static) -> Self {
        let (tx, rx) = bounded(depth.max(1));
        let worker = std::thread::Builder::new()
            .name("arcface-data-prefetch".into())
            .spawn(move || {
                for i in 0..n {
                    let item = make(i);
                    let failed = item.is_err();
                    if tx.send(item).is_err() || failed {
                        break;
                    }
                }
            })
            .ok();
        // Spawning only fails when the OS is out of threads; degrade to an empty iterator
        // would hide that, so report it through the channel instead.
        if worker.is_none() {
            let (tx, rx) = bounded(1);
            let _ = tx.send(Err(crate::error::DataError::Config("cannot spawn a prefetch thread".into())));
            return Prefetch { rx: Some(rx), worker: None };
        }
        Prefetch { rx: Some(rx), worker }
    }
}

impl<T> Iterator for Prefetch<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        self.rx.as_ref()?.recv().ok()
    }
}

impl<T> Drop for Prefetch<T> {
    fn drop(&mut self) {
        // Disconnect first so a producer blocked on a full channel wakes up and exits.
        self.rx = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DataError;

    #[test]
    fn yields_in_order_and_stops_after_error() {
        let v: Vec<usize> = Prefetch::spawn(2, 5, |i| Ok(i * 10)).map(|r| r.unwrap()).collect();
        assert_eq!(v, vec![0, 10, 20, 30, 40]);
        let r: Vec<_> = Prefetch::spawn(1, 5, |i| if i == 2 { Err(DataError::Config("boom".into())) } else { Ok(i) }).collect();
        assert_eq!(r.len(), 3);
        assert!(r[2].is_err());
    }

    #[test]
    fn dropping_early_does_not_hang() {
        let mut it = Prefetch::spawn(1, 1_000_000, Ok);
        assert_eq!(it.next().unwrap().unwrap(), 0);
        drop(it);
    }
}
