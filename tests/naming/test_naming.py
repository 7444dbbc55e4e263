"""Realm codes derived exactly as TheNodes' to_kebab_ascii_strict, and checked as file names."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from thenodes_naming import realm_code, realm_code_problem
from thenodes_naming.latin_ascii import LATIN_ASCII, LATIN_BLOCKS

# Every assertion of TheNodes' tests/utils_naming.rs, in its order.
THENODES_VECTORS = [
    ("My Cool Realm", "my-cool-realm"),
    ("hello_world", "hello-world"),
    ("Foo-Bar", "foo-bar"),
    ("--Hello__World--", "hello-world"),
    ("  A   B  C  ", "a-b-c"),
    ("こんにちは", "default"),
    ("Déjà Vu!", "deja-vu"),
    ("", "default"),
    ("ÅÄÖ", "aao"),
    ("åäö", "aao"),
    ("Smörgåsbord", "smorgasbord"),
    ("BRÄNNVIN", "brannvin"),
    ("für", "fuer"),
]


@pytest.mark.parametrize(("name", "code"), THENODES_VECTORS)
def test_every_vector_of_thenodes_naming_tests(name: str, code: str) -> None:
    assert realm_code(name) == code


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("Für Elise", "fuer-elise"),  # ü is "ue" in either case
        ("ÜBER", "ueber"),
        ("Straße", "strasse"),
        ("Æsir Øst", "aesir-ost"),
        ("Łódź", "lodz"),
        ("ĳssel", "ijssel"),
        ("\u00d7", "x"),  # the multiplication sign; deunicode: "x", anyascii would say "*"
        ("ĸ", "k"),  # deunicode: "k"; anyascii would say "q"
        ("aƏb", "a-b"),  # deunicode: "@", no letter: a separator
        ("a÷b", "a-b"),
        ("日本 Realm", "realm"),  # other scripts are separators, not transliterated
        ("Main v2.0", "main-v2-0"),
        ("😀", "default"),
    ],
)
def test_latin_letters_follow_deunicode_and_everything_else_separates(name: str, code: str) -> None:
    assert realm_code(name) == code


def test_every_latin_character_is_derived_and_agrees_with_its_unicode_decomposition() -> None:
    decomposed = 0
    for low, high in LATIN_BLOCKS:
        for point in range(low, high + 1):
            ch = chr(point)
            code = realm_code(f"Realm {ch}x")
            assert re.fullmatch(r"realm-([a-z0-9]+-?)?x", code), (hex(point), code)
            base = "".join(
                c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c)
            )
            if ch not in "üÜ" and base.isascii() and base.isalnum():
                assert code == f"realm-{base.lower()}x", hex(point)
                decomposed += 1
    assert decomposed > 500


def test_the_table_covers_exactly_the_latin_blocks_with_lowercase_letters_and_digits() -> None:
    points = {p for low, high in LATIN_BLOCKS for p in range(low, high + 1)}
    assert set(LATIN_ASCII) == points
    assert all(re.fullmatch(r"[a-z0-9]*", kept) for kept in LATIN_ASCII.values())
    assert LATIN_ASCII[ord("é")] == "e"
    assert LATIN_ASCII[ord("ß")] == "ss"
    assert LATIN_ASCII[ord("÷")] == ""


@given(st.text())
@example("CON")
@example("nul.txt")
@example("a" * 65)
@example("..")
@example("-._-")
def test_a_derived_code_is_always_a_kebab_word_and_usable_unless_long_or_a_device(
    name: str,
) -> None:
    code = realm_code(name)
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", code)
    problem = realm_code_problem(code)
    if (
        len(code) <= 64
        and code not in {"con", "prn", "aux", "nul"}
        and not re.fullmatch(r"(com|lpt)[1-9]", code)
    ):
        assert problem is None
    else:
        assert problem is not None


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=40))
def test_ascii_names_keep_their_letters_and_digits_in_order(name: str) -> None:
    code = realm_code(name)
    kept = "".join(ch.lower() for ch in name if ch.isalnum())
    assert code.replace("-", "") == (kept or "default")


@pytest.mark.parametrize(
    "code",
    [".", "..", "-a", "A", "a/b", "a\\b", "a\x00", "con", "lpt1.log", "a" * 65, ""],
)
def test_a_code_that_cannot_name_a_file_is_refused(code: str) -> None:
    assert realm_code_problem(code) is not None


@pytest.mark.parametrize("code", ["a", "example", "ex.main_1", "0", "a" * 64, "cons", "com0"])
def test_a_code_that_can_name_a_file_is_accepted(code: str) -> None:
    assert realm_code_problem(code) is None
