"""Row-level validation: the README's codes (*Input*), in the order they are checked, and messages
that never quote a customer identifier."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bulkrevoke.ingest.validate import Verdict, validate

META = "698dae82d30c4f6b3da9dc06"
EARNED = "698daf848644c157e72d83f3"


def code(
    customer: str | None,
    id_type: str | None = None,
    *,
    meta: str | None = META,
    earned: str | None = EARNED,
    default: str = "id",
) -> str | None:
    return validate(meta, customer, earned, id_type, default).error_code


@pytest.mark.parametrize(
    ("customer", "id_type"),
    [
        ("566135941", None),
        ("0566135941", "id"),
        ("9223372036854775807", "ID"),
        ("9876543210", "mobile"),
        ("+919876543210", "Mobile"),
        ("jane@example.com", "email"),
        ("jane.doe+tag@mail.example.co", "E-Mail"),
        ("EXT-42/a", "externalId"),
        ("1.5", "external_id"),
        ("4111111111111111", "card number"),
        ("CARD-9", "cardNumber"),
    ],
)
def test_valid_records(customer: str, id_type: str | None) -> None:
    assert code(customer, id_type) is None


def test_fields_are_trimmed_and_the_identifier_type_spelled_canonically() -> None:
    verdict = validate(f"  {META}\t", " 566135941\r\n", f"\n{EARNED} ", " e-mail ", "id")
    assert verdict == Verdict(META, "566135941", "email", EARNED, "bad_customer_id", verdict.error_message)
    verdict = validate(META, " 566135941 ", EARNED, "  ", "mobile")
    assert (verdict.identifier_type, verdict.error_code) == ("mobile", None)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ((None, "1", EARNED, None), "715"),
        (("  ", "1", EARNED, None), "715"),
        ((META, "1", None, None), "813"),
        ((META, "1", "\t", None), "813"),
        ((META, None, EARNED, None), "missing_customer_id"),
        ((META, " \r\n", EARNED, None), "missing_customer_id"),
        ((META[:-1], "1", EARNED, None), "malformed_id"),
        ((META, "1", EARNED + "0", None), "malformed_id"),
        ((META.replace("a", "g"), "1", EARNED, None), "malformed_id"),
        ((META, "1", EARNED, "phone"), "bad_identifier_type"),
        ((META, "5.66135941E+8", EARNED, None), "spreadsheet_number"),
        ((META, "566135941.0", EARNED, "id"), "spreadsheet_number"),
        ((META, "9.87654321e9", EARNED, "mobile"), "spreadsheet_number"),
        ((META, "4.11111111111111E+15", EARNED, "cardNumber"), "spreadsheet_number"),
        ((META, "56613594x", EARNED, None), "bad_customer_id"),
        ((META, "-566135941", EARNED, None), "bad_customer_id"),
        ((META, "9223372036854775808", EARNED, None), "bad_customer_id"),
        ((META, "\u0665\u0666", EARNED, None), "bad_customer_id"),  # Arabic-Indic digits
        ((META, "98765-43210", EARNED, "mobile"), "bad_customer_id"),
        ((META, "12345", EARNED, "mobile"), "bad_customer_id"),
        ((META, "jane.example.com", EARNED, "email"), "bad_customer_id"),
        ((META, "jane@localhost", EARNED, "email"), "bad_customer_id"),
    ],
)
def test_each_code_the_readme_lists(fields: tuple[str | None, ...], expected: str) -> None:
    assert validate(*fields, "id").error_code == expected


def test_the_first_problem_is_the_one_reported() -> None:
    assert code(None, "bogus", meta=None, earned=None) == "715"
    assert code(None, "bogus", earned=None) == "813"
    assert code(None, "bogus") == "missing_customer_id"
    assert code("x", "bogus", earned="nothex") == "malformed_id"
    assert code("x", "bogus") == "bad_identifier_type"


@pytest.mark.parametrize(
    "inside",
    [
        "\n",
        "\r",
        "\r\n",
        "\t",
        "\x00",
        "\x1b",
        "\x85",
        "\u200b",
        "\u200e",
        "\u2028",
        "\u202e",
        "\u2060",
        "\ufeff",
        "\xad",
    ],
)
@pytest.mark.parametrize("id_type", ["id", "mobile", "email", "externalId", "cardNumber"])
def test_control_and_invisible_characters_inside_a_customer_id(inside: str, id_type: str) -> None:
    customer = {
        "id": "5661{}35941",
        "mobile": "+9198{}76543210",
        "email": "jane{}@example.com",
        "externalId": "EXT{}42",
        "cardNumber": "4111{}1111",
    }[id_type].format(inside)
    verdict = validate(META, customer, EARNED, id_type, "id")
    assert verdict.error_code == "bad_customer_id"
    assert "control or invisible character" in (verdict.error_message or "")


def test_external_ids_are_free_text_but_numeric_types_refuse_spreadsheet_forms() -> None:
    assert code("5.66135941E+8", "externalId") is None
    for id_type in ("id", "mobile", "cardNumber"):
        assert code("5.66135941E+8", id_type) == "spreadsheet_number"


def test_invalid_rows_keep_their_trimmed_fields_for_the_report() -> None:
    verdict = validate(f" {META} ", " jane ", f" {EARNED} ", " email ", "id")
    assert (verdict.badge_meta_id, verdict.customer_id, verdict.earned_badge_id, verdict.identifier_type) == (
        META,
        "jane",
        EARNED,
        "email",
    )
    unknown = validate(META, "1", EARNED, " Phone ", "id")
    assert (unknown.identifier_type, unknown.error_code) == ("Phone", "bad_identifier_type")


def test_ids_may_be_quoted_in_messages_and_are_cut_short() -> None:
    message = validate("x" * 500, "1", EARNED, None, "id").error_message or ""
    assert message.startswith("badgeMetaId 'xxxx") and len(message) < 120


def test_verdicts_are_immutable() -> None:
    verdict = validate(META, "1", EARNED, None, "id")
    with pytest.raises(AttributeError):
        verdict.error_code = "x"  # type: ignore[misc]
    assert not dataclasses.is_dataclass(verdict)


# A marker no message holds, so "the value is not in the message" can't pass by chance
# (nor fail by chance: "1" is in "813").
_CUSTOMERS = st.text(min_size=1, max_size=30).map(lambda s: "Zq§" + s)


@settings(max_examples=300, deadline=None)
@given(
    customer=_CUSTOMERS,
    id_type=st.sampled_from(["id", "mobile", "email", "externalId", "cardNumber", "bogus"]),
    meta=st.sampled_from([META, "", "nothex"]),
    earned=st.sampled_from([EARNED, "", "x"]),
)
def test_messages_never_quote_the_customer_id(customer: str, id_type: str, meta: str, earned: str) -> None:
    verdict = validate(meta, customer, earned, id_type, "id")
    assert "Zq§" not in (verdict.error_message or "")
    assert (verdict.error_code is None) == (verdict.error_message is None)


# --- a batch at a time: the same verdicts as validate(), row for row ------------------------
_FIELD = st.one_of(
    st.none(),
    st.sampled_from(
        [
            META,
            EARNED,
            META.upper(),
            " " + META,
            META[:23],
            META + "0",
            "",
            "566135941",
            "0566135941",
            "9223372036854775807",
            "99999999999999999999",
            "+919876543210",
            "98765",
            "1.5e3",
            "jane@example.com",
            " 42 ",
            "4\u200b2",
            "\u0662\u0663",
            "id",
            "ID",
            "mobile",
            "email",
            "externalId",
            "phone",
            " ",
        ]
    ),
    st.text(max_size=30),
)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.tuples(_FIELD, _FIELD, _FIELD, _FIELD), min_size=1, max_size=40),
    with_type=st.booleans(),
    default=st.sampled_from(["id", "mobile", "email"]),
)
def test_validate_columns_gives_validate_s_verdicts(rows, with_type, default):
    from bulkrevoke._arrays import strings
    from bulkrevoke.ingest.validate import validate_columns

    fields = list(zip(*rows, strict=True))
    columns = (
        strings(fields[0]),
        strings(fields[1]),
        strings(fields[2]),
        strings(fields[3]) if with_type else None,
    )
    batch = validate_columns(columns, 7, default)
    assert batch.column("row").to_pylist() == list(range(7, 7 + len(rows)))
    got = list(zip(*(batch.column(i).to_pylist() for i in range(1, 7)), strict=True))
    assert got == [tuple(validate(m, c, e, t if with_type else None, default)) for m, c, e, t in rows]


def test_validate_columns_takes_the_common_rows_without_calling_validate(monkeypatch):
    from bulkrevoke._arrays import strings
    from bulkrevoke.ingest import validate as module

    called = []
    real = module.validate
    monkeypatch.setattr(module, "validate", lambda *a: called.append(a) or real(*a))
    columns = (
        strings([META] * 3),
        strings(["566135941", "+919876543210", "x"]),
        strings([EARNED] * 3),
        strings(["", "mobile", "id"]),
    )
    batch = module.validate_columns(columns, 1, "id")
    assert batch.column("error_code").to_pylist() == [None, None, "bad_customer_id"]
    assert batch.column("identifier_type").to_pylist() == ["id", "mobile", "id"]
    assert [a[1] for a in called] == ["x"]  # only the row that is not a common shape
