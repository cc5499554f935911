-- Mission orchestration (issue 7).
--
-- `orchestration_snapshot` reads, for one channel, the oldest ready jobs of each
-- (mission, phase). Ready jobs are the small, hot part of content_jobs: a partial
-- index in that exact order lets the window function read them without sorting
-- and without touching scheduled or published jobs.
CREATE INDEX ix_content_jobs_ready ON content_jobs
    (tenant_id, channel_id, mission_id, phase, created_at, id)
    WHERE status = 'ready';

-- Missions of a channel whose dates overlap the planned dates.
CREATE INDEX ix_missions_channel_dates ON missions
    (tenant_id, channel_id, start_date, end_date);
