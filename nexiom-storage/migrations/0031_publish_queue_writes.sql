-- Publishing at database speed: fewer index entries and triggers per claimed
-- and settled post.
--
-- A post is written twice by the publish queue: the claim (`queued` to
-- `publishing`, with its lease) and the settlement. Both change `status`,
-- which the partial indexes' predicates read, so neither update can be HOT:
-- each writes a new entry into every index whose predicate the new row
-- satisfies, and the run insert between them fires one trigger per foreign
-- key and row.

-- Occurrences of a series are unique by (series, occurrence); every other
-- post has no series and needs no entry (NULLs never conflicted anyway). The
-- series insert names the predicate in its `ON CONFLICT`.
ALTER TABLE scheduled_posts DROP CONSTRAINT uq_scheduled_posts_occurrence;
CREATE UNIQUE INDEX uq_scheduled_posts_occurrence ON scheduled_posts (series_id, occurrence_at)
    WHERE series_id IS NOT NULL;

-- One index of the posts being published serves both of its readers: the
-- claim's "channels another worker is publishing on" (leases not expired)
-- and the release of expired leases. It replaces two, so a claim writes one
-- entry here instead of two.
DROP INDEX ix_scheduled_posts_publishing_channel;
DROP INDEX ix_scheduled_posts_leases;
CREATE INDEX ix_scheduled_posts_leases ON scheduled_posts (lease_expires_at)
    INCLUDE (channel_id, lease_owner)
    WHERE status = 'publishing';

-- A run is inserted `running` and updated once when it ends; the columns that
-- change are in no index, so with room on its page the update is HOT (no
-- new index entries).
ALTER TABLE post_runs SET (fillfactor = 80);

-- A run's post is checked by the inserting statements themselves
-- (`insert_post_run`, and the batched `insert_post_runs`, which also requires
-- the post to be `publishing` under the writer's unexpired lease): a row
-- naming no post of its tenant is not inserted and is answered
-- `UnknownReference`, as the keys answered before. Posts are never deleted,
-- so the check cannot be invalidated after the insert. The keys ran two
-- triggers per run, and the post's took a share lock on the post row: one
-- more heap write (and WAL record) per run, just before the settlement
-- rewrites that row anyway. The tenant's key was implied (a post belongs to a
-- stored tenant).
ALTER TABLE post_runs DROP CONSTRAINT fk_post_runs_post;
ALTER TABLE post_runs DROP CONSTRAINT fk_post_runs_tenant;
