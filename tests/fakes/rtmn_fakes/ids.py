"""Provider-shaped ids that are deterministic yet never repeat within a test process.

One counter serves every fake, so ids stay unique across fake instances and `reset()`:
a service's database that outlives one fake never sees the same order id twice.
"""

from __future__ import annotations

import itertools
import threading

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
HEX = "0123456789abcdef"

_counter = itertools.count(1)
_lock = threading.Lock()


def _encode(number: int, alphabet: str, width: int) -> str:
    digits = []
    while number:
        number, digit = divmod(number, len(alphabet))
        digits.append(alphabet[digit])
    return "".join(reversed(digits)).rjust(width, alphabet[0])


def next_id(prefix: str, width: int = 14, alphabet: str = BASE62, *, tag: str = "Fk") -> str:
    """`prefix` + `tag` + a counter, e.g. next_id("order_") == "order_Fk000000000001"."""
    with _lock:
        number = next(_counter)
    return prefix + tag + _encode(number, alphabet, width - len(tag))
