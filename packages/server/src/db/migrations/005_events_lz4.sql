-- Faster TOAST compression for the large event columns (the verbatim source record is most
-- of an upload's bytes): lz4 compresses several times faster than the default pglz at a
-- similar ratio. Applies to rows written from now on; existing rows stay readable as they
-- are. PostgreSQL builds without lz4 (and PGlite) keep pglz: the error is swallowed.
DO $$
BEGIN
  ALTER TABLE events
    ALTER COLUMN raw SET COMPRESSION lz4,
    ALTER COLUMN text SET COMPRESSION lz4,
    ALTER COLUMN tool_input SET COMPRESSION lz4,
    ALTER COLUMN tool_output SET COMPRESSION lz4;
EXCEPTION
  WHEN feature_not_supported OR invalid_parameter_value OR undefined_object THEN
    RAISE NOTICE 'lz4 compression not available; events keep pglz';
END
$$;
