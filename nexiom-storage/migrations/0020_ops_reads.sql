-- Operator reads: the health check tells whether the schema is current by
-- reading the migrations table, also when connected as the application's or
-- the workers' role.
GRANT SELECT ON _sqlx_migrations TO nexiom_app, nexiom_worker;
