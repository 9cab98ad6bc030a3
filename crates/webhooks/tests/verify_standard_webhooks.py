"""Verifies webhook deliveries with the Standard Webhooks reference library (Python package
`standardwebhooks`, pinned in .ci/requirements.txt), so Voltplan's signatures are checked by code
we did not write.

Input, on stdin: one JSON object per line, a delivery as a receiver saw it:

    {"secrets": ["whsec_...", ...], "headers": {"webhook-id": "...", ...}, "body": "..."}

- "secrets": the secrets the receiver may hold; the delivery must verify with EACH of them on its
  own (during a rotation a receiver holds either the new or the old one, not both).
- "headers": the request's headers (any case; others are ignored).
- "body": the request body exactly as received, as a string.

Output, on stdout: one line per (non-blank) input line, in order: `ok`, or `fail: <reason>`. The reference
library also checks that webhook-timestamp is within 5 minutes of now, so feed it fresh
deliveries. Exit status 0 unless the input could not be read at all.

Used by crates/webhooks/tests/standard_webhooks.rs; end-to-end tests can feed it the requests
their receiver captured.
"""

import json
import sys

from standardwebhooks import Webhook


def check(line: str) -> str:
    try:
        delivery = json.loads(line)
        secrets = delivery["secrets"]
        headers = delivery["headers"]
        body = delivery["body"]
    except (ValueError, KeyError, TypeError) as error:
        return f"fail: bad input line: {type(error).__name__}: {error}"
    if not isinstance(secrets, list) or not secrets:
        return "fail: bad input line: secrets must be a non-empty list"
    for index, secret in enumerate(secrets):
        try:
            Webhook(secret).verify(body, headers)
        except Exception as error:  # the library raises several kinds; all are a failed check
            return f"fail: secret {index}: {type(error).__name__}: {error}"
    return "ok"


def main() -> int:
    for line in sys.stdin:
        if not line.strip():
            continue
        print(check(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
