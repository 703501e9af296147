"""The fast check-character arithmetic agrees with the standard's formulas, written out plainly here,
on many random values (identifiers.md §1-§3)."""

from __future__ import annotations

import random

from mapping.identifiers import org_check_char, ric_check_char, uscc_check_char

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
ORG_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def plain_uscc_check(body17: str) -> str:
    weights = [pow(3, i, 31) for i in range(17)]
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(body17, weights, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def plain_org_check(body8: str) -> str:
    total = sum(ORG_ALPHABET.index(c) * w for c, w in zip(body8, (3, 7, 9, 10, 5, 8, 4, 2), strict=True))
    r = 11 - total % 11
    return "X" if r == 10 else "0" if r == 11 else str(r)


def plain_ric_check(body17: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return "10X98765432"[sum(int(c) * w for c, w in zip(body17, weights, strict=True)) % 11]


def test_check_characters_match_the_formulas_on_random_values() -> None:
    rng = random.Random(20251130)
    for _ in range(20_000):
        uscc = "".join(rng.choice(USCC_ALPHABET) for _ in range(17))
        org = "".join(rng.choice(ORG_ALPHABET) for _ in range(8))
        ric = "".join(rng.choice("0123456789") for _ in range(17))
        assert uscc_check_char(uscc) == plain_uscc_check(uscc)
        assert org_check_char(org) == plain_org_check(org)
        assert ric_check_char(ric) == plain_ric_check(ric)


def test_check_identifier_accepts_exactly_the_values_the_formulas_accept() -> None:
    from mapping.identifiers import check_identifier

    rng = random.Random(7)
    for _ in range(5_000):
        org_body = "".join(rng.choice(USCC_ALPHABET) for _ in range(8))
        head = rng.choice("123456789ANY") + rng.choice("123459") + "".join(rng.choice("0123456789") for _ in range(6))
        first17 = head + org_body + plain_org_check(org_body)
        uscc = first17 + plain_uscc_check(first17)
        assert not [f for f in check_identifier("uscc", uscc) if f.severity == "error"], uscc
        wrong = next(c for c in USCC_ALPHABET if c != uscc[-1])
        assert "IDENTIFIER_CHECKSUM" in {f.code for f in check_identifier("uscc", uscc[:-1] + wrong)}
        born = f"{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        ric17 = f"330106{born}{rng.randint(0, 999):03d}"
        ric = ric17 + plain_ric_check(ric17)
        assert not [f for f in check_identifier("ric", ric) if f.severity == "error"]
        wrong_ric = ric17 + next(c for c in "0123456789X" if c != ric[-1])
        assert "IDENTIFIER_CHECKSUM" in {f.code for f in check_identifier("ric", wrong_ric)}
