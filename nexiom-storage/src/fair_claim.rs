//! Claims shared among channels, the same logic on every backend: the reply
//! queue's ([`ReplyQueueStore::claim_pending_replies`]) and the publish
//! queue's ([`PostStore::claim_due_posts`]). One channel's backlog must not
//! hold every other channel's items behind it.
//!
//! [`ReplyQueueStore::claim_pending_replies`]: crate::ReplyQueueStore::claim_pending_replies
//! [`PostStore::claim_due_posts`]: crate::PostStore::claim_due_posts

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use nexiom_core::ChannelId;
use uuid::Uuid;

/// A due item's place in the queue as a claim weighs it: its channel, then
/// its age (`at`, then id): a reply's `created_at`, a post's `publish_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueuePlace {
    pub(crate) channel: ChannelId,
    pub(crate) at: DateTime<Utc>,
    pub(crate) id: Uuid,
}

/// A place's age: its time (`at`), then its id.
type Age = (DateTime<Utc>, Uuid);

impl QueuePlace {
    fn age(&self) -> Age {
        (self.at, self.id)
    }
}

/// The channels a claim of `limit` items shares them among (see
/// [`ReplyQueueStore::claim_pending_replies`](crate::ReplyQueueStore::claim_pending_replies),
/// [`PostStore::claim_due_posts`](crate::PostStore::claim_due_posts)), and each one's first
/// share.
/// `heads` holds each channel's oldest due item (a channel may come twice,
/// once per kind of item). The channels taking part are the `limit` whose
/// oldest due item is oldest; the share is `⌈limit / channels⌉`.
pub(crate) fn fair_channels(heads: &[QueuePlace], limit: u32) -> (Vec<ChannelId>, u32) {
    let mut oldest: HashMap<ChannelId, QueuePlace> = HashMap::new();
    for head in heads {
        let kept = oldest.entry(head.channel).or_insert(*head);
        if head.age() < kept.age() {
            *kept = *head;
        }
    }
    let mut heads: Vec<QueuePlace> = oldest.into_values().collect();
    heads.sort_by_key(|h| (h.age(), h.channel));
    heads.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let taking = u32::try_from(heads.len()).unwrap_or(u32::MAX).max(1);
    (
        heads.into_iter().map(|h| h.channel).collect(),
        limit.div_ceil(taking),
    )
}

/// Of `candidates` (due items read from the channels [`fair_channels`]
/// chose), the claimed ones, round-robin among channels: every channel's
/// oldest item, then every channel's second oldest, and so on, each turn
/// oldest first, until `limit`; returned oldest first. No channel read is
/// left out while another takes its second item.
pub(crate) fn fair_pick<T>(
    mut candidates: Vec<(QueuePlace, T)>,
    limit: u32,
) -> Vec<(QueuePlace, T)> {
    candidates.sort_by_key(|(p, _)| p.age());
    let mut taken: HashMap<ChannelId, usize> = HashMap::new();
    let mut ranked: Vec<(usize, (QueuePlace, T))> = candidates
        .into_iter()
        .map(|item| {
            let n = taken.entry(item.0.channel).or_insert(0);
            *n += 1;
            (*n, item)
        })
        .collect();
    ranked.sort_by_key(|(rank, (p, _))| (*rank, p.age()));
    ranked.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let mut picked: Vec<(QueuePlace, T)> = ranked.into_iter().map(|(_, item)| item).collect();
    picked.sort_by_key(|(p, _)| p.age());
    picked
}

/// The most rounds a claim reads (see [`FairRounds`]): each round is a
/// statement per kind of item on Postgres, and a claim that comes back short
/// is made up by the next one.
const MAX_ROUNDS: u32 = 4;

/// One kind of item of one channel, read from after `after` (its last item
/// read). A queue has at most two kinds (`kind`): the reply queue's messages
/// (`true`) and comments (`false`); the publish queue's posts are one kind
/// (`true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lane {
    pub(crate) kind: bool,
    pub(crate) channel: ChannelId,
    pub(crate) after: Option<(DateTime<Utc>, Uuid)>,
}

/// The reads of a claim shared among channels, the same logic on every
/// backend:
/// each round reads up to `share` more due items of every lane that filled
/// its share last round, oldest first, until the items read reach the
/// claim's `limit`, no lane has more, or [`MAX_ROUNDS`]; the claimed ones
/// are then [`fair_pick`]ed from what was read.
#[derive(Debug)]
pub(crate) struct FairRounds {
    limit: u32,
    share: u32,
    rounds: u32,
    open: Vec<Lane>,
    read: Vec<(QueuePlace, bool)>,
}

