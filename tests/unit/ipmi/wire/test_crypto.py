"""RMCP+ algorithms (IPMI 2.0 sections 13.28-13.32, table 22-20), checked against the spec formulas."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from vhw.ipmi.wire import crypto
from vhw.ipmi.wire.crypto import CIPHER_SUITES, SessionKeys

RM, RC = bytes(range(16)), bytes(range(16, 32))
GUID = bytes(range(0xA0, 0xB0))
NAME, PW = b"admin", b"password"
ROLE = 0x14  # name-only lookup, ADMINISTRATOR
HASHES = {crypto.AUTH_HMAC_SHA1: hashlib.sha1, crypto.AUTH_HMAC_MD5: hashlib.md5,
          crypto.AUTH_HMAC_SHA256: hashlib.sha256}


def test_cipher_suite_table_matches_table_22_20():
    """Table 22-20: suite -> (authentication, integrity, confidentiality) for the non-RC4 suites."""
    expect = {0: (0, 0, 0), 1: (1, 0, 0), 2: (1, 1, 0), 3: (1, 1, 1), 6: (2, 0, 0), 7: (2, 2, 0), 8: (2, 2, 1),
              11: (2, 3, 0), 12: (2, 3, 1), 15: (3, 0, 0), 16: (3, 4, 0), 17: (3, 4, 1)}
    assert {i: (s.auth, s.integrity, s.confidentiality) for i, s in CIPHER_SUITES.items()} == expect


@pytest.mark.parametrize("auth", sorted(HASHES))
def test_rakp_codes_follow_section_13_31(auth):
    """13.31: RAKP 2 = HMAC_Kuid(SIDm|SIDc|Rm|Rc|GUIDc|RoleM|ULenM|UNameM);
    RAKP 3 = HMAC_Kuid(Rc|SIDm|RoleM|ULenM|UNameM); SIK = HMAC_Kg(Rm|Rc|RoleM|ULenM|UNameM);
    RAKP 4 ICV = HMAC_SIK(Rm|SIDc|GUIDc) truncated to 12 (SHA1) / 16 (MD5, SHA256) bytes."""
    h = HASHES[auth]
    key = PW.ljust(20, b"\0")
    sidm, sidc = (0x11223344).to_bytes(4, "little"), (0xA0B0C0D0).to_bytes(4, "little")
    tail = bytes([ROLE, len(NAME)]) + NAME
    assert crypto.rakp2_auth_code(auth, PW, 0x11223344, 0xA0B0C0D0, RM, RC, GUID, ROLE, NAME) == \
        hmac.new(key, sidm + sidc + RM + RC + GUID + tail, h).digest()
    assert crypto.rakp3_auth_code(auth, PW, RC, 0x11223344, ROLE, NAME) == \
        hmac.new(key, RC + sidm + tail, h).digest()
    sik = hmac.new(key, RM + RC + tail, h).digest()
    assert crypto.session_integrity_key(auth, PW, RM, RC, ROLE, NAME) == sik
    icv = hmac.new(sik, RM + sidc + GUID, h).digest()
    assert crypto.rakp4_icv(auth, sik, RM, 0xA0B0C0D0, GUID) == icv[:12 if auth == crypto.AUTH_HMAC_SHA1 else 16]


@pytest.mark.parametrize("suite_id", sorted(CIPHER_SUITES))
def test_every_suite_derives_keys_and_round_trips(suite_id):
    """13.32: K1 = HMAC_SIK(01h x 20), K2 = HMAC_SIK(02h x 20); K_G replaces Kuid in the SIK when set.
    13.28/13.29: the AuthCode verifies and AES-CBC-128 decrypts what was sent, tampering is caught."""
    suite = CIPHER_SUITES[suite_id]
    keys = SessionKeys.derive(suite, PW, None, RM, RC, ROLE, NAME)
    if suite.auth == crypto.AUTH_NONE:
        assert keys.sik == keys.k1 == keys.k2 == b""
    else:
        h = HASHES[suite.auth]
        assert keys.k1 == hmac.new(keys.sik, b"\x01" * 20, h).digest()
        assert keys.k2 == hmac.new(keys.sik, b"\x02" * 20, h).digest()
        kg = SessionKeys.derive(suite, PW, b"bmckey", RM, RC, ROLE, NAME)
        assert kg.sik == crypto.session_integrity_key(suite.auth, b"bmckey", RM, RC, ROLE, NAME) != keys.sik
    data = bytes(range(40))
    code = keys.auth_code(data)
    assert len(code) == crypto.AUTHCODE_LENGTH[suite.integrity]
    assert keys.verify(data, code)
    if code:
        assert not keys.verify(data[:-1] + b"\xff", code)
    for n in (0, 1, 15, 16, 17, 100):
        assert keys.decrypt(keys.encrypt(bytes(n))) == bytes(n)


def test_md5_128_is_md5_of_password_data_password():
    """13.28.x MD5-128: MD5(password | data | password), the password as the 20-byte field."""
    pw = PW.ljust(20, b"\0")
    assert crypto.auth_code(crypto.INTEG_MD5_128, b"", PW, b"abc") == hashlib.md5(pw + b"abc" + pw).digest()


def test_integrity_truncation_lengths():
    """13.28: HMAC-SHA1-96 keeps 12 bytes, HMAC-MD5-128 16, HMAC-SHA256-128 16."""
    k1 = b"k" * 20
    assert crypto.auth_code(1, k1, b"", b"x") == hmac.new(k1, b"x", hashlib.sha1).digest()[:12]
    assert crypto.auth_code(2, k1, b"", b"x") == hmac.new(k1, b"x", hashlib.md5).digest()
    assert crypto.auth_code(4, k1, b"", b"x") == hmac.new(k1, b"x", hashlib.sha256).digest()[:16]


def test_aes_cbc_128_pad_is_1_2_3_then_length():
    """13.29.1: the confidentiality trailer pads with 01h 02h 03h .. then the pad length, to 16 bytes."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    k2, iv = bytes(range(20)), bytes(16)
    out = crypto.aes_encrypt(k2, b"hello", iv)
    assert out[:16] == iv and len(out) == 32
    dec = Cipher(algorithms.AES(k2[:16]), modes.CBC(iv)).decryptor()
    plain = dec.update(out[16:]) + dec.finalize()
    assert plain == b"hello" + bytes(range(1, 11)) + b"\x0a"
    assert crypto.aes_decrypt(k2, out) == b"hello"
    assert crypto.aes_decrypt(k2, out[:-1]) is None
    assert crypto.aes_decrypt(k2, out[:16]) is None


