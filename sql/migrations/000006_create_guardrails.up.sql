-- Guardrails: named policies (a budget per period, model and provider
-- allow/ignore lists, ZDR) assigned to members and keys; a workspace may
-- name a default for members without one, and have a budget of its own.
CREATE TABLE guardrails (
    id                      text PRIMARY KEY,
    workspace_id            text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name                    text NOT NULL,
    description             text,
    limit_usd               numeric CHECK (limit_usd >= 0),
    reset_interval          text CHECK (reset_interval IN ('daily', 'weekly', 'monthly')),
    allowed_models          text[] NOT NULL DEFAULT '{}',
    allowed_providers       text[] NOT NULL DEFAULT '{}',
    ignored_models          text[] NOT NULL DEFAULT '{}',
    ignored_providers       text[] NOT NULL DEFAULT '{}',
    enforce_zdr             boolean NOT NULL DEFAULT false,
    include_byok_in_budgets boolean NOT NULL DEFAULT false,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, id)
);

-- At most one guardrail per member and per key, from the same workspace.
ALTER TABLE members ADD COLUMN guardrail_id text,
    ADD FOREIGN KEY (workspace_id, guardrail_id) REFERENCES guardrails (workspace_id, id);
ALTER TABLE api_keys ADD COLUMN guardrail_id text,
    ADD FOREIGN KEY (workspace_id, guardrail_id) REFERENCES guardrails (workspace_id, id);
ALTER TABLE workspaces
    ADD COLUMN default_guardrail_id text REFERENCES guardrails (id),
    ADD COLUMN limit_usd numeric CHECK (limit_usd >= 0),
    ADD COLUMN reset_interval text CHECK (reset_interval IN ('daily', 'weekly', 'monthly'));
CREATE INDEX members_guardrail_idx ON members (guardrail_id) WHERE guardrail_id IS NOT NULL;
CREATE INDEX api_keys_guardrail_idx ON api_keys (guardrail_id) WHERE guardrail_id IS NOT NULL;

ALTER TABLE spend DROP CONSTRAINT spend_scope_check,
    ADD CONSTRAINT spend_scope_check CHECK (scope IN ('key', 'guardrail', 'workspace'));

-- Budget leases replace per-request holds: a replica takes a slice of a
-- budget's remainder (counted in spend.reserved, so no other replica can
-- spend it) and reserves requests against it in memory. A lease whose
-- replica stopped heartbeating, or that expired, is charged in full.
CREATE SEQUENCE spend_lease_ids;
CREATE TABLE spend_leases (
    -- lease_id names one incarnation of the row: a lease emptied (or
    -- swept) and taken again is a new lease, so nothing meant for the old
    -- one is ever applied to it.
    lease_id     bigint NOT NULL DEFAULT nextval('spend_lease_ids'),
    replica_id   text NOT NULL,
    scope        text NOT NULL,
    scope_id     text NOT NULL,
    period_start timestamptz NOT NULL,
    amount       numeric NOT NULL CHECK (amount >= 0),
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (replica_id, scope, scope_id, period_start)
);
-- The last flush of each replica's leases that landed: a flush retried
-- after its answer was lost applies once.
ALTER TABLE replicas ADD COLUMN flush_seq bigint NOT NULL DEFAULT 0;
CREATE INDEX spend_leases_expires_idx ON spend_leases (expires_at);
DROP TABLE spend_holds;

-- spend_lease_take grants leases on several scopes in one round trip. For
-- each scope (callers sort them, so concurrent takes lock rows in one
-- order): the remainder is limit - spent - reserved; a grant is refused
-- (0) when the remainder cannot cover need. Otherwise it is a lease of
-- want, but never more than a sixteenth of the remainder, and only while
-- the remainder leaves four such leases over: leases shrink as the budget
-- runs out, and near the limit every request reserves exactly its own worst
-- case, so no replica sits on a slice another needs.
CREATE FUNCTION spend_lease_take(p_replica text, p_expires timestamptz, p_scopes text[], p_ids text[],
                                 p_periods timestamptz[], p_limits numeric[], p_needs numeric[], p_wants numeric[])
