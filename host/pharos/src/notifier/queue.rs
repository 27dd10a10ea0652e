//! The seam between what raises alerts (rule evaluation) and what delivers them (the
//! notifier component): a bounded queue in [`Context`](crate::component::Context).
//!
//! Rule groups push every alert they want delivered, each evaluation; the notifier
//! drains the queue in batches and posts them to every configured router. Neither
//! side waits for the other. When routers are slow or down the queue fills, and the
//! oldest alerts are dropped and counted, as Prometheus's notifier does: newer states
//! of the same alerts are on their way, and rule evaluation must never block on a
//! router.

use pharos_model::Labels;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use tokio::sync::Notify;

/// Prometheus's `--alertmanager.notification-queue-capacity` default.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// An alert as the Alertmanager v2 API receives it (`PostableAlert`). Times are ms
/// since the epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub labels: Labels,
    pub annotations: Labels,
    pub starts_at: i64,
    /// When the alert stops being valid unless re-sent: in the future for a firing
    /// alert, the resolve time for a resolved one.
    pub ends_at: i64,
    pub generator_url: String,
}

/// The alerts waiting to be sent.
pub struct AlertQueue {
    alerts: Mutex<VecDeque<Alert>>,
    capacity: AtomicUsize,
    dropped: AtomicU64,
    ready: Notify,
}

impl Default for AlertQueue {
    fn default() -> AlertQueue {
        AlertQueue::new(DEFAULT_CAPACITY)
    }
}

impl AlertQueue {
    pub fn new(capacity: usize) -> AlertQueue {
        AlertQueue {
            alerts: Mutex::new(VecDeque::new()),
            capacity: AtomicUsize::new(capacity.max(1)),
            dropped: AtomicU64::new(0),
            ready: Notify::new(),
        }
    }

    /// Queues `alerts` for delivery, dropping the oldest queued ones (and, when the
    /// batch alone exceeds the capacity, its first ones) to stay within capacity.
    pub fn push(&self, alerts: Vec<Alert>) {
        if alerts.is_empty() {
            return;
        }
        let cap = self.capacity.load(Ordering::Relaxed);
        let mut q = self.alerts.lock().unwrap_or_else(PoisonError::into_inner);
        let mut dropped = 0u64;
        let skip = alerts.len().saturating_sub(cap);
        dropped += skip as u64;
        let incoming = alerts.into_iter().skip(skip);
        let overflow = (q.len() + incoming.len()).saturating_sub(cap);
        let queued = q.len();
        q.drain(..overflow.min(queued));
        dropped += overflow as u64;
        q.extend(incoming);
        drop(q);
        if dropped > 0 {
            self.dropped.fetch_add(dropped, Ordering::Relaxed);
        }
        self.ready.notify_one();
    }

    /// Takes up to `max` alerts, oldest first.
    pub fn take(&self, max: usize) -> Vec<Alert> {
        let mut q = self.alerts.lock().unwrap_or_else(PoisonError::into_inner);
        let n = max.min(q.len());
        q.drain(..n).collect()
    }

    /// Waits until alerts may be waiting (a push happened since the last wait).
    pub async fn ready(&self) {
        self.ready.notified().await;
    }

    /// Alerts waiting now.
    pub fn len(&self) -> usize {
        self.alerts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity.load(Ordering::Relaxed)
    }

    /// Sets the capacity (from configuration); takes effect at the next push.
    pub fn set_capacity(&self, capacity: usize) {
        self.capacity.store(capacity.max(1), Ordering::Relaxed);
    }

    /// Alerts dropped because the queue was full, since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(n: usize) -> Alert {
        Alert {
            labels: Labels::from_pairs([("alertname", n.to_string())]),
            annotations: Labels::default(),
            starts_at: 0,
            ends_at: 0,
            generator_url: String::new(),
        }
    }

    fn names(v: &[Alert]) -> Vec<String> {
        v.iter()
            .map(|a| a.labels.get("alertname").unwrap_or("").to_string())
            .collect()
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_counts_them() {
        let q = AlertQueue::new(3);
        q.push((0..2).map(alert).collect());
        q.push((2..4).map(alert).collect());
        assert_eq!(q.len(), 3);
        assert_eq!(q.dropped(), 1);
        // A batch larger than the capacity keeps its newest alerts.
        q.push((4..9).map(alert).collect());
        assert_eq!(q.dropped(), 1 + 3 + 2);
        assert_eq!(names(&q.take(10)), ["6", "7", "8"]);
        assert!(q.is_empty());
    }

    #[test]
    fn take_returns_the_oldest_first_in_batches() {
        let q = AlertQueue::new(100);
        q.push((0..5).map(alert).collect());
        assert_eq!(names(&q.take(2)), ["0", "1"]);
        assert_eq!(names(&q.take(10)), ["2", "3", "4"]);
        assert!(q.take(10).is_empty());
    }

    #[tokio::test]
    async fn a_push_wakes_the_sender() {
        let q = std::sync::Arc::new(AlertQueue::new(10));
        let waiter = {
            let q = q.clone();
            tokio::spawn(async move {
                q.ready().await;
                q.take(10).len()
            })
        };
        q.push(vec![alert(1)]);
        assert_eq!(waiter.await.ok(), Some(1));
    }
}