def test_a_session_encrypts_every_packet_under_its_own_unpredictable_iv():
    """13.29: each packet carries its IV; a session's packets must decrypt on their own, with
    any AES-CBC-128 implementation (here the one-shot aes_decrypt), in any order."""
    keys = SessionKeys.derive(crypto.CIPHER_SUITES[3], PW, None, RM, RC, ROLE, NAME)
    messages = [bytes([i]) * i for i in range(40)]
    packets = [keys.encrypt(m) for m in messages]
    assert len({p[:16] for p in packets}) == len(packets)  # no IV twice
    for m, p in reversed(list(zip(messages, packets, strict=True))):
        assert len(p) % 16 == 0 and len(p) >= 32
        assert crypto.aes_decrypt(keys.k2, p) == m


def test_a_session_decrypts_packets_from_any_encoder_whatever_came_before():
    """The console picks each packet's IV (13.29): a packet decrypts the same after packets of
    other lengths and after a malformed one that was refused."""
    keys = SessionKeys.derive(crypto.CIPHER_SUITES[17], PW, None, RM, RC, ROLE, NAME)
    ref = [crypto.aes_encrypt(keys.k2, bytes([i]) * (i * 3)) for i in range(20)]
    assert keys.decrypt(ref[5][:-3]) is None  # not whole blocks: refused, nothing consumed
    assert keys.decrypt(ref[5][:16]) is None  # an IV alone
    for i in (7, 0, 19, 3, 3, 12):
        assert keys.decrypt(ref[i]) == bytes([i]) * (i * 3)
    # A wrong trailer (13.29.1) is refused, and the next packet is unaffected.
    bad = bytearray(ref[4])
    bad[-1] ^= 0x55
    assert keys.decrypt(bytes(bad)) is None
    assert keys.decrypt(ref[9]) == bytes([9]) * 27
