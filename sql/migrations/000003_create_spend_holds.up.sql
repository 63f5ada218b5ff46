-- One row per reservation in force, so a reservation whose request never
-- settled (its replica crashed) can be found and resolved by a sweeper
-- instead of holding the budget forever.
CREATE TABLE spend_holds (
    id           text PRIMARY KEY, -- generation id + ':' + scope
    scope        text NOT NULL,
    scope_id     text NOT NULL,
    period_start timestamptz NOT NULL,
    amount       numeric NOT NULL CHECK (amount >= 0),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX spend_holds_expires_idx ON spend_holds (expires_at);
