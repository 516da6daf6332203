"""notify running in-process against the SendGrid and FCM contract fakes, on the real suite."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from notify_testkit import fcm, notify, publish, sendgrid, signer

__all__ = ["fcm", "notify", "publish", "sendgrid", "signer"]
