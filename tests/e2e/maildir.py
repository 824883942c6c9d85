"""Prints the messages in an aiosmtpd Mailbox directory (a Maildir) as JSON, decoded, for the
end-to-end tests (tests/e2e/notify.rs): headers, and the text and HTML parts."""
import json
import mailbox
import sys
from email import policy
from email.parser import BytesParser

out = []
box = mailbox.Maildir(sys.argv[1], factory=None, create=False)
for key in box.iterkeys():
    with box.get_file(key) as f:
        msg = BytesParser(policy=policy.default).parse(f)
    text = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    out.append({
        "from": str(msg["From"]),
        "to": str(msg["To"]),
        "subject": str(msg["Subject"]),
        "message_id": str(msg["Message-ID"]),
        "in_reply_to": str(msg.get("In-Reply-To", "")),
        "references": str(msg.get("References", "")),
        "date": str(msg["Date"]),
        "content_type": msg.get_content_type(),
        "parts": [p.get_content_type() for p in msg.walk() if not p.is_multipart()],
        # Every header name, lower case, and the envelope recipients aiosmtpd recorded: a test
        # can see that no stored value injected a header (issue #15).
        "header_names": [k.lower() for k in msg.keys()],
        "rcpt_to": str(msg.get("X-RcptTo", "")),
        "text": text.get_content() if text is not None else None,
        # When the server delivered it (the Maildir file's time, Unix seconds): how long an
        # alert took to reach the family (tests/e2e/burden.rs, issue #17).
        "arrived": box.get_message(key).get_date(),
        "html": html.get_content() if html is not None else None,
    })
out.sort(key=lambda m: m["message_id"])
json.dump(out, sys.stdout, ensure_ascii=False)
