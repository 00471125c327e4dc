-- 002_backfill_call_sid down: deliberately changes no data. A backfilled call_sid cannot be told
-- apart from one the new code wrote (both are EL_<driver>_<timestamp>), so clearing them could
-- destroy real identifiers; 001 down drops the column with every value anyway, and running 002
-- again only fills NULL call_sids, so up -> down -> up stays consistent.
DO $$
BEGIN
	RAISE NOTICE '002 down: call_sid values are kept (001 down drops the column)';
END
$$;
