-- Slots of wall-clock worker schedules, claimed by one process each.
--
-- Every worker process runs a `WorkerRuntime`, and a worker on a cron
-- schedule (the daily topic run, the weekly cleanup) fell due in all of them
-- at the same slot: several processes sharing one database ran it each, so
-- a topic run made its topics once per process and paid for the embeddings
-- as many times. Before a scheduled run a process now inserts the slot here;
-- the one whose insert takes the row runs it, the others skip it.
--
-- No tenant: these rows are process-wide, like `worker_flags` and
-- `task_executions` (both application roles may read and write them). Rows
-- go with the execution logs of their time (`delete_executions_before`).

CREATE TABLE worker_slots (
    worker_name TEXT        NOT NULL,
    slot        TIMESTAMPTZ NOT NULL,
    claimed_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT pk_worker_slots PRIMARY KEY (worker_name, slot)
);
CREATE INDEX ix_worker_slots_slot ON worker_slots (slot);

SELECT nexiom_secure_tables();
