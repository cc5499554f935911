//! Platform calls in flight: a cap per worker and a cap per channel, with the
//! order kept inside a lane (the posts of one series, the replies of one
//! conversation).

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;

use futures_util::StreamExt;
use nexiom_core::Platform;

/// How many platform calls a worker makes at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConcurrencyConfig {
    /// Calls in flight in one worker, every channel together (default 64).
    pub max_in_flight: usize,
    /// Calls in flight per channel (default 1: one after another).
    pub per_channel: usize,
    /// Per-platform overrides of `per_channel`.
    pub per_platform: HashMap<Platform, usize>,
}

impl Default for ConcurrencyConfig {
    fn default() -> Self {
        ConcurrencyConfig {
            max_in_flight: 64,
            per_channel: 1,
            per_platform: HashMap::new(),
        }
    }
}

impl ConcurrencyConfig {
    /// One call at a time (the behaviour before concurrency existed).
    pub fn sequential() -> Self {
        ConcurrencyConfig {
            max_in_flight: 1,
            ..ConcurrencyConfig::default()
        }
    }

    /// The cap on calls in flight for one channel of `platform` (at least 1).
    pub fn channel_cap(&self, platform: &Platform) -> usize {
        self.per_platform
            .get(platform)
            .copied()
            .unwrap_or(self.per_channel)
            .max(1)
    }

    /// The cap on calls in flight in one worker (at least 1).
    pub fn worker_cap(&self) -> usize {
        self.max_in_flight.max(1)
    }
}

/// Splits `items` into lanes by `key`, keeping the given order inside each
/// lane; lanes come out in the order of their first item.
pub(crate) fn lanes<T, K: Eq + Hash>(items: Vec<T>, key: impl Fn(&T) -> K) -> Vec<Vec<T>> {
    let mut index: HashMap<K, usize> = HashMap::new();
    let mut lanes: Vec<Vec<T>> = Vec::new();
    for item in items {
        let k = key(&item);
        match index.get(&k) {
            Some(&i) => lanes[i].push(item),
            None => {
                index.insert(k, lanes.len());
                lanes.push(vec![item]);
            }
        }
    }
    lanes
}

/// Runs `lane` over each lane, at most `cap` lanes at once (so at most `cap`
/// calls in flight when a lane makes one call at a time), and waits for all.
pub(crate) async fn for_each_lane<T, F, Fut>(lanes: Vec<Vec<T>>, cap: usize, lane: F)
where
    F: Fn(Vec<T>) -> Fut,
    Fut: Future<Output = ()>,
{
    futures_util::stream::iter(lanes)
        .for_each_concurrent(cap.max(1), lane)
        .await;
}

/// The sub-lane of an item within its channel when `cap` calls may be in
/// flight there: items of one `ordered` group (a series, a conversation) share
/// a sub-lane so that they stay in order; others are spread round-robin.
pub(crate) fn sub_lane(cap: usize, ordered: Option<u128>, round_robin: &mut usize) -> usize {
    let cap = cap.max(1);
    match ordered {
        Some(group) => usize::try_from(group % cap as u128).unwrap_or(0),
        None => {
            *round_robin = round_robin.wrapping_add(1);
            *round_robin % cap
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_keep_order_and_first_seen_lane_order() {
        let items = vec![(1, 'a'), (2, 'b'), (1, 'c'), (3, 'd'), (2, 'e')];
        let got = lanes(items, |(k, _)| *k);
        let got: Vec<String> = got
            .into_iter()
            .map(|lane| lane.into_iter().map(|(_, c)| c).collect())
            .collect();
        assert_eq!(got, vec!["ac", "be", "d"]);
    }

    #[test]
    fn channel_cap_uses_the_platform_override_and_is_never_zero() {
        let mut config = ConcurrencyConfig::default();
        assert_eq!(config.channel_cap(&Platform::Facebook), 1);
        config.per_platform.insert(Platform::Facebook, 4);
        config.per_platform.insert(Platform::LinkedIn, 0);
        assert_eq!(config.channel_cap(&Platform::Facebook), 4);
        assert_eq!(config.channel_cap(&Platform::LinkedIn), 1);
        assert_eq!(config.channel_cap(&Platform::Instagram), 1);
    }

    #[test]
    fn an_ordered_group_stays_in_one_sub_lane() {
        let mut rr = 0;
        let a = sub_lane(4, Some(77), &mut rr);
        for _ in 0..10 {
            assert_eq!(sub_lane(4, Some(77), &mut rr), a);
        }
        let spread: std::collections::HashSet<usize> =
            (0..8).map(|_| sub_lane(4, None, &mut rr)).collect();
        assert_eq!(spread.len(), 4);
    }

    #[tokio::test]
    async fn no_more_lanes_than_the_cap_run_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let now = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let lanes: Vec<Vec<u32>> = (0..20).map(|i| vec![i, i + 100]).collect();
        for_each_lane(lanes, 3, |lane| {
            let (now, peak) = (&now, &peak);
            async move {
                for _ in lane {
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    now.fetch_sub(1, Ordering::SeqCst);
                }
            }
        })
        .await;
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    }
}