impl FairRounds {
    /// The rounds of a claim of `limit` items, given each channel's oldest
    /// due item of each kind (`heads`; for replies, `true` for a message):
    /// among the channels [`fair_channels`] chooses, a lane is read for each
    /// kind of item the channel has due.
    pub(crate) fn new(heads: &[(QueuePlace, bool)], limit: u32) -> Self {
        let places: Vec<QueuePlace> = heads.iter().map(|(p, _)| *p).collect();
        let (channels, share) = fair_channels(&places, limit);
        let due: std::collections::HashSet<(bool, ChannelId)> =
            heads.iter().map(|(p, kind)| (*kind, p.channel)).collect();
        let open = channels
            .iter()
            .flat_map(|&channel| {
                [true, false].map(|kind| Lane {
                    kind,
                    channel,
                    after: None,
                })
            })
            .filter(|lane| due.contains(&(lane.kind, lane.channel)))
            .collect();
        FairRounds {
            limit,
            share: share.max(1),
            rounds: 0,
            open,
            read: Vec::new(),
        }
    }

    /// The next round's share per lane and its lanes; `None` when the reads
    /// are done.
    pub(crate) fn next(&self) -> Option<(u32, Vec<Lane>)> {
        let enough = self.read.len() >= usize::try_from(self.limit).unwrap_or(usize::MAX);
        if enough || self.open.is_empty() || self.rounds >= MAX_ROUNDS {
            return None;
        }
        Some((self.share, self.open.clone()))
    }

    /// Records a round's reads (the due items each lane gave, oldest first
    /// within a lane): a lane that gave its whole share stays open from its
    /// last item; the next share splits what the claim still lacks among
    /// the open lanes.
    pub(crate) fn record(&mut self, read: Vec<(QueuePlace, bool)>) {
        // Per lane: how many items it gave, and its last.
        let mut last: HashMap<(bool, ChannelId), (u32, Age)> = HashMap::new();
        for (place, kind) in &read {
            let entry = last
                .entry((*kind, place.channel))
                .or_insert((0, place.age()));
            entry.0 += 1;
            entry.1 = entry.1.max(place.age());
        }
        let share = self.share;
        self.open
            .retain_mut(|lane| match last.get(&(lane.kind, lane.channel)) {
                Some(&(n, after)) if n >= share => {
                    lane.after = Some(after);
                    true
                }
                _ => false,
            });
        self.read.extend(read);
        self.rounds += 1;
        let read = u32::try_from(self.read.len()).unwrap_or(u32::MAX);
        let lanes = u32::try_from(self.open.len()).unwrap_or(u32::MAX).max(1);
        self.share = self.limit.saturating_sub(read).div_ceil(lanes).max(1);
    }

    /// The claimed items, oldest first ([`fair_pick`] of the reads).
    pub(crate) fn finish(self) -> Vec<(QueuePlace, bool)> {
        fair_pick(self.read, self.limit)
    }
}

/// How many of a claim's posts one channel may take before the publish
/// queue's claim is shared among channels (see [`one_channel_crowds`]).
/// A channel's posts are published one after another (one call in flight
/// per channel by default), so more of them in a batch hold the batch, and
/// every channel left out of it, for as many calls.
pub(crate) const POSTS_BEFORE_SHARING: usize = 4;

/// Whether a publish claim's oldest due posts (`oldest`, at most `limit`,
/// oldest first) crowd the others out: the claim is full and gives one
/// channel more than [`most_before_sharing`] posts. Then other channels may have due posts the
/// claim leaves behind, and it is shared among the channels instead
/// ([`FairRounds`]). A claim that is not full took every due post it may
/// take.
pub(crate) fn one_channel_crowds(oldest: &[QueuePlace], limit: u32) -> bool {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if oldest.is_empty() || oldest.len() < limit {
        return false;
    }
    let most = most_before_sharing(limit);
    let mut per_channel: HashMap<ChannelId, usize> = HashMap::new();
    oldest.iter().any(|place| {
        let n = per_channel.entry(place.channel).or_insert(0);
        *n += 1;
        *n > most
    })
}

/// The most posts of one channel a full publish claim of `limit` takes
/// before it is shared: [`POSTS_BEFORE_SHARING`], or all but one in a claim
/// of 2 to 4 posts. A claim of one post is never shared: its one post would
/// be the oldest due channel's oldest either way.
pub(crate) fn most_before_sharing(limit: usize) -> usize {
    POSTS_BEFORE_SHARING.min(limit.saturating_sub(1)).max(1)
}

