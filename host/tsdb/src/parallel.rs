//! Splitting a large piece of query work over the machine's cores.
//!
//! A query reads and decodes each selected series on its own, so a large selection can
//! be cut into contiguous parts that threads handle side by side and whose results
//! are joined in order. Threads are scoped to the call and bounded ([`threads`]); small
//! selections stay on the calling thread, where spawning would cost more than it saves.

use std::sync::OnceLock;

/// The most threads one call uses: the machine's cores, at most 2. Prometheus
/// evaluates a query on one goroutine; two threads already halve what dominates a
/// large selection, while leaving the rest of the machine to other queries. The
/// environment variable `PHAROS_QUERY_THREADS` lowers it (1: no parallel parts, e.g. to
/// count a query's instructions in one thread).
pub fn threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 2);
        std::env::var("PHAROS_QUERY_THREADS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .map_or(cores, |n| n.clamp(1, cores))
    })
}

/// `f` over contiguous parts of `items`, in order: one part (on the calling thread)
/// when there are fewer than `min_per_thread` items per thread, else one per thread.
pub fn split<T: Sync, R: Send>(
    items: &[T],
    min_per_thread: usize,
    f: impl Fn(&[T]) -> R + Sync,
) -> Vec<R> {
    let n = threads().min(items.len() / min_per_thread.max(1)).max(1);
    if n == 1 {
        return vec![f(items)];
    }
    let per = items.len().div_ceil(n);
    std::thread::scope(|scope| {
        let f = &f;
        let mut parts = items.chunks(per);
        let first = parts.next().unwrap_or(&[]);
        let handles: Vec<_> = parts.map(|p| scope.spawn(move || f(p))).collect();
        let mut out = Vec::with_capacity(n);
        out.push(f(first));
        for h in handles {
            match h.join() {
                Ok(r) => out.push(r),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

/// [`split`] over owned items, each part handed to `f` by value.
pub fn split_owned<T: Send, R: Send>(
    mut items: Vec<T>,
    min_per_thread: usize,
    f: impl Fn(Vec<T>) -> R + Sync,
) -> Vec<R> {
    let n = threads().min(items.len() / min_per_thread.max(1)).max(1);
    if n == 1 {
        return vec![f(items)];
    }
    let per = items.len().div_ceil(n);
    let mut parts = Vec::with_capacity(n);
    while items.len() > per {
        let rest = items.split_off(per);
        parts.push(std::mem::replace(&mut items, rest));
    }
    parts.push(items);
    std::thread::scope(|scope| {
        let f = &f;
        let mut parts = parts.into_iter();
        let first = parts.next().unwrap_or_default();
        let handles: Vec<_> = parts.map(|p| scope.spawn(move || f(p))).collect();
        let mut out = Vec::with_capacity(n);
        out.push(f(first));
        for h in handles {
            match h.join() {
                Ok(r) => out.push(r),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_joined_in_order() {
        let items: Vec<u32> = (0..10_000).collect();
        let parts = split(&items, 1_000, <[u32]>::to_vec);
        assert_eq!(parts.concat(), items);
        let parts = split_owned(items.clone(), 1_000, |v| v);
        assert_eq!(parts.concat(), items);
        assert_eq!(split(&items, 100_000, <[u32]>::len), vec![10_000]);
        assert_eq!(split_owned(Vec::<u32>::new(), 1, |v| v.len()), vec![0]);
    }
}
