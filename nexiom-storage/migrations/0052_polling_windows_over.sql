-- Comment polling now claims a post until its window is read to its end
-- (`last_check_at < stop_at`) rather than only before `stop_at`, so that the
-- last check, at `stop_at`, reads the window's last minutes. Posts whose
-- window is already over when this runs end as the earlier rule left them:
-- never checked again (a broadcast, settled with `next_check_at = stop_at`,
-- or a post whose checks stopped while its channel was paused).

UPDATE scheduled_posts SET next_check_at = NULL
WHERE next_check_at IS NOT NULL AND stop_at IS NOT NULL AND stop_at <= now();