-- lease_id names the replica's lease after the take (NULL: it has none).
RETURNS TABLE (idx int, granted numeric, spent numeric, reserved numeric, lease_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    i int;
    lid bigint;
    s_spent numeric;
    s_reserved numeric;
    avail numeric;
    w numeric;
    g numeric;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_scopes, 1), 0) LOOP
        INSERT INTO spend (scope, scope_id, period_start)
        VALUES (p_scopes[i], p_ids[i], p_periods[i]) ON CONFLICT DO NOTHING;
        SELECT s.spent, s.reserved INTO s_spent, s_reserved FROM spend s
        WHERE s.scope = p_scopes[i] AND s.scope_id = p_ids[i] AND s.period_start = p_periods[i] FOR UPDATE;
        avail := p_limits[i] - s_spent - s_reserved;
        g := 0;
        w := least(p_wants[i], trim_scale(trunc(avail / 16, 12)));
        IF w > p_needs[i] AND avail >= p_needs[i] + 4 * w THEN
            g := w;
        ELSIF avail >= p_needs[i] THEN
            g := p_needs[i];
        END IF;
        lid := NULL;
        IF g > 0 THEN
            UPDATE spend s SET reserved = s.reserved + g, updated_at = now()
            WHERE s.scope = p_scopes[i] AND s.scope_id = p_ids[i] AND s.period_start = p_periods[i];
            INSERT INTO spend_leases AS l (replica_id, scope, scope_id, period_start, amount, expires_at)
            VALUES (p_replica, p_scopes[i], p_ids[i], p_periods[i], g, p_expires)
            ON CONFLICT (replica_id, scope, scope_id, period_start)
            DO UPDATE SET amount = l.amount + EXCLUDED.amount, expires_at = EXCLUDED.expires_at
            RETURNING l.lease_id INTO lid;
            s_reserved := s_reserved + g;
        ELSE
            -- Nothing granted: the lease this replica holds, if any, is
            -- renewed and named (none: it was emptied or swept).
            g := 0;
            UPDATE spend_leases l SET expires_at = p_expires
            WHERE l.replica_id = p_replica AND l.scope = p_scopes[i] AND l.scope_id = p_ids[i]
              AND l.period_start = p_periods[i]
            RETURNING l.lease_id INTO lid;
        END IF;
        idx := i; granted := g; spent := s_spent; reserved := s_reserved; lease_id := lid;
        RETURN NEXT;
    END LOOP;
END $$;

-- spend_lease_flush moves what requests served under a replica's leases
-- (each named by its lease_id) cost into spent and hands back what it
-- releases (p_release), in one round trip and exactly once per p_seq: a
-- flush whose seq the replica already reached answers 'seen' for every
-- lease and changes nothing, so a retried flush never counts twice. A
-- lease that is gone ('gone') was swept and charged in full, or emptied
-- and taken again since; every lease of a replica the others forgot is
-- gone. Leases flushed down to nothing are deleted. Callers sort flushes
-- like takes; rows are locked in take's order (the budget's, then the
-- lease's), so a flush and a take never wait on each other in a cycle.
CREATE FUNCTION spend_lease_flush(p_replica text, p_seq bigint, p_expires timestamptz, p_scopes text[], p_ids text[],
                                  p_periods timestamptz[], p_lease_ids bigint[], p_spent numeric[], p_release numeric[])
RETURNS TABLE (idx int, state text)
LANGUAGE plpgsql AS $$
DECLARE
    i int;
    n int := coalesce(array_length(p_scopes, 1), 0);
    left_amount numeric;
    cur_amount numeric;
BEGIN
    UPDATE replicas r SET flush_seq = p_seq WHERE r.id = p_replica AND r.flush_seq < p_seq;
    IF NOT FOUND THEN
        state := CASE WHEN EXISTS (SELECT 1 FROM replicas r WHERE r.id = p_replica) THEN 'seen' ELSE 'gone' END;
        FOR i IN 1 .. n LOOP
            idx := i;
            RETURN NEXT;
        END LOOP;
        RETURN;
    END IF;
    FOR i IN 1 .. n LOOP
        idx := i;
        PERFORM 1 FROM spend s
        WHERE s.scope = p_scopes[i] AND s.scope_id = p_ids[i] AND s.period_start = p_periods[i] FOR UPDATE;
        SELECT l.amount INTO cur_amount FROM spend_leases l
        WHERE l.replica_id = p_replica AND l.scope = p_scopes[i] AND l.scope_id = p_ids[i]
          AND l.period_start = p_periods[i] AND l.lease_id = p_lease_ids[i] FOR UPDATE;
        IF NOT FOUND THEN
            state := 'gone';
            RETURN NEXT;
            CONTINUE;
        END IF;
        state := 'applied';
        left_amount := cur_amount - p_spent[i] - p_release[i];
        IF left_amount <= 0 THEN
            DELETE FROM spend_leases l WHERE l.replica_id = p_replica AND l.scope = p_scopes[i]
              AND l.scope_id = p_ids[i] AND l.period_start = p_periods[i];
        ELSE
            UPDATE spend_leases l SET amount = left_amount, expires_at = p_expires
            WHERE l.replica_id = p_replica AND l.scope = p_scopes[i] AND l.scope_id = p_ids[i]
              AND l.period_start = p_periods[i];
        END IF;
        UPDATE spend s SET spent = s.spent + p_spent[i],
            reserved = greatest(s.reserved - least(cur_amount, p_spent[i] + p_release[i]), 0), updated_at = now()
        WHERE s.scope = p_scopes[i] AND s.scope_id = p_ids[i] AND s.period_start = p_periods[i];
        RETURN NEXT;
    END LOOP;
END $$;
