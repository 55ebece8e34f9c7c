"""A digest as an email message, and the SMTP conversation that hands it over.

Building is pure (the time and ids are passed in); sending is the one edge, with smtplib.
Header safety: the message uses the email package's SMTP policy, which refuses a header
value with CR or LF rather than folding it into a new header; anything from feeds that goes
into a header (the lead title in the subject) is folded to one line before that.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import TYPE_CHECKING

from aggregator.digest.render import one_line
from aggregator.errors import DeliveryError

if TYPE_CHECKING:
    from aggregator.config import SmtpSettings

LIST_DOMAIN = "aggregator.local"


@dataclass(frozen=True)
class SendResult:
    """What the server accepted: the recipients it refused did not get the message."""

    message_id: str
    accepted: tuple[str, ...]
    refused: tuple[tuple[str, str], ...] = ()  # (recipient, server's reply)


def _domain(sender: str) -> str:
    address = parseaddr(sender)[1]
    _, _, domain = address.rpartition("@")
    return domain.strip().lower() or LIST_DOMAIN


def message_id(subscription: str, period_end: datetime, recipients: Sequence[str],
               item_ids: Sequence[int], sender: str) -> str:
    """The same digest (subscription, period, recipients, items) gets the same Message-ID.

    If a process dies after the server accepted a message but before the ledger was
    written, the retry is the same message under the same id, which mail clients and
    list software drop as a duplicate.
    """
    digest = hashlib.sha256(
        "\x1f".join([subscription, period_end.isoformat(), *sorted(recipients),
                     *map(str, sorted(item_ids))]).encode()).hexdigest()[:16]
    # Short enough not to be folded onto a second header line.
    return f"<digest.{digest}@{_domain(sender)}>"


def build_message(*, subject: str, html: str, text: str, sender: str, to: Sequence[str],
                  list_name: str, message_id: str, now: datetime) -> EmailMessage:
    """multipart/alternative: the plain text first, the HTML last (the preferred part)."""
    msg = EmailMessage(policy=policy.SMTP)
    msg["Subject"] = one_line(subject)
    msg["From"] = one_line(sender)
    msg["To"] = ", ".join(one_line(t) for t in to)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id
    msg["List-Id"] = f"{one_line(list_name)} digest <{list_name}.{LIST_DOMAIN}>"
    # Vacation responders and ticket systems should not answer a digest.
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg["Precedence"] = "bulk"
    # Quoted-printable: 7-bit clean whatever the server's 8BITMIME, and no line over 76.
    msg.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    return msg


def _connect(smtp: SmtpSettings, context: ssl.SSLContext) -> smtplib.SMTP:
    timeout = smtp.timeout.total_seconds()
    if smtp.security == "ssl":
        return smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=timeout, context=context)
    client = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout)
    if smtp.security == "starttls":
        client.starttls(context=context)
        client.ehlo()
    return client


def _where(smtp: SmtpSettings) -> str:
    return f"SMTP server {smtp.host}:{smtp.port} ({smtp.security})"


def _reply(code: int, text: bytes | str) -> str:
    body = text.decode(errors="replace") if isinstance(text, bytes) else text
    return one_line(f"{code} {body}")


def send_message(smtp: SmtpSettings, msg: EmailMessage,
                 context: ssl.SSLContext | None = None) -> SendResult:
    """Hand a message to the server; raise DeliveryError (one line) when it was not taken.

    Certificates are verified against the system's trust store (``SSL_CERT_FILE`` points
    elsewhere). AUTH is used when ``username`` is set, with the password from the
    environment variable named by ``password_env``.
    """
    recipients = [a.addr_spec for a in msg["To"].addresses] if msg["To"] else []
    if smtp.username and smtp.password is None:
        raise DeliveryError(f"{_where(smtp)}: username is set but the environment variable "
                            f"{smtp.password_env} holding the password is not")
    context = context or ssl.create_default_context()
    try:
        with _connect(smtp, context) as client:
            if smtp.username:
                client.login(smtp.username, smtp.password or "")
            refused = client.send_message(msg, from_addr=_envelope_from(msg),
                                          to_addrs=recipients)
    except smtplib.SMTPAuthenticationError as e:
        raise DeliveryError(f"{_where(smtp)} refused the login for {smtp.username!r}: "
                            f"{_reply(e.smtp_code, e.smtp_error)}") from None
    except smtplib.SMTPRecipientsRefused as e:
        detail = "; ".join(f"{r}: {_reply(*v)}" for r, v in e.recipients.items())
        raise DeliveryError(f"{_where(smtp)} refused every recipient: {detail}") from None
    except smtplib.SMTPResponseException as e:
        raise DeliveryError(f"{_where(smtp)} refused the message: "
                            f"{_reply(e.smtp_code, e.smtp_error)}") from None
    except smtplib.SMTPNotSupportedError as e:
        raise DeliveryError(f"{_where(smtp)}: {one_line(str(e))} (check [smtp] security "
                            "and username)") from None
    except ssl.SSLError as e:
        raise DeliveryError(f"{_where(smtp)}: TLS failed: {one_line(str(e))}") from None
    except (smtplib.SMTPException, OSError) as e:
        raise DeliveryError(f"{_where(smtp)}: {one_line(str(e)) or type(e).__name__}") from None
    refused_list = tuple((r, _reply(*v)) for r, v in refused.items())
    accepted = tuple(r for r in recipients if r not in refused)
    return SendResult(str(msg["Message-ID"]), accepted, refused_list)


def _envelope_from(msg: EmailMessage) -> str:
    sender = msg["From"]
    addresses: tuple[Address, ...] = getattr(sender, "addresses", ())
    return addresses[0].addr_spec if addresses else parseaddr(str(sender))[1]