/// A shared publish claim's ids: the posts [`FairRounds`] picked, then, when
/// its rounds ran out before the claim was full (a channel's share read
/// short, [`MAX_ROUNDS`]), the oldest due posts not picked yet (`oldest`,
/// read and held by the claim already) up to `limit`. A channel's picked
/// posts are its oldest, so what is added follows them in its order. A
/// publish claim that comes back short ends its worker's run, which would
/// leave due posts for the next one.
pub(crate) fn filled_from_oldest(
    picked: Vec<QueuePlace>,
    oldest: &[QueuePlace],
    limit: u32,
) -> Vec<Uuid> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut ids: Vec<Uuid> = picked.iter().map(|p| p.id).collect();
    let taken: std::collections::HashSet<Uuid> = ids.iter().copied().collect();
    let room = limit.saturating_sub(ids.len());
    ids.extend(
        oldest
            .iter()
            .filter(|p| !taken.contains(&p.id))
            .take(room)
            .map(|p| p.id),
    );
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(channel: u128, at: i64, id: u128) -> QueuePlace {
        QueuePlace {
            channel: ChannelId::from_uuid(Uuid::from_u128(channel)),
            at: DateTime::from_timestamp(at, 0).unwrap(),
            id: Uuid::from_u128(id),
        }
    }

    #[test]
    fn a_channels_backlog_shares_the_claim_with_the_others() {
        // Channel 1 has 10 items, older than channel 2's 2.
        let mut items: Vec<(QueuePlace, ())> =
            (0..10).map(|i| (place(1, i, i as u128), ())).collect();
        items.extend((0..2).map(|i| (place(2, 100 + i, 100 + i as u128), ())));
        let heads = [place(1, 0, 0), place(2, 100, 100), place(2, 200, 7)];
        let (channels, share) = fair_channels(&heads, 6);
        assert_eq!((channels.len(), share), (2, 3));
        let per = |picked: &[(QueuePlace, ())]| -> Vec<u128> {
            picked
                .iter()
                .map(|(p, _)| p.channel.as_uuid().as_u128())
                .collect()
        };
        // Channel 2's unused share goes to channel 1.
        assert_eq!(per(&fair_pick(items.clone(), 6)), vec![1, 1, 1, 1, 2, 2]);
        assert_eq!(per(&fair_pick(items, 2)), vec![1, 2], "one each first");
    }

    #[test]
    fn no_channel_taking_part_is_left_out() {
        // Limit 5 over channels of 2, 2, 2 and 1 items: every channel gets
        // its oldest before any gets its second.
        let mut items = Vec::new();
        for c in 0..3u128 {
            for i in 0..2 {
                items.push((place(c, (c * 10) as i64 + i, c * 10 + i as u128), ()));
            }
        }
        items.push((place(3, 50, 50), ()));
        let picked = fair_pick(items, 5);
        let mut channels: Vec<u128> = picked
            .iter()
            .map(|(p, _)| p.channel.as_uuid().as_u128())
            .collect();
        assert_eq!(channels.len(), 5);
        channels.dedup();
        assert_eq!(channels, vec![0, 1, 2, 3], "oldest first, channel 0 twice");
        let heads: Vec<QueuePlace> = (0..5).map(|c| place(c, 10 - c as i64, c)).collect();
        let (channels, share) = fair_channels(&heads, 3);
        assert_eq!(share, 1);
        let ids: Vec<u128> = channels.iter().map(|c| c.as_uuid().as_u128()).collect();
        assert_eq!(ids, vec![4, 3, 2], "the channels with the oldest heads");
        assert_eq!(fair_channels(&[], 10), (Vec::new(), 10));
    }

    #[test]
    fn a_full_claim_is_shared_only_when_one_channel_crowds_it() {
        let crowded: Vec<QueuePlace> = (0..6).map(|i| place(1, i, i as u128)).collect();
        assert!(one_channel_crowds(&crowded, 6));
        assert!(
            !one_channel_crowds(&crowded, 7),
            "not full: every due post taken"
        );
        // A claim of 2 to 4 is crowded when one channel takes it whole; a
        // claim of 1 never is.
        assert!(!one_channel_crowds(&crowded[..1], 1));
        for limit in 2..=4u32 {
            let n = limit as usize;
            assert!(one_channel_crowds(&crowded[..n], limit), "limit {limit}");
            let mut two = crowded[..n].to_vec();
            two[n - 1] = place(2, 9, 99);
            assert!(!one_channel_crowds(&two, limit), "limit {limit}");
        }
        let mixed: Vec<QueuePlace> = (0..8u32)
            .map(|i| place(u128::from(i % 2 == 0), i64::from(i), u128::from(i)))
            .collect();
        assert!(!one_channel_crowds(&mixed, 8), "4 posts each");
        assert!(!one_channel_crowds(&[], 0));
    }

    #[test]
    fn a_short_shared_claim_is_filled_from_the_oldest() {
        let oldest: Vec<QueuePlace> = (0..5).map(|i| place(1, i, i as u128)).collect();
        let picked = vec![place(1, 0, 0), place(2, 50, 50)];
        let ids: Vec<u128> = filled_from_oldest(picked, &oldest, 4)
            .into_iter()
            .map(|id| id.as_u128())
            .collect();
        assert_eq!(ids, vec![0, 50, 1, 2], "channel 1's next posts, in order");
        let full = vec![place(1, 0, 0), place(2, 50, 50)];
        assert_eq!(filled_from_oldest(full, &oldest, 2).len(), 2);
    }
}
