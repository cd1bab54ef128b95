"""No secret pasted into an incident survives into any export format."""

from __future__ import annotations

from pydantic import SecretStr

from bot.compose.app.bot import Bot
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.domain.export import export_incident
from bot.core.store import timeline

SLACK_BOT = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
SLACK_USER = "xoxp-2222222222-3333333333-abcdef"
SLACK_APP = "xapp-1-A0123456789-1234567890123-0a1b2c3d4e5f"
BEARER = "eyJhbGciOiJSUzI1NiJ9.c2VydmljZWFjY291bnQ.c2lnbmF0dXJlc2ln"
OPAQUE_BEARER = "k8s-opaque-token-0f9e8d7c6b5a"
PASSWORD = "hunter2-correct-horse"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
PRIVATE_KEY_BODY = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun"
WEBHOOK_TOKEN = "plain-looking-webhook-value-42"  # configured: redacted though it matches no pattern
DB_PASSWORD = "dbpass-9f8e7d"

SECRETS = [SLACK_BOT, SLACK_USER, SLACK_APP, BEARER, OPAQUE_BEARER, PASSWORD, AWS_KEY, AWS_SECRET, PRIVATE_KEY_BODY,
           WEBHOOK_TOKEN, DB_PASSWORD]


def test_secrets_in_notes_and_evidence_are_redacted_in_every_format(chat: MemoryChat, bot: Bot,
                                                                      clock: FakeClock) -> None:
    bot.settings.webhook_token = SecretStr(WEBHOOK_TOKEN)
    bot.settings.slack.bot_token = SecretStr(SLACK_BOT)
    chat.say("alice", "/incident declare apiserver auth failures")
    chat.say("alice", f"/incident note the bot token {SLACK_BOT} leaked into a log")
    chat.say("alice", f"/incident note also {SLACK_USER} and {SLACK_APP}")
    chat.say("bob", f"/incident note curl -H 'Authorization: Bearer {OPAQUE_BEARER}' https://10.0.0.1:6443/readyz")
    chat.say("bob", f"/incident note db login password={PASSWORD} at postgresql://app:{DB_PASSWORD}@db:5432/app")
    chat.say("bob", f"/incident note webhook sent {WEBHOOK_TOKEN}")
    chat.say("bob", f"/incident action rotate {AWS_KEY}")
    chat.say("bob", f"/incident cause kubeconfig with aws_secret_access_key={AWS_SECRET} committed")
    with bot.services.incidents.transaction("INC-1") as (session, row):
        timeline.record(session, 1, "diagnosis.check", "kubeconfig found on a node", at=clock.now(),
                        actor="diagnosis", source="diagnosis",
                        data={"kubeconfig": {"users": [{"token": BEARER, "client-key-data": "a2V5"}]},
                              "headers": {"Authorization": f"Bearer {BEARER}"},
                              "key": f"-----BEGIN RSA PRIVATE KEY-----\n{PRIVATE_KEY_BODY}\n-----END RSA PRIVATE KEY-----",
                              "password": PASSWORD, "plan_hash": "sha256:keepme"})
    for fmt in ("md", "json", "html"):
        content = export_incident(bot.db, bot.settings, "INC-1", fmt=fmt).content
        for secret in SECRETS:
            assert secret not in content, (fmt, secret)
        assert "[REDACTED]" in content
        # what is not a secret stays readable
        for kept in ("sha256:keepme", "kubeconfig found on a node", "leaked into a log", "https://10.0.0.1:6443/readyz",
                     "db:5432/app"):
            assert kept in content, (fmt, kept)
    md = export_incident(bot.db, bot.settings, "INC-1", fmt="md").content
    assert "Authorization: Bearer [REDACTED]" in md
    assert "password=[REDACTED]" in md
    assert "postgresql://app:[REDACTED]@db:5432/app" in md
    assert "| Root cause | kubeconfig with aws_secret_access_key=[REDACTED] committed |" in md


def test_a_configured_extra_pattern_is_redacted(chat: MemoryChat, bot: Bot) -> None:
    bot.settings.export.redact_patterns = [r"\bcorp-[0-9]{6}\b"]
    chat.say("alice", "/incident declare badge corp-123456 in a screenshot")
    for fmt in ("md", "json", "html"):
        content = export_incident(bot.db, bot.settings, "INC-1", fmt=fmt).content
        assert "corp-123456" not in content and "badge [REDACTED] in a screenshot" in content
