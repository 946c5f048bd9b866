-- +goose Up
-- The admin UI's people, their sessions, sign-in attempts (for rate
-- limiting, kept in the database so every instance counts the same) and the
-- audit log of everything they did.
CREATE TABLE admin_users (
    id            bigserial PRIMARY KEY,
    email         text NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('viewer', 'operator')),
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    disabled_at   timestamptz
);

CREATE UNIQUE INDEX admin_users_email ON admin_users (email);

-- Only the SHA-256 of a session token is stored: a leaked table cannot be
-- replayed as cookies.
CREATE TABLE admin_sessions (
    token_hash   bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id      bigint NOT NULL REFERENCES admin_users (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    ip           text NOT NULL,
    user_agent   text NOT NULL
);

CREATE INDEX admin_sessions_user ON admin_sessions (user_id);
CREATE INDEX admin_sessions_expires_at ON admin_sessions (expires_at);

CREATE TABLE admin_login_attempts (
    id    bigserial PRIMARY KEY,
    email text NOT NULL,
    ip    text NOT NULL,
    ok    boolean NOT NULL,
    at    timestamptz NOT NULL
);

CREATE INDEX admin_login_attempts_email ON admin_login_attempts (email, at);
CREATE INDEX admin_login_attempts_ip ON admin_login_attempts (ip, at);

-- One row per admin action (per transaction): who, when, what, and the
-- values before and after. actor_email is copied so the log still reads
-- after a user is removed.
CREATE TABLE admin_audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL,
    actor_id    bigint REFERENCES admin_users (id) ON DELETE SET NULL,
    actor_email text NOT NULL,
    action      text NOT NULL,
    target      text NOT NULL,
    before      jsonb,
    after       jsonb,
    detail      text NOT NULL DEFAULT '',
    ip          text NOT NULL DEFAULT '',
    request_id  text NOT NULL DEFAULT ''
);

CREATE INDEX admin_audit_log_at ON admin_audit_log (at DESC);

-- +goose Down
DROP TABLE admin_audit_log;
DROP TABLE admin_login_attempts;
DROP TABLE admin_sessions;
DROP TABLE admin_users;
