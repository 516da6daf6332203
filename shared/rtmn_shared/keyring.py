"""The key ring sealing stored secrets: versioned AES-256-GCM keys from one setting.

`SECRETS_KEYS="v2:<base64 32 bytes>,v1:<base64 32 bytes>"`: the first key encrypts, every key in
the ring decrypts. A ciphertext names the version of the key that sealed it, so during a rotation
readers take old and new rows alike while a batch job moves rows to the current key.

AES-256-GCM with a random 96-bit nonce per seal; the associated data binds a ciphertext to its key
version and to the name it is stored under, so a row copied onto another name does not decrypt.
Settings parse the ring with this module; the store that keeps the rows is secrets.py.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_FORMAT = 1
_NONCE_BYTES = 12
_KEY_BYTES = 32
_VERSION = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class SecretsError(Exception):
    """A secret could not be sealed or opened; the message never contains key or plaintext."""


class KeyRingError(SecretsError):
    """SECRETS_KEYS is malformed."""


class UnknownKeyVersion(SecretsError):
    """The ciphertext was sealed with a key that is no longer (or never was) in the ring."""


class TamperedSecret(SecretsError):
    """The ciphertext is malformed or was altered, or belongs to another name."""


def generate_key() -> str:
    """A fresh key for the ring, as its base64 text."""
    return base64.b64encode(AESGCM.generate_key(bit_length=_KEY_BYTES * 8)).decode()


@dataclass(frozen=True)
class KeyRing:
    keys: Mapping[str, bytes]  # version -> key, the current one first
    current: str

    @classmethod
    def parse(cls, spec: str) -> KeyRing:
        """`"v2:<base64>,v1:<base64>"`: the first is the current key."""
        keys: dict[str, bytes] = {}
        for entry in (part.strip() for part in spec.split(",")):
            if not entry:
                continue
            version, sep, encoded = entry.partition(":")
            version = version.strip()
            if not sep or not _VERSION.match(version):
                raise KeyRingError(f"SECRETS_KEYS: {version!r} is not a version name (v1, 2026a…)")
            if version in keys:
                raise KeyRingError(f"SECRETS_KEYS: version {version!r} appears twice")
            keys[version] = _decode_key(version, encoded.strip())
        if not keys:
            raise KeyRingError("SECRETS_KEYS holds no key")
        return cls(keys, next(iter(keys)))

    def encrypt(self, plaintext: str, *, name: str = "") -> bytes:
        version = self.current.encode()
        header = bytes([_FORMAT, len(version)]) + version
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(self.keys[self.current]).encrypt(
            nonce, plaintext.encode(), header + name.encode()
        )
        return header + nonce + sealed

    def decrypt(self, ciphertext: bytes, *, name: str = "") -> str:
        version, header, body = _split(ciphertext)
        key = self.keys.get(version)
        if key is None:
            raise UnknownKeyVersion(
                f"sealed with key {version!r}, which SECRETS_KEYS no longer holds"
                f" (it holds {', '.join(self.keys)})"
            )
        try:
            plain = AESGCM(key).decrypt(
                body[:_NONCE_BYTES], body[_NONCE_BYTES:], header + name.encode()
            )
        except InvalidTag:
            raise TamperedSecret(f"a secret sealed with {version!r} failed its check") from None
        return plain.decode()

    def rotate(self, ciphertext: bytes, *, name: str = "") -> bytes:
        """The same secret sealed with the current key (unchanged if it already is)."""
        if version_of(ciphertext) == self.current:
            self.decrypt(ciphertext, name=name)  # still proves it is intact
            return ciphertext
        return self.encrypt(self.decrypt(ciphertext, name=name), name=name)


def version_of(ciphertext: bytes) -> str:
    return _split(ciphertext)[0]


def _split(ciphertext: bytes) -> tuple[str, bytes, bytes]:
    if len(ciphertext) < 2 or ciphertext[0] != _FORMAT:
        raise TamperedSecret("not a sealed secret of a known format")
    end = 2 + ciphertext[1]
    body = ciphertext[end:]
    if len(body) < _NONCE_BYTES + 16:
        raise TamperedSecret("a sealed secret too short to be one")
    try:
        version = ciphertext[2:end].decode("ascii")
    except UnicodeDecodeError:
        raise TamperedSecret("a sealed secret with an unreadable key version") from None
    return version, ciphertext[:end], body


def _decode_key(version: str, encoded: str) -> bytes:
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != _KEY_BYTES:
        raise KeyRingError(f"SECRETS_KEYS: key {version!r} must be {_KEY_BYTES} bytes of base64")
    return key
