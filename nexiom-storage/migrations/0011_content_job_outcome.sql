-- Nexiom storage schema: a content job follows its post (issue 14).
--
-- When the publishing worker settles a post for good, the post's content job
-- (still `scheduled` with that post) becomes `published` with the platform's
-- post id and the publication time, or `failed` with the reason, in the same
-- statement as the settlement. The job is found by the post's
-- `content_job_id`, a primary-key lookup: no index is needed.
ALTER TABLE content_jobs
    ADD COLUMN platform_post_id TEXT,
    ADD COLUMN published_at     TIMESTAMPTZ,
    ADD COLUMN error_message    TEXT;
