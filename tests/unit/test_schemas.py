from __future__ import annotations

import pytest

from scoring_bench.core.errors import InvalidBody, InvalidJSON, PayloadTooLarge
from scoring_bench.core.schemas import RequestParser, ScoreRequest, parse_model_id

parser = RequestParser(max_features=10, max_body_bytes=200)


def test_bare_array_and_entity_object() -> None:
    assert parser.scoring(b"[5.1, 3.5, 1, 0]") == ScoreRequest(None, (5.1, 3.5, 1.0, 0.0))
    assert parser.scoring(b'{"entity_id": "u-1", "features": [2]}') == ScoreRequest("u-1", (2.0,))
    assert parser.features(b"[1, 2.5]") == (1.0, 2.5)


@pytest.mark.parametrize(
    "body, error",
    [
        (b"[1,", InvalidJSON),
        (b"[NaN]", InvalidJSON),
        (b"[Infinity]", InvalidJSON),
        (b"", InvalidBody),
        (b"   ", InvalidBody),
        (b"[]", InvalidBody),
        (b'["1"]', InvalidBody),
        (b"[true]", InvalidBody),
        (b"[1e999]", InvalidBody),
        (b"[-1e999]", InvalidBody),
        (b"null", InvalidBody),
        (b"[null]", InvalidBody),
        (b"3", InvalidBody),
        (b"[" + b"1," * 10 + b"1]", InvalidBody),
        (b'{"entity_id": "", "features": [1]}', InvalidBody),
        (b'{"entity_id": "a b", "features": [1]}', InvalidBody),
        (b'{"entity_id": "a", "features": []}', InvalidBody),
        (b'{"entity_id": "a"}', InvalidBody),
        (b'{"entity_id": "a", "features": [1], "more": 1}', InvalidBody),
        (b"[" + b"1," * 150 + b"1]", PayloadTooLarge),
    ],
)
def test_bad_scoring_bodies(body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error) as exc:
        parser.scoring(body)
    assert exc.value.message  # type: ignore[attr-defined]


def test_errors_say_where_and_what() -> None:
    with pytest.raises(InvalidBody) as exc:
        parser.scoring(b'[1, 2, "x"]')
    assert exc.value.message.startswith("2:")
    assert exc.value.status == 422 and exc.value.body()["error"] == "invalid_body"


def test_model_api_accepts_only_arrays() -> None:
    with pytest.raises(InvalidBody):
        parser.features(b'{"entity_id": "a", "features": [1]}')


def test_model_id() -> None:
    assert parse_model_id(None) == 0 and parse_model_id("12") == 12
    for bad in ("-1", "x", "1.5", "99999"):
        with pytest.raises(InvalidBody):
            parse_model_id(bad)


@pytest.mark.parametrize("digits", ["²", "١٢", "𝟙", "½"])
def test_a_model_id_of_other_digits_is_422_not_a_500(digits: str) -> None:
    """str.isdigit() is true of "²", which int() cannot read: it was a 500 (found by probing the
    parameters the fuzzer covers)."""
    with pytest.raises(InvalidBody):
        parse_model_id(digits)


def test_a_number_no_double_holds_is_422_and_the_schema_says_so() -> None:
    roomy = RequestParser(max_features=10, max_body_bytes=10_000)
    with pytest.raises(InvalidBody):
        roomy.features(b"[" + b"9" * 400 + b"]")
    items = roomy.features_adapter.json_schema()["items"]
    assert items["maximum"] == 1.7976931348623157e308 == -items["minimum"]
    assert isinstance(items["maximum"], int)  # the double's exact value, not its shortest decimal
    assert roomy.features(b"[1.7976931348623157e308]") == (1.7976931348623157e308,)


def test_the_bound_is_checked_on_the_number_as_sent() -> None:
    """make fuzz's case: an integer one beyond the largest double rounds to it, so a check on the
    float let it through while the published schema says it is out of range."""
    roomy = RequestParser(max_features=10, max_body_bytes=10_000)
    largest = int(1.7976931348623157e308)
    for beyond in (largest + 1, -largest - 1):
        with pytest.raises(InvalidBody):
            roomy.features(f"[{beyond}]".encode())
    assert roomy.features(f"[{largest}, -{largest}]".encode()) == (
        1.7976931348623157e308,
        -1.7976931348623157e308,
    )
    # below the bound (the shortest decimal of the largest double is smaller than it): accepted
    assert roomy.features(b"[-17976931348623157" + b"0" * 291 + b"1]")[0] == -1.7976931348623157e308
