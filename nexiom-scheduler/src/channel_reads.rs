//! The channels a batch works on, read in one statement per tenant.

use std::collections::HashMap;

use futures_util::StreamExt;
use nexiom_core::{Channel, ChannelId, Platform, TenantId};
use nexiom_storage::Store;
use tracing::warn;

/// Tenants whose channels are read at once.
const TENANTS_AT_ONCE: usize = 8;

/// The channels of `keys` (duplicates allowed), read with
/// [`TenantStore::get_channels`](nexiom_storage::TenantStore::get_channels):
/// one statement per tenant, [`TENANTS_AT_ONCE`] tenants at a time. A
/// channel that cannot be read (its tenant's read failed, or the store left
/// it out) is not in the answer: the caller's work on it meets the error
/// when it reads that channel on its own.
pub(crate) async fn read_channels(
    store: &dyn Store,
    keys: impl IntoIterator<Item = (TenantId, ChannelId)>,
) -> HashMap<(TenantId, ChannelId), Channel> {
    let mut by_tenant: HashMap<TenantId, Vec<ChannelId>> = HashMap::new();
    for (tenant, channel) in keys {
        by_tenant.entry(tenant).or_default().push(channel);
    }
    let reads: Vec<_> = futures_util::stream::iter(by_tenant)
        .map(|(tenant, mut ids)| async move {
            ids.sort_unstable();
            ids.dedup();
            let read = store.get_channels(tenant, &ids).await;
            (tenant, ids.len(), read)
        })
        .buffer_unordered(TENANTS_AT_ONCE)
        .collect()
        .await;
    let mut found = HashMap::new();
    for (tenant, asked, read) in reads {
        match read {
            Ok(read) => {
                for channel in read {
                    found.insert((tenant, channel.id), channel);
                }
            }
            Err(err) => {
                warn!(error = %err, %tenant, channels = asked, "reading a batch's channels failed");
            }
        }
    }
    found
}

/// The channels of `keys` by id, as [`read_channels`] reads them, with each
/// one's cap of calls at once (`cap` of its platform). A channel missing from
/// the answer has no cap here: the caller gives it 1.
pub(crate) async fn channels_and_caps(
    store: &dyn Store,
    keys: impl IntoIterator<Item = (TenantId, ChannelId)>,
    cap: impl Fn(&Platform) -> usize,
) -> (HashMap<ChannelId, Channel>, HashMap<ChannelId, usize>) {
    let channels: HashMap<ChannelId, Channel> = read_channels(store, keys)
        .await
        .into_iter()
        .map(|((_, id), channel)| (id, channel))
        .collect();
    let caps = channels
        .iter()
        .map(|(id, channel)| (*id, cap(&channel.platform)))
        .collect();
    (channels, caps)
}
