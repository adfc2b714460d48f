"""RMCP+ algorithms and cipher suites (IPMI 2.0 sections 13.28-13.32, table 22-20).

Pure functions, no state: the session layer (vhw.ipmi.wire.rmcpplus) keeps the
keys.  HMACs and hashes come from ``hmac``/``hashlib``, AES-CBC-128 from the
``cryptography`` package; nothing here is hand-rolled.

Key derivation (section 13.31/13.32):

* RAKP 2 HMAC  = HMAC_Kuid(SIDm | SIDc | Rm | Rc | GUIDc | RoleM | ULenM | UNameM)
* RAKP 3 HMAC  = HMAC_Kuid(Rc | SIDm | RoleM | ULenM | UNameM)
* SIK          = HMAC_Kg(Rm | Rc | RoleM | ULenM | UNameM), Kg = K_G if set, else Kuid
* RAKP 4 ICV   = HMAC_SIK(Rm | SIDc | GUIDc), truncated (12 bytes SHA1, 16 MD5/SHA256)
* K1 / K2      = HMAC_SIK(0x01 * 20) / HMAC_SIK(0x02 * 20)

The constants are 20 bytes for every authentication algorithm, SHA-256
included: that is what the measured clients (ipmitool, FreeIPMI) compute, and
a BMC must agree with its clients.  Session IDs are little-endian 32-bit.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

# -- algorithm numbers (table 13-17/13-18/13-19) ------------------------------------

AUTH_NONE, AUTH_HMAC_SHA1, AUTH_HMAC_MD5, AUTH_HMAC_SHA256 = 0x00, 0x01, 0x02, 0x03
INTEG_NONE, INTEG_HMAC_SHA1_96, INTEG_HMAC_MD5_128, INTEG_MD5_128, INTEG_HMAC_SHA256_128 = 0, 1, 2, 3, 4
CONF_NONE, CONF_AES_CBC_128 = 0x00, 0x01

AUTH_NAMES = {AUTH_NONE: "RAKP-none", AUTH_HMAC_SHA1: "RAKP-HMAC-SHA1", AUTH_HMAC_MD5: "RAKP-HMAC-MD5",
              AUTH_HMAC_SHA256: "RAKP-HMAC-SHA256"}
INTEG_NAMES = {INTEG_NONE: "none", INTEG_HMAC_SHA1_96: "HMAC-SHA1-96", INTEG_HMAC_MD5_128: "HMAC-MD5-128",
               INTEG_MD5_128: "MD5-128", INTEG_HMAC_SHA256_128: "HMAC-SHA256-128"}
CONF_NAMES = {CONF_NONE: "none", CONF_AES_CBC_128: "AES-CBC-128"}

#: Hash behind each RAKP authentication algorithm.
_AUTH_HASH = {AUTH_HMAC_SHA1: hashlib.sha1, AUTH_HMAC_MD5: hashlib.md5, AUTH_HMAC_SHA256: hashlib.sha256}
#: RAKP 4 integrity check value length per authentication algorithm (13.31).
_ICV_LENGTH = {AUTH_NONE: 0, AUTH_HMAC_SHA1: 12, AUTH_HMAC_MD5: 16, AUTH_HMAC_SHA256: 16}
#: AuthCode length per integrity algorithm (13.28.x).
AUTHCODE_LENGTH = {INTEG_NONE: 0, INTEG_HMAC_SHA1_96: 12, INTEG_HMAC_MD5_128: 16, INTEG_MD5_128: 16,
                   INTEG_HMAC_SHA256_128: 16}

#: Length of the key-derivation constants (see the module docstring).
KEY_CONSTANT_LENGTH = 20
#: The IPMI 2.0 password field is 20 bytes; shorter keys are NUL padded.
PASSWORD_LENGTH = 20
AES_BLOCK = 16
#: The confidentiality trailer per pad length n: 01 02 .. n, then n (13.29.1).
_PADDING = tuple(bytes(range(1, n + 1)) + bytes([n]) for n in range(AES_BLOCK))


@dataclass(frozen=True)
class CipherSuite:
    id: int
    auth: int
    integrity: int
    confidentiality: int

    def __str__(self) -> str:
        return (f"suite {self.id}: {AUTH_NAMES[self.auth]}, {INTEG_NAMES[self.integrity]}, "
                f"{CONF_NAMES[self.confidentiality]}")


#: IPMI 2.0 table 22-20, the suites vhw implements (the RC4 ones are left out).
CIPHER_SUITES: dict[int, CipherSuite] = {s.id: s for s in (
    CipherSuite(0, AUTH_NONE, INTEG_NONE, CONF_NONE),
    CipherSuite(1, AUTH_HMAC_SHA1, INTEG_NONE, CONF_NONE),
    CipherSuite(2, AUTH_HMAC_SHA1, INTEG_HMAC_SHA1_96, CONF_NONE),
    CipherSuite(3, AUTH_HMAC_SHA1, INTEG_HMAC_SHA1_96, CONF_AES_CBC_128),
    CipherSuite(6, AUTH_HMAC_MD5, INTEG_NONE, CONF_NONE),
    CipherSuite(7, AUTH_HMAC_MD5, INTEG_HMAC_MD5_128, CONF_NONE),
    CipherSuite(8, AUTH_HMAC_MD5, INTEG_HMAC_MD5_128, CONF_AES_CBC_128),
    CipherSuite(11, AUTH_HMAC_MD5, INTEG_MD5_128, CONF_NONE),
    CipherSuite(12, AUTH_HMAC_MD5, INTEG_MD5_128, CONF_AES_CBC_128),
    CipherSuite(15, AUTH_HMAC_SHA256, INTEG_NONE, CONF_NONE),
    CipherSuite(16, AUTH_HMAC_SHA256, INTEG_HMAC_SHA256_128, CONF_NONE),
    CipherSuite(17, AUTH_HMAC_SHA256, INTEG_HMAC_SHA256_128, CONF_AES_CBC_128),
)}


def find_suite(auth: int, integrity: int, confidentiality: int, enabled: tuple[int, ...]) -> CipherSuite | None:
    """The enabled suite with exactly these algorithms, or None."""
    for sid in enabled:
        s = CIPHER_SUITES.get(sid)
        if s is not None and (s.auth, s.integrity, s.confidentiality) == (auth, integrity, confidentiality):
            return s
    return None


def pad_key(key: bytes) -> bytes:
    """A password or K_G as the 20-byte IPMI 2.0 key field (NUL padded)."""
    return bytes(key)[:PASSWORD_LENGTH].ljust(PASSWORD_LENGTH, b"\x00")


def _hmac(auth: int, key: bytes, data: bytes) -> bytes:
    if auth == AUTH_NONE:
        return b""
    return hmac.new(pad_key(key) if len(key) <= PASSWORD_LENGTH else key, data, _AUTH_HASH[auth]).digest()


def _role_name(role: int, name: bytes) -> bytes:
    return bytes([role & 0xFF, len(name)]) + bytes(name)


def _sid(value: int) -> bytes:
    return (value & 0xFFFFFFFF).to_bytes(4, "little")


# -- RAKP (section 13.31) -------------------------------------------------------------

def rakp2_auth_code(auth: int, kuid: bytes, console_sid: int, bmc_sid: int, rm: bytes, rc: bytes,
                    guid: bytes, role: int, name: bytes) -> bytes:
    """RAKP message 2 key exchange authentication code (table 13-19)."""
    return _hmac(auth, kuid, _sid(console_sid) + _sid(bmc_sid) + rm + rc + guid + _role_name(role, name))


def rakp3_auth_code(auth: int, kuid: bytes, rc: bytes, console_sid: int, role: int, name: bytes) -> bytes:
    """RAKP message 3 key exchange authentication code (table 13-20)."""
    return _hmac(auth, kuid, rc + _sid(console_sid) + _role_name(role, name))


def session_integrity_key(auth: int, kg: bytes, rm: bytes, rc: bytes, role: int, name: bytes) -> bytes:
    """SIK (section 13.31): HMAC keyed by K_G (or Kuid when no BMC key is set)."""
    return _hmac(auth, kg, rm + rc + _role_name(role, name))


def rakp4_icv(auth: int, sik: bytes, rm: bytes, bmc_sid: int, guid: bytes) -> bytes:
    """RAKP message 4 integrity check value (table 13-21), truncated per algorithm."""
    if auth == AUTH_NONE:
        return b""
    return hmac.new(sik, rm + _sid(bmc_sid) + guid, _AUTH_HASH[auth]).digest()[:_ICV_LENGTH[auth]]


def derive_k(auth: int, sik: bytes, n: int) -> bytes:
    """K1 (n=1, integrity) or K2 (n=2, confidentiality): HMAC_SIK(n repeated)."""
    if auth == AUTH_NONE:
        return b""
    return hmac.new(sik, bytes([n]) * KEY_CONSTANT_LENGTH, _AUTH_HASH[auth]).digest()


# -- integrity (section 13.28) ----------------------------------------------------------

def auth_code(integrity: int, k1: bytes, password: bytes, data: bytes) -> bytes:
    """AuthCode over ``data`` (session header's auth type byte through Next Header)."""
    if integrity == INTEG_NONE:
        return b""
    if integrity == INTEG_HMAC_SHA1_96:
        return hmac.new(k1, data, hashlib.sha1).digest()[:12]
    if integrity == INTEG_HMAC_MD5_128:
        return hmac.new(k1, data, hashlib.md5).digest()
    if integrity == INTEG_MD5_128:
        pw = pad_key(password)
        return hashlib.md5(pw + data + pw).digest()
    if integrity == INTEG_HMAC_SHA256_128:
        return hmac.new(k1, data, hashlib.sha256).digest()[:16]
    raise ValueError(f"integrity algorithm {integrity:#x}")


def verify_auth_code(integrity: int, k1: bytes, password: bytes, data: bytes, code: bytes) -> bool:
    return hmac.compare_digest(auth_code(integrity, k1, password, data), bytes(code))


# -- confidentiality (section 13.29) -------------------------------------------------------

def _pad(plain: bytes) -> bytes:
    """The data and its confidentiality trailer, a whole number of AES blocks (13.29.1)."""
    n = (AES_BLOCK - (len(plain) + 1) % AES_BLOCK) % AES_BLOCK
    return bytes(plain) + _PADDING[n]


def _unpad(plain: bytes) -> bytes | None:
    """The data before the confidentiality trailer; None if the trailer is not 01 02 .. n, n."""
    n = plain[-1]
    if n >= AES_BLOCK or n + 1 > len(plain):
        return None
    if plain[-1 - n:-1] != _PADDING[n][:-1]:
        return None
    return plain[:-1 - n]


def _whole_blocks(payload: bytes) -> bool:
    """IV and at least one block, nothing partial."""
    return len(payload) >= 2 * AES_BLOCK and not len(payload) % AES_BLOCK


def aes_encrypt(k2: bytes, plain: bytes, iv: bytes | None = None) -> bytes:
    """AES-CBC-128: IV | E(data | 01 02 .. n | n), key K2[0:16] (13.29, 13.29.1)."""
    iv = secrets.token_bytes(AES_BLOCK) if iv is None else bytes(iv)
    enc = Cipher(algorithms.AES(k2[:16]), modes.CBC(iv)).encryptor()
    return iv + enc.update(_pad(plain)) + enc.finalize()


def aes_decrypt(k2: bytes, payload: bytes) -> bytes | None:
    """The inverse of ``aes_encrypt``; None if the payload is malformed."""
    if not _whole_blocks(payload):
        return None
    iv, body = payload[:AES_BLOCK], payload[AES_BLOCK:]
    dec = Cipher(algorithms.AES(k2[:16]), modes.CBC(iv)).decryptor()
    return _unpad(dec.update(body) + dec.finalize())


class CbcStream:
    """AES-CBC-128 for every packet of one session from one pair of cipher contexts.

    A CBC context carries the last ciphertext block as the next block's IV,
    so one context made at key derivation serves every packet (making one
    per packet is most of the cost of a small packet):

    * decrypt: the packet's IV goes through first; its output is dropped and
      the context's chaining block is then that IV, so the packet's blocks
      decrypt exactly as under ``aes_decrypt``;
    * encrypt: a fresh random block goes through first; its output
      E(R xor previous block) is this packet's IV, unpredictable because R is
      (an IV made with the forward cipher from fresh randomness, NIST SP
      800-38A appendix C), and the data's blocks chain from it, as under
      ``aes_encrypt`` with that IV.

    Only whole blocks ever go in, so the contexts never hold a partial
    block between packets.  One caller at a time (the BMC's rule).
    """

    def __init__(self, key: Any) -> None:
        self._enc = Cipher(key, modes.CBC(bytes(AES_BLOCK))).encryptor()
        self._dec = Cipher(key, modes.CBC(bytes(AES_BLOCK))).decryptor()

    def encrypt(self, plain: bytes) -> bytes:
        out: bytes = self._enc.update(secrets.token_bytes(AES_BLOCK) + _pad(plain))
        return out

    def decrypt(self, payload: bytes) -> bytes | None:
        if not _whole_blocks(payload):
            return None
        plain: bytes = self._dec.update(bytes(payload))
        return _unpad(plain[AES_BLOCK:])


#: The hash of each HMAC integrity algorithm and its AuthCode length (13.28.x).
_INTEGRITY_HMAC = {INTEG_HMAC_SHA1_96: (hashlib.sha1, 12), INTEG_HMAC_MD5_128: (hashlib.md5, 16),
                   INTEG_HMAC_SHA256_128: (hashlib.sha256, 16)}


class SessionKeys:
    """What a session needs to protect its payloads, derived once after RAKP 3.

    Every packet of a session is keyed the same way, so the keyed HMAC state
    and the AES-CBC contexts (``CbcStream``) are made once here and reused.
    The keys are fixed at construction; nothing changes them afterwards.
    """

    def __init__(self, suite: CipherSuite, sik: bytes = b"", k1: bytes = b"", k2: bytes = b"",
                 password: bytes = b"") -> None:
        self.suite = suite
        self.sik = sik
        self.k1 = k1
        self.k2 = k2
        #: The user's password field (MD5-128 integrity hashes with it directly).
        self.password = password
        spec = _INTEGRITY_HMAC.get(suite.integrity)
        self._hmac: Any = hmac.new(k1, digestmod=spec[0]) if spec is not None and k1 else None
        self._code_length = spec[1] if spec is not None else 0
        self._cbc = (CbcStream(algorithms.AES(k2[:16])) if suite.confidentiality == CONF_AES_CBC_128
                     and len(k2) >= 16 else None)

    def __repr__(self) -> str:
        return f"SessionKeys(suite={self.suite.id})"

    @classmethod
    def derive(cls, suite: CipherSuite, kuid: bytes, kg: bytes | None, rm: bytes, rc: bytes,
               role: int, name: bytes) -> SessionKeys:
        sik = session_integrity_key(suite.auth, kg or kuid, rm, rc, role, name)
        return cls(suite, sik, derive_k(suite.auth, sik, 1), derive_k(suite.auth, sik, 2), bytes(kuid))

    def auth_code(self, data: bytes) -> bytes:
        keyed = self._hmac
        if keyed is None:
            return auth_code(self.suite.integrity, self.k1, self.password, data)
        h = keyed.copy()
        h.update(data)
        return h.digest()[:self._code_length]

    def verify(self, data: bytes, code: bytes) -> bool:
        return hmac.compare_digest(self.auth_code(data), bytes(code))

    def encrypt(self, plain: bytes) -> bytes:
        if self.suite.confidentiality != CONF_AES_CBC_128:
            return bytes(plain)
        if self._cbc is None:
            return aes_encrypt(self.k2, plain)
        return self._cbc.encrypt(plain)

    def decrypt(self, payload: bytes) -> bytes | None:
        if self.suite.confidentiality != CONF_AES_CBC_128:
            return bytes(payload)
        if self._cbc is None:
            return aes_decrypt(self.k2, payload)
        return self._cbc.decrypt(payload)
