//! The deadlines of the pending reviews a node watches (see `gate`): kept in order,
//! in memory only (the reviews themselves are in the store), served by one task.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use facio_services::domain::TenantId;
use facio_services::review::ReviewId;

/// The deadlines of the pending reviews this node watches.
#[derive(Default)]
pub(crate) struct Timers {
    queue: Mutex<Queue>,
    /// Woken when a deadline is added, so the task sleeps until the earliest.
    pub changed: tokio::sync::Notify,
}

#[derive(Default)]
struct Queue {
    by_time: BTreeMap<(DateTime<Utc>, ReviewId), TenantId>,
    by_review: HashMap<ReviewId, DateTime<Utc>>,
}

impl Timers {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Watches `review` of `tenant` until `at` (again, if it was already).
    pub fn arm(&self, tenant: TenantId, review: ReviewId, at: DateTime<Utc>) {
        {
            let mut queue = self.queue();
            if let Some(before) = queue.by_review.insert(review.clone(), at) {
                queue.by_time.remove(&(before, review.clone()));
            }
            queue.by_time.insert((at, review), tenant);
        }
        self.changed.notify_one();
    }

    pub fn armed(&self, review: &ReviewId) -> bool {
        self.queue().by_review.contains_key(review)
    }

    pub fn disarm(&self, review: &ReviewId) {
        let mut queue = self.queue();
        if let Some(at) = queue.by_review.remove(review) {
            queue.by_time.remove(&(at, review.clone()));
        }
    }

    /// Takes out every review whose time is up at `now`.
    pub fn due(&self, now: DateTime<Utc>) -> Vec<(TenantId, ReviewId)> {
        let mut queue = self.queue();
        let mut due = Vec::new();
        while let Some(entry) = queue.by_time.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((_, review), tenant) = entry.remove_entry();
            queue.by_review.remove(&review);
            due.push((tenant, review));
        }
        due
    }

    /// The earliest deadline watched.
    pub fn next(&self) -> Option<DateTime<Utc>> {
        self.queue().by_time.keys().next().map(|(at, _)| *at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(n: u128) -> ReviewId {
        ReviewId::new(format!("rev_{n:032x}")).unwrap()
    }

    #[test]
    fn timers_give_back_due_reviews_in_deadline_order_once() {
        let timers = Timers::default();
        let tenant = TenantId::default_tenant();
        let now = Utc::now();
        let at = |s: i64| now + chrono::Duration::seconds(s);
        timers.arm(tenant.clone(), review(1), at(30));
        timers.arm(tenant.clone(), review(2), at(10));
        timers.arm(tenant.clone(), review(3), at(20));
        // Armed again: only the new deadline counts.
        timers.arm(tenant.clone(), review(3), at(40));
        timers.disarm(&review(2));
        assert!(timers.armed(&review(1)) && !timers.armed(&review(2)));
        assert_eq!(timers.next(), Some(at(30)));
        assert!(timers.due(at(29)).is_empty());
        let due: Vec<ReviewId> = timers.due(at(45)).into_iter().map(|(_, r)| r).collect();
        assert_eq!(due, [review(1), review(3)]);
        assert!(timers.due(at(100)).is_empty(), "each review comes due once");
        assert_eq!(timers.next(), None);
        assert!(!timers.armed(&review(1)));
    }
}
