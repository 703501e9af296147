from __future__ import annotations

from gateway.auth import hash_api_key, key_matches, new_api_key


def test_new_keys_are_random_and_verify_only_against_their_own_hash() -> None:
    key_a, hash_a = new_api_key()
    key_b, hash_b = new_api_key()
    assert key_a != key_b and key_a not in hash_a
    assert hash_a == hash_api_key(key_a)
    assert key_matches(key_a, [hash_b, hash_a])
    assert not key_matches(key_b, [hash_a])
