//! The PostgreSQL steps.

pub const POSTGRES: &[&str] = &[
    // 1
    "CREATE TABLE messages (
        id          BIGSERIAL PRIMARY KEY,
        queue_id    TEXT    NOT NULL UNIQUE,
        received_at BIGINT  NOT NULL,
        session_id  TEXT    NOT NULL,
        peer        TEXT    NOT NULL,
        helo        TEXT    NOT NULL,
        tls_version TEXT,
        tls_cipher  TEXT,
        mail_from   TEXT    NOT NULL,
        rcpt_to     TEXT    NOT NULL,
        size        BIGINT  NOT NULL,
        raw         BYTEA   NOT NULL,
        state       TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'filed', 'quarantined'))
    );
    CREATE INDEX messages_by_state ON messages (state, id);",
    // 2
    "ALTER TABLE messages ADD COLUMN quarantine_reason TEXT;
    ALTER TABLE messages ADD COLUMN case_id BIGINT;
    CREATE TABLE case_counters (
        org  TEXT   NOT NULL,
        year BIGINT NOT NULL,
        n    BIGINT NOT NULL,
        PRIMARY KEY (org, year)
    );
    CREATE TABLE cases (
        id                  BIGSERIAL PRIMARY KEY,
        org                 TEXT    NOT NULL,
        reference           TEXT    NOT NULL UNIQUE,
        kind                TEXT    NOT NULL CHECK (kind IN ('disclosure', 'unflagged')),
        state               TEXT    NOT NULL,
        close_reason        TEXT,
        subject             TEXT    NOT NULL,
        reporter_name       TEXT,
        reporter_address    TEXT,
        anonymous           BIGINT  NOT NULL,
        channel             TEXT,
        contact             TEXT,
        description         TEXT,
        steps               TEXT,
        impact              TEXT,
        mitigation          TEXT,
        language            TEXT,
        cve_ids             TEXT    NOT NULL,
        cwe_ids             TEXT    NOT NULL,
        cvss_vector         TEXT,
        cvss_score          DOUBLE PRECISION,
        cvss_severity       TEXT,
        tls_version         TEXT,
        tls_cipher          TEXT,
        authentication_results TEXT,
        message_id          TEXT,
        received_at         BIGINT  NOT NULL,
        acknowledge_by      BIGINT  NOT NULL,
        feedback_by         BIGINT  NOT NULL,
        feedback_paused_at  BIGINT,
        breach_notify_by    BIGINT,
        updated_at          BIGINT  NOT NULL
    );
    CREATE INDEX cases_by_org_state ON cases (org, state);
    CREATE TABLE case_assets (
        id       BIGSERIAL PRIMARY KEY,
        case_id  BIGINT NOT NULL REFERENCES cases (id),
        value    TEXT   NOT NULL,
        in_scope BIGINT NOT NULL
    );
    CREATE TABLE case_suggestions (
        id      BIGSERIAL PRIMARY KEY,
        case_id BIGINT NOT NULL REFERENCES cases (id),
        kind    TEXT   NOT NULL,
        name    TEXT   NOT NULL,
        label   TEXT   NOT NULL,
        matched TEXT   NOT NULL
    );
    CREATE TABLE case_evidence (
        id            BIGSERIAL PRIMARY KEY,
        case_id       BIGINT NOT NULL REFERENCES cases (id),
        kind          TEXT   NOT NULL CHECK (kind IN ('screenshot', 'attachment')),
        name          TEXT,
        declared_type TEXT   NOT NULL,
        sniffed_type  TEXT,
        size          BIGINT NOT NULL,
        forwarded     BIGINT NOT NULL,
        data          BYTEA  NOT NULL
    );
    CREATE TABLE case_events (
        id         BIGSERIAL PRIMARY KEY,
        case_id    BIGINT NOT NULL REFERENCES cases (id),
        at         BIGINT NOT NULL,
        kind       TEXT   NOT NULL,
        actor      TEXT   NOT NULL,
        detail     TEXT   NOT NULL,
        message_id BIGINT
    );
    CREATE INDEX case_events_by_case ON case_events (case_id, id);",
    // 3
    "CREATE TABLE outbox (
        id              BIGSERIAL PRIMARY KEY,
        case_id         BIGINT NOT NULL REFERENCES cases (id),
        kind            TEXT   NOT NULL,
        to_address      TEXT   NOT NULL,
        subject         TEXT   NOT NULL,
        body            TEXT   NOT NULL,
        message_id      TEXT   NOT NULL,
        in_reply_to     TEXT,
        state           TEXT   NOT NULL CHECK (state IN ('pending', 'sent', 'failed', 'suppressed')),
        reason          TEXT,
        attempts        BIGINT NOT NULL DEFAULT 0,
        next_attempt_at BIGINT NOT NULL,
        created_at      BIGINT NOT NULL,
        sent_at         BIGINT
    );
    CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
    CREATE INDEX outbox_by_address ON outbox (to_address, created_at);",
    // 4
    "ALTER TABLE case_evidence ADD COLUMN archive TEXT;
    ALTER TABLE case_evidence ADD COLUMN parent_id BIGINT;
    ALTER TABLE case_evidence ADD COLUMN opened_at BIGINT;",
    // 5
    "CREATE TABLE store_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    ALTER TABLE case_evidence ADD COLUMN object_id TEXT;",
    // 6
    "CREATE TABLE audit_log (
        id     BIGSERIAL PRIMARY KEY,
        at     BIGINT NOT NULL,
        actor  TEXT   NOT NULL,
        action TEXT   NOT NULL,
        target TEXT   NOT NULL,
        source TEXT   NOT NULL,
        detail TEXT   NOT NULL,
        mac    TEXT   NOT NULL
    );",
    // 7
    "CREATE TABLE api_tokens (
        id         BIGSERIAL PRIMARY KEY,
        name       TEXT   NOT NULL UNIQUE,
        hash       TEXT   NOT NULL UNIQUE,
        orgs       TEXT   NOT NULL,
        created_at BIGINT NOT NULL,
        revoked_at BIGINT
    );",
    // 8
    "CREATE TABLE saml_used (id TEXT PRIMARY KEY, expires_at BIGINT NOT NULL);
    CREATE TABLE web_sessions (
        hash       TEXT    PRIMARY KEY,
        actor      TEXT    NOT NULL,
        display    TEXT    NOT NULL,
        roles      TEXT    NOT NULL,
        csrf       TEXT    NOT NULL,
        created_at BIGINT NOT NULL,
        last_seen  BIGINT NOT NULL
    );",
    // 9
    "ALTER TABLE messages ADD COLUMN intake_attempts BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE messages ADD COLUMN intake_failure TEXT;
    ALTER TABLE messages ADD COLUMN claimed_until BIGINT;
    ALTER TABLE messages ADD COLUMN budget_factor BIGINT NOT NULL DEFAULT 1;
    ALTER TABLE cases DROP CONSTRAINT cases_kind_check;
    ALTER TABLE cases ADD CONSTRAINT cases_kind_check CHECK (kind IN ('disclosure', 'unflagged', 'unparsed'));
    ALTER TABLE cases ADD COLUMN cvss TEXT;
    ALTER TABLE cases ADD COLUMN unparsed_reason TEXT;
    ALTER TABLE case_evidence ADD COLUMN archive_locked BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE case_evidence ADD COLUMN conversation_id BIGINT;
    CREATE TABLE case_messages (
        id            BIGSERIAL PRIMARY KEY,
        case_id       BIGINT NOT NULL REFERENCES cases (id),
        message_row   BIGINT,
        at            BIGINT NOT NULL,
        from_reporter BIGINT NOT NULL,
        token         BIGINT NOT NULL,
        sender        TEXT   NOT NULL,
        subject       TEXT   NOT NULL,
        body          TEXT   NOT NULL,
        tls_version   TEXT
    );
    CREATE INDEX case_messages_by_case ON case_messages (case_id, id);
    ALTER TABLE outbox ADD COLUMN to_normal TEXT NOT NULL DEFAULT '';
    ALTER TABLE outbox ADD COLUMN to_domain TEXT NOT NULL DEFAULT '';
    ALTER TABLE outbox ADD COLUMN client_ip TEXT NOT NULL DEFAULT '';
    CREATE INDEX outbox_receipts_by_normal ON outbox (to_normal, created_at)
        WHERE kind = 'receipt' AND state != 'suppressed';
    CREATE INDEX outbox_receipts_by_domain ON outbox (to_domain, created_at)
        WHERE kind = 'receipt' AND state != 'suppressed';
    CREATE INDEX outbox_receipts_by_client ON outbox (client_ip, created_at)
        WHERE kind = 'receipt' AND state != 'suppressed';
    CREATE INDEX outbox_receipts_by_time ON outbox (created_at)
        WHERE kind = 'receipt' AND state != 'suppressed';
    CREATE INDEX outbox_by_message_id ON outbox (message_id);
    CREATE TABLE unlock_attempts (
        id      BIGSERIAL PRIMARY KEY,
        case_id BIGINT NOT NULL REFERENCES cases (id),
        at      BIGINT NOT NULL,
        actor   TEXT   NOT NULL,
        outcome TEXT
    );
    CREATE INDEX unlock_attempts_by_case ON unlock_attempts (case_id, at);
    CREATE TABLE unlock_locks (
        case_id    BIGINT PRIMARY KEY,
        holder     TEXT   NOT NULL,
        expires_at BIGINT NOT NULL
    );",    // 10
    "ALTER TABLE web_sessions ADD COLUMN name_id TEXT NOT NULL DEFAULT '';
    ALTER TABLE web_sessions ADD COLUMN name_id_format TEXT;
    ALTER TABLE web_sessions ADD COLUMN session_index TEXT;
    CREATE INDEX web_sessions_by_name_id ON web_sessions (name_id);",
    // 11
    "CREATE TABLE analysts (
        actor     TEXT   PRIMARY KEY,
        display   TEXT   NOT NULL,
        orgs      TEXT   NOT NULL,
        admin     BIGINT NOT NULL,
        last_seen BIGINT NOT NULL
    );
    ALTER TABLE cases ADD COLUMN assignee TEXT;
    CREATE INDEX cases_by_assignee ON cases (assignee);",
    // 12: the whole conversation (#11): the report's own text is a message
    // of the case like a follow-up (`report`), and so is a report found
    // inside an archive (`archive-report`, the mail's text then becomes the
    // `covering-note`); where each report field came from.
    "ALTER TABLE case_messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'follow-up'
        CHECK (kind IN ('report', 'covering-note', 'archive-report', 'follow-up'));
    ALTER TABLE cases ADD COLUMN field_sources TEXT NOT NULL DEFAULT '{}';
    CREATE INDEX messages_by_case ON messages (case_id, id);
    CREATE INDEX outbox_by_case ON outbox (case_id, id);",
    // 13
    "CREATE INDEX cases_by_received ON cases (received_at, reference);
    CREATE INDEX cases_by_org_received ON cases (org, received_at, reference);
    CREATE TABLE case_terms (
        term    BIGINT NOT NULL,
        case_id BIGINT NOT NULL REFERENCES cases (id),
        PRIMARY KEY (term, case_id)
    );",
    // 14
    "ALTER TABLE cases ADD COLUMN feedback_at BIGINT;",
    // 15
    "CREATE TABLE clock_alerts (
        case_id BIGINT NOT NULL REFERENCES cases (id),
        clock   TEXT   NOT NULL,
        kind    TEXT   NOT NULL,
        due     BIGINT NOT NULL,
        PRIMARY KEY (case_id, clock, kind, due)
    );",
    // 16: regulatory clocks (#12): what a case was flagged as and since
    // when the organisation knew, the marks later clocks run from, and each
    // clock's due time as the cases service computed it (`None` while it
    // waits), with its submission; when retention or an erasure removed a
    // case's personal data, and the index entries of a case by case (an
    // erasure removes them; without it, each removal reads every entry).
    "CREATE TABLE case_flags (
        case_id    BIGINT NOT NULL REFERENCES cases (id),
        flag       TEXT    NOT NULL CHECK (flag IN ('breach', 'exploited', 'incident')),
        aware_at   BIGINT NOT NULL,
        flagged_at BIGINT NOT NULL,
        PRIMARY KEY (case_id, flag)
    );
    CREATE TABLE case_marks (
        case_id BIGINT NOT NULL REFERENCES cases (id),
        mark    TEXT    NOT NULL CHECK (mark IN ('fix-available', 'high-risk')),
        at      BIGINT NOT NULL,
        PRIMARY KEY (case_id, mark)
    );
    CREATE TABLE case_clocks (
        case_id   BIGINT NOT NULL REFERENCES cases (id),
        clock     TEXT    NOT NULL,
        due       BIGINT,
        met_at    BIGINT,
        reference TEXT,
        PRIMARY KEY (case_id, clock)
    );
    CREATE INDEX case_clocks_open ON case_clocks (due) WHERE met_at IS NULL;
    ALTER TABLE cases ADD COLUMN erased_at BIGINT;
    CREATE INDEX case_terms_by_case ON case_terms (case_id);",
    // 17
    "CREATE TABLE message_encryption (
        message_id  BIGINT PRIMARY KEY REFERENCES messages (id),
        case_id     BIGINT NOT NULL REFERENCES cases (id),
        envelope    TEXT   NOT NULL CHECK (envelope IN ('pgp-mime', 'pgp-inline', 'smime')),
        decryption  TEXT   NOT NULL,
        key_ids     TEXT   NOT NULL,
        signer      TEXT,
        signature   TEXT,
        reason      TEXT,
        reporter_key BYTEA,
        reporter_key_fingerprint TEXT
    );
    CREATE INDEX message_encryption_by_case ON message_encryption (case_id);",
    // 18
    "CREATE TABLE message_auth (
        message_id    BIGINT PRIMARY KEY REFERENCES messages (id),
        case_id       BIGINT NOT NULL REFERENCES cases (id),
        at            BIGINT NOT NULL,
        header        TEXT   NOT NULL,
        checks        TEXT   NOT NULL,
        authenticated INTEGER NOT NULL
    );
    CREATE INDEX message_auth_by_case ON message_auth (case_id);
    ALTER TABLE messages ADD COLUMN auth_pending INTEGER;
    CREATE INDEX messages_auth_pending ON messages (id) WHERE auth_pending = 1;",
    // 19
    "CREATE TABLE tls_reports (
        id            BIGSERIAL PRIMARY KEY,
        message_id    BIGINT  NOT NULL UNIQUE REFERENCES messages (id),
        received_at   BIGINT  NOT NULL,
        organization  TEXT    NOT NULL,
        report_id     TEXT    NOT NULL,
        date_start    BIGINT  NOT NULL,
        date_end      BIGINT  NOT NULL,
        policy_domain TEXT    NOT NULL,
        policy_type   TEXT    NOT NULL,
        successful    BIGINT  NOT NULL,
        failed        BIGINT  NOT NULL,
        details       TEXT    NOT NULL
    );
    CREATE INDEX tls_reports_by_date ON tls_reports (date_end);",
];
