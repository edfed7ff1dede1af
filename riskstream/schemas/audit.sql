-- Audit table of scored alerts (PostgreSQL). One row per alert_id; a newer version replaces it.
-- riskstream builds it with its migrations (`riskstream db upgrade`, also run by every worker on
-- start); this DDL is the reference and is tested to match what they build.
CREATE TABLE IF NOT EXISTS risk_alert_audit (
    alert_id      VARCHAR(32) PRIMARY KEY,
    version       INTEGER NOT NULL,
    category      VARCHAR(32) NOT NULL,
    severity      VARCHAR(16) NOT NULL,
    score         DOUBLE PRECISION NOT NULL,
    rule_score    DOUBLE PRECISION NOT NULL,
    degraded      BOOLEAN NOT NULL,
    account       VARCHAR(64),
    symbol        VARCHAR(64),
    window_start  TIMESTAMP WITH TIME ZONE NOT NULL,
    window_end    TIMESTAMP WITH TIME ZONE NOT NULL,
    event_ts      TIMESTAMP WITH TIME ZONE NOT NULL,
    detected_ts   TIMESTAMP WITH TIME ZONE NOT NULL,
    published_ts  TIMESTAMP WITH TIME ZONE,
    evidence      JSON NOT NULL,
    llm           JSON,
    alert         JSON NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_audit_account_event_ts ON risk_alert_audit (account, event_ts);
CREATE INDEX IF NOT EXISTS ix_audit_symbol_event_ts ON risk_alert_audit (symbol, event_ts);
CREATE INDEX IF NOT EXISTS ix_audit_category_severity_event_ts
    ON risk_alert_audit (category, severity, event_ts);
CREATE INDEX IF NOT EXISTS ix_audit_event_ts ON risk_alert_audit (event_ts);
