-- grain: one row per agent definition version (a new version only when something changed)
-- parameters: none
CREATE TABLE IF NOT EXISTS agent_definitions (
    agent_name    VARCHAR NOT NULL,
    version       INTEGER NOT NULL,
    project       VARCHAR,
    description   VARCHAR,
    system_prompt VARCHAR,
    tools         JSON,
    model         VARCHAR,
    agent_type    VARCHAR NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (agent_name, version)
)
