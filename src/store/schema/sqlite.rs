//! The SQLite steps.

pub const SQLITE: &[&str] = &[
    // 1: the receiver's message store.
    "CREATE TABLE messages (
        id          INTEGER PRIMARY KEY,
        queue_id    TEXT    NOT NULL UNIQUE,
        received_at INTEGER NOT NULL,
        session_id  TEXT    NOT NULL,
        peer        TEXT    NOT NULL,
        helo        TEXT    NOT NULL,
        tls_version TEXT,
        tls_cipher  TEXT,
        mail_from   TEXT    NOT NULL,
        rcpt_to     TEXT    NOT NULL,
        size        INTEGER NOT NULL,
        raw         BLOB    NOT NULL,
        state       TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'filed', 'quarantined'))
    );
    CREATE INDEX messages_by_state ON messages (state, id);",
    // 2: cases, filed by intake.
    "ALTER TABLE messages ADD COLUMN quarantine_reason TEXT;
    ALTER TABLE messages ADD COLUMN case_id INTEGER;
    CREATE TABLE case_counters (
        org  TEXT    NOT NULL,
        year INTEGER NOT NULL,
        n    INTEGER NOT NULL,
        PRIMARY KEY (org, year)
    );
    CREATE TABLE cases (
        id                  INTEGER PRIMARY KEY,
        org                 TEXT    NOT NULL,
        reference           TEXT    NOT NULL UNIQUE,
        kind                TEXT    NOT NULL CHECK (kind IN ('disclosure', 'unflagged')),
        state               TEXT    NOT NULL,
        close_reason        TEXT,
        subject             TEXT    NOT NULL,
        reporter_name       TEXT,
        reporter_address    TEXT,
        anonymous           INTEGER NOT NULL,
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
        cvss_score          REAL,
        cvss_severity       TEXT,
        tls_version         TEXT,
        tls_cipher          TEXT,
        authentication_results TEXT,
        message_id          TEXT,
        received_at         INTEGER NOT NULL,
        acknowledge_by      INTEGER NOT NULL,
        feedback_by         INTEGER NOT NULL,
        feedback_paused_at  INTEGER,
        breach_notify_by    INTEGER,
        updated_at          INTEGER NOT NULL
    );
    CREATE INDEX cases_by_org_state ON cases (org, state);
    CREATE TABLE case_assets (
        id       INTEGER PRIMARY KEY,
        case_id  INTEGER NOT NULL REFERENCES cases (id),
        value    TEXT    NOT NULL,
        in_scope INTEGER NOT NULL
    );
    CREATE TABLE case_suggestions (
        id      INTEGER PRIMARY KEY,
        case_id INTEGER NOT NULL REFERENCES cases (id),
        kind    TEXT    NOT NULL,
        name    TEXT    NOT NULL,
        label   TEXT    NOT NULL,
        matched TEXT    NOT NULL
    );
    CREATE TABLE case_evidence (
        id            INTEGER PRIMARY KEY,
        case_id       INTEGER NOT NULL REFERENCES cases (id),
        kind          TEXT    NOT NULL CHECK (kind IN ('screenshot', 'attachment')),
        name          TEXT,
        declared_type TEXT    NOT NULL,
        sniffed_type  TEXT,
        size          INTEGER NOT NULL,
        forwarded     INTEGER NOT NULL,
        data          BLOB    NOT NULL
    );
    CREATE TABLE case_events (
        id         INTEGER PRIMARY KEY,
        case_id    INTEGER NOT NULL REFERENCES cases (id),
        at         INTEGER NOT NULL,
        kind       TEXT    NOT NULL,
        actor      TEXT    NOT NULL,
        detail     TEXT    NOT NULL,
        message_id INTEGER
    );
    CREATE INDEX case_events_by_case ON case_events (case_id, id);",
    // 3: the outbox for receipts.
    "CREATE TABLE outbox (
        id              INTEGER PRIMARY KEY,
        case_id         INTEGER NOT NULL REFERENCES cases (id),
        kind            TEXT    NOT NULL,
        to_address      TEXT    NOT NULL,
        subject         TEXT    NOT NULL,
        body            TEXT    NOT NULL,
        message_id      TEXT    NOT NULL,
        in_reply_to     TEXT,
        state           TEXT    NOT NULL CHECK (state IN ('pending', 'sent', 'failed', 'suppressed')),
        reason          TEXT,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        created_at      INTEGER NOT NULL,
        sent_at         INTEGER
    );
    CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
    CREATE INDEX outbox_by_address ON outbox (to_address, created_at);",
    // 4: archives: what inspection found, what was extracted from what.
    "ALTER TABLE case_evidence ADD COLUMN archive TEXT;
    ALTER TABLE case_evidence ADD COLUMN parent_id INTEGER;
    ALTER TABLE case_evidence ADD COLUMN opened_at INTEGER;",
    // 5: encryption at rest: the key check, and an identity per evidence
    // object to bind its sealed content to.
    "CREATE TABLE store_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    ALTER TABLE case_evidence ADD COLUMN object_id TEXT;",
    // 6: the audit trail.
    "CREATE TABLE audit_log (
        id     INTEGER PRIMARY KEY,
        at     INTEGER NOT NULL,
        actor  TEXT    NOT NULL,
        action TEXT    NOT NULL,
        target TEXT    NOT NULL,
        source TEXT    NOT NULL,
        detail TEXT    NOT NULL,
        mac    TEXT    NOT NULL
    );",
    // 7: API service accounts.
    "CREATE TABLE api_tokens (
        id         INTEGER PRIMARY KEY,
        name       TEXT    NOT NULL UNIQUE,
        hash       TEXT    NOT NULL UNIQUE,
        orgs       TEXT    NOT NULL,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
    );",
    // 8: analyst sign-in: SAML request and assertion ids already used
    // (until they expire), and browser sessions (by token hash).
    "CREATE TABLE saml_used (id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
    CREATE TABLE web_sessions (
        hash       TEXT    PRIMARY KEY,
        actor      TEXT    NOT NULL,
        display    TEXT    NOT NULL,
        roles      TEXT    NOT NULL,
        csrf       TEXT    NOT NULL,
        created_at INTEGER NOT NULL,
        last_seen  INTEGER NOT NULL
    );",
    // 9: hostile mail (#9). Intake attempts are recorded before a parse,
    // with a lease so receivers sharing a database skip each other's work;
    // `unparsed` cases; a case's conversation; receipt limits per
    // normalised address, domain and client; unlock attempts and a
    // per-case lock; sealed report-derived values (CVSS moves to one
    // sealed column; archive inspection to a sealed column, with its
    // locked flag in clear). SQLite cannot change a CHECK: `cases` is
    // rebuilt (foreign keys are off for this step, see `migrate`).
    "ALTER TABLE messages ADD COLUMN intake_attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE messages ADD COLUMN intake_failure TEXT;
    ALTER TABLE messages ADD COLUMN claimed_until INTEGER;
    ALTER TABLE messages ADD COLUMN budget_factor INTEGER NOT NULL DEFAULT 1;
    CREATE TABLE cases_rebuilt (
        id                  INTEGER PRIMARY KEY,
        org                 TEXT    NOT NULL,
        reference           TEXT    NOT NULL UNIQUE,
        kind                TEXT    NOT NULL CHECK (kind IN ('disclosure', 'unflagged', 'unparsed')),
        state               TEXT    NOT NULL,
        close_reason        TEXT,
        subject             TEXT    NOT NULL,
        reporter_name       TEXT,
        reporter_address    TEXT,
        anonymous           INTEGER NOT NULL,
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
        cvss_score          REAL,
        cvss_severity       TEXT,
        tls_version         TEXT,
        tls_cipher          TEXT,
        authentication_results TEXT,
        message_id          TEXT,
        received_at         INTEGER NOT NULL,
        acknowledge_by      INTEGER NOT NULL,
        feedback_by         INTEGER NOT NULL,
        feedback_paused_at  INTEGER,
        breach_notify_by    INTEGER,
        updated_at          INTEGER NOT NULL
    );
    INSERT INTO cases_rebuilt SELECT * FROM cases;
    DROP TABLE cases;
    ALTER TABLE cases_rebuilt RENAME TO cases;
    CREATE INDEX cases_by_org_state ON cases (org, state);
    ALTER TABLE cases ADD COLUMN cvss TEXT;
    ALTER TABLE cases ADD COLUMN unparsed_reason TEXT;
    ALTER TABLE case_evidence ADD COLUMN archive_locked INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE case_evidence ADD COLUMN conversation_id INTEGER;
    CREATE TABLE case_messages (
        id            INTEGER PRIMARY KEY,
        case_id       INTEGER NOT NULL REFERENCES cases (id),
        message_row   INTEGER,
        at            INTEGER NOT NULL,
        from_reporter INTEGER NOT NULL,
        token         INTEGER NOT NULL,
        sender        TEXT    NOT NULL,
        subject       TEXT    NOT NULL,
        body          TEXT    NOT NULL,
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
        id      INTEGER PRIMARY KEY,
        case_id INTEGER NOT NULL REFERENCES cases (id),
        at      INTEGER NOT NULL,
        actor   TEXT    NOT NULL,
        outcome TEXT
    );
    CREATE INDEX unlock_attempts_by_case ON unlock_attempts (case_id, at);
    CREATE TABLE unlock_locks (
        case_id    INTEGER PRIMARY KEY,
        holder     TEXT    NOT NULL,
        expires_at INTEGER NOT NULL
    );",    // 10: single logout (#16): a session remembers the NameID and the
    // IdP's SessionIndex it was made for, so the IdP's LogoutRequest can
    // end it; the person's stable identity is `actor`.
    "ALTER TABLE web_sessions ADD COLUMN name_id TEXT NOT NULL DEFAULT '';
    ALTER TABLE web_sessions ADD COLUMN name_id_format TEXT;
    ALTER TABLE web_sessions ADD COLUMN session_index TEXT;
    CREATE INDEX web_sessions_by_name_id ON web_sessions (name_id);",
    // 11: who works a case (#11): the people who signed in with a role,
    // by their stable identity (#16), and a case's assignee.
    "CREATE TABLE analysts (
        actor     TEXT    PRIMARY KEY,
        display   TEXT    NOT NULL,
        orgs      TEXT    NOT NULL,
        admin     INTEGER NOT NULL,
        last_seen INTEGER NOT NULL
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
    // 13: finding any case (#11): the list's order as an index, and the
    // blind search index — keyed hashes of words (per organisation), never
    // the words.
    "CREATE INDEX cases_by_received ON cases (received_at, reference);
    CREATE INDEX cases_by_org_received ON cases (org, received_at, reference);
    CREATE TABLE case_terms (
        term    INTEGER NOT NULL,
        case_id INTEGER NOT NULL REFERENCES cases (id),
        PRIMARY KEY (term, case_id)
    ) WITHOUT ROWID;",
    // 14: feedback stops the feedback clock (#11): when the first reply or
    // status update to the reporter was queued.
    "ALTER TABLE cases ADD COLUMN feedback_at INTEGER;",
    // 15: analysts hear about what matters (#11): each clock alert raised
    // once per case, clock, kind and deadline (a moved deadline alerts
    // again).
    "CREATE TABLE clock_alerts (
        case_id INTEGER NOT NULL REFERENCES cases (id),
        clock   TEXT    NOT NULL,
        kind    TEXT    NOT NULL,
        due     INTEGER NOT NULL,
        PRIMARY KEY (case_id, clock, kind, due)
    );",
    // 16: regulatory clocks (#12): what a case was flagged as and since
    // when the organisation knew, the marks later clocks run from, and each
    // clock's due time as the cases service computed it (`None` while it
    // waits), with its submission; when retention or an erasure removed a
    // case's personal data, and the index entries of a case by case (an
    // erasure removes them; without it, each removal reads every entry).
    "CREATE TABLE case_flags (
        case_id    INTEGER NOT NULL REFERENCES cases (id),
        flag       TEXT    NOT NULL CHECK (flag IN ('breach', 'exploited', 'incident')),
        aware_at   INTEGER NOT NULL,
        flagged_at INTEGER NOT NULL,
        PRIMARY KEY (case_id, flag)
    );
    CREATE TABLE case_marks (
        case_id INTEGER NOT NULL REFERENCES cases (id),
        mark    TEXT    NOT NULL CHECK (mark IN ('fix-available', 'high-risk')),
        at      INTEGER NOT NULL,
        PRIMARY KEY (case_id, mark)
    );
    CREATE TABLE case_clocks (
        case_id   INTEGER NOT NULL REFERENCES cases (id),
        clock     TEXT    NOT NULL,
        due       INTEGER,
        met_at    INTEGER,
        reference TEXT,
        PRIMARY KEY (case_id, clock)
    );
    CREATE INDEX case_clocks_open ON case_clocks (due) WHERE met_at IS NULL;
    ALTER TABLE cases ADD COLUMN erased_at INTEGER;
    CREATE INDEX case_terms_by_case ON case_terms (case_id);",
    // 17: encrypted reports (#13): how each encrypted message was wrapped,
    // what became of its decryption, its signature, and the reporter's
    // public key (sealed) our replies are encrypted to.
    "CREATE TABLE message_encryption (
        message_id  INTEGER PRIMARY KEY REFERENCES messages (id),
        case_id     INTEGER NOT NULL REFERENCES cases (id),
        envelope    TEXT    NOT NULL CHECK (envelope IN ('pgp-mime', 'pgp-inline', 'smime')),
        decryption  TEXT    NOT NULL,
        key_ids     TEXT    NOT NULL,
        signer      TEXT,
        signature   TEXT,
        reason      TEXT,
        reporter_key BLOB,
        reporter_key_fingerprint TEXT
    );
    CREATE INDEX message_encryption_by_case ON message_encryption (case_id);",
    // 18: sender authentication we computed (#13): our Authentication-
    // Results header and the plain-language checks (both sealed), and
    // whether the sender is authenticated for an automatic receipt; a
    // filed message waits for its assessment with `auth_pending` set
    // (a partial index finds the few that wait among all filed mail).
    // Mail filed before this release is not assessed: an upgrade looks up
    // nothing old.
    "CREATE TABLE message_auth (
        message_id    INTEGER PRIMARY KEY REFERENCES messages (id),
        case_id       INTEGER NOT NULL REFERENCES cases (id),
        at            INTEGER NOT NULL,
        header        TEXT    NOT NULL,
        checks        TEXT    NOT NULL,
        authenticated INTEGER NOT NULL
    );
    CREATE INDEX message_auth_by_case ON message_auth (case_id);
    ALTER TABLE messages ADD COLUMN auth_pending INTEGER;
    CREATE INDEX messages_auth_pending ON messages (id) WHERE auth_pending = 1;",
    // 19: aggregate TLS reports (RFC 8460) mailed to the TLS-RPT address:
    // counts in clear for the delivery-health view, the failure details
    // (sending MTAs' addresses, reasons) sealed.
    "CREATE TABLE tls_reports (
        id            INTEGER PRIMARY KEY,
        message_id    INTEGER NOT NULL UNIQUE REFERENCES messages (id),
        received_at   INTEGER NOT NULL,
        organization  TEXT    NOT NULL,
        report_id     TEXT    NOT NULL,
        date_start    INTEGER NOT NULL,
        date_end      INTEGER NOT NULL,
        policy_domain TEXT    NOT NULL,
        policy_type   TEXT    NOT NULL,
        successful    INTEGER NOT NULL,
        failed        INTEGER NOT NULL,
        details       TEXT    NOT NULL
    );
    CREATE INDEX tls_reports_by_date ON tls_reports (date_end);",
];
