"""The vendor's page fingerprint (do not change): synchronous, about 0.25 s a page."""

import hashlib
import time


def fingerprint(body: bytes) -> str:
    time.sleep(0.25)  # the vendor's native code runs here
    return hashlib.sha256(body).hexdigest()
