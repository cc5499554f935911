//! The transaction locks that writers of messages take before checking a
//! message's keys: messages are partitioned by month, and a unique key holds
//! the month, so the check is the key's guard.

/// The transaction lock of a message key (the tenant's provider id): taken
/// by every writer that checks the key before inserting (messages are
/// partitioned by month and their unique key holds the month).
pub(super) fn message_key_lock(tenant: uuid::Uuid, provider_message_id: &str) -> String {
    format!("nexiom.message:{tenant}:{provider_message_id}")
}

/// The transaction lock of "the reply to `answered`": taken by every writer
/// of an outbound reply before it checks that none is stored.
pub(super) fn reply_lock(answered: uuid::Uuid) -> String {
    format!("nexiom.reply:{answered}")
}

/// Takes the transaction locks `keys`, in their order (callers list them in
/// one order: message keys, then replies, each sorted).
pub(super) async fn lock_keys(
    conn: &mut sqlx::PgConnection,
    keys: &[String],
) -> std::result::Result<(), sqlx::Error> {
    if keys.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) \
         FROM unnest($1::text[]) WITH ORDINALITY AS u(k, n) ORDER BY n",
    )
    .bind(keys)
    .execute(conn)
    .await?;
    Ok(())
}
