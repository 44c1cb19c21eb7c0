"""The office signing key: Ed25519, used to sign custody heads (the witness) and meeting-pack manifests.

The private key is a PKCS#8 PEM file created owner-only (0600) in a folder that is owner-only too
(``<workspace>/keys/`` by default; ``--key`` or ``$VAUDIT_SIGNING_KEY`` point elsewhere, e.g. a USB stick
or another account's folder). The public key is written beside it (``.pub``: the raw 32 bytes in base64)
and is what a meeting checks packs against; its fingerprint is short enough to print on paper.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .workspace import Workspace

KEY_ENV = "VAUDIT_SIGNING_KEY"


class SigningKeyError(Exception):
    """A key that cannot be made, read or used as asked (user-facing)."""


def fingerprint(public_raw: bytes) -> str:
    """First 128 bits of SHA-256 of the raw public key, in groups of 4 hex digits (for paperwork)."""
    h = hashlib.sha256(public_raw).hexdigest()[:32]
    return " ".join(h[i:i + 4] for i in range(0, 32, 4))


def normalise_fingerprint(fp: str) -> str:
    return "".join(fp.split()).replace(":", "").replace("-", "").lower()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def key_path(ws: Workspace, override: Path | str | None = None) -> Path:
    """``override`` (``--key``), then ``$VAUDIT_SIGNING_KEY``, then ``<workspace>/keys/office-signing-key.pem``."""
    chosen = override or os.environ.get(KEY_ENV)
    return Path(chosen).expanduser().absolute() if chosen else ws.signing_key


def public_path(private: Path) -> Path:
    return private.with_suffix(".pub")


@dataclass(frozen=True)
class PublicKey:
    raw: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.raw)

    @property
    def text(self) -> str:
        return b64(self.raw)

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True

    @classmethod
    def parse(cls, text: str) -> PublicKey:
        """A public key as ``keys show`` prints it (base64 of 32 bytes, or 64 hex digits), or a file holding one.
        The pack's standalone checker reads keys the same way: one parser, kept there (it may import nothing)."""
        from .export.verify_pack import parse_key

        try:
            return cls(parse_key(text))
        except ValueError:
            raise SigningKeyError(f"not an Ed25519 public key (base64 of 32 bytes, or 64 hex digits): {text!r}") from None


@dataclass(frozen=True)
class SigningKey:
    path: Path
    private: Ed25519PrivateKey

    @property
    def public(self) -> PublicKey:
        return PublicKey(self.private.public_key().public_bytes(serialization.Encoding.Raw,
                                                                  serialization.PublicFormat.Raw))

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)


def init(path: Path) -> SigningKey:
    """Create a new key at ``path`` (0600, folder 0700); never overwrites an existing one."""
    path = Path(path)
    if path.exists():
        raise SigningKeyError(f"{path} already exists: a signing key is never overwritten (packs were signed with it)")
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    sk = SigningKey(path, key)
    public_path(path).write_text(sk.public.text + "\n", encoding="ascii")
    return sk


def load(path: Path) -> SigningKey | None:
    """The signing key at ``path``, or None when there is none. Refuses a key others can read."""
    path = Path(path)
    if not path.exists():
        return None
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise SigningKeyError(f"{path} can be read by others (mode {mode:o}): chmod 600 it (and consider the key exposed)")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as e:
        raise SigningKeyError(f"{path} is not a usable signing key: {e}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} is not an Ed25519 key")
    return SigningKey(path, key)


def load_public(path: Path) -> PublicKey | None:
    """The public key for the private key at ``path``: from the private key if readable, else its ``.pub``."""
    path = Path(path)
    if path.exists():
        try:
            sk = load(path)
        except SigningKeyError:
            sk = None
        if sk:
            return sk.public
    pub = public_path(path)
    if pub.is_file():
        return PublicKey.parse(pub.read_text(encoding="ascii", errors="replace"))
    return None
