-- Since the runtime role (rtmn_wallet) no longer owns the schema, it gets row rights on new
-- tables by default privileges: take UPDATE, DELETE and TRUNCATE of entries from every role
-- that has them, so a stray UPDATE still fails on privileges before it reaches the trigger.
DO $$
DECLARE
    grantee regrole;
BEGIN
    FOR grantee IN
        SELECT DISTINCT a.grantee::regrole
        FROM pg_class c, aclexplode(c.relacl) a
        WHERE c.oid = 'entries'::regclass AND a.grantee <> 0
            AND a.privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE')
    LOOP
        EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON entries FROM %s', grantee);
    END LOOP;
END
$$;
