"""runtime.json_read.loads gives exactly what json.loads gives: the same value, or the same error."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from skillbank.runtime import json_read
from skillbank.runtime.json_read import loads

DOCUMENTS = [
    '{"a": 1}', "[]", "{}", "0", "-0", "-0.0", "1e400", "-1e400", "1.5E-3", "12345678901234567890123456789",
    "3.141592653589793", "true", "false", "null", '"text"', '""', "NaN", "Infinity", "-Infinity",
    '[NaN, {"x": -Infinity}]', '  {"a": [1, 2, {"b": null}]}\n\t\r ', '{"a": 1, "a": 2}',
    '"caf\\u00e9 \\ud83d\\ude00 \\n\\t\\"\\\\\\/"', '"\\ud800"', '"snowman \u2603"', '{"k\u00e9y": "v\u00e4lue"}',
    '{"nested": {"deeper": {"deepest": [[[[1]]]]}}}', '[1, 2.5, "3", true, null, [], {}]',
    "[" * 50 + "]" * 50, '{"dataset.label_map": {"catch": 0, "smile": 1}}',
    # errors: json.loads's own messages and positions
    "", "   ", "{", "[1,]", '{"a": 1,}', '{"a" 1}', '{"a": }', "[1] x", "1 2", "nan", "inf", "'single'",
    '"unterminated', '"bad \\x escape"', '"tab\there"', "\ufeff{}", "{} \u00a0", "\u00a0{}", "[1,\n  ]",
    '{"a": [1, 2}', "01", "1.", ".5", "+1", "-", "tru", "[" * 10, "1" * 5000,
]


def _outcome(call, document, **kwargs):
    try:
        return "ok", repr(call(document, **kwargs))  # repr: NaN is not equal to itself
    except Exception as exc:  # noqa: BLE001 - the error itself is the result compared
        return type(exc), str(exc), getattr(exc, "pos", None), getattr(exc, "lineno", None)


@pytest.mark.parametrize("document", DOCUMENTS)
def test_the_same_value_or_error_as_json_loads(document):
    assert _outcome(loads, document) == _outcome(json.loads, document)
    data = document.encode("utf-8", "surrogatepass")
    assert _outcome(loads, data) == _outcome(json.loads, data)
    assert _outcome(loads, bytearray(data)) == _outcome(json.loads, bytearray(data))


def test_values_have_json_loads_types():
    value = loads('{"i": 12345678901234567890, "f": 1.0, "b": true, "n": null, "l": [0]}')
    assert value == json.loads('{"i": 12345678901234567890, "f": 1.0, "b": true, "n": null, "l": [0]}')
    assert [type(value[k]) for k in "ifbnl"] == [int, float, bool, type(None), list]


@pytest.mark.parametrize("data", [
    b"", b"{}", b'\xef\xbb\xbf{"bom": 1}', "{\"a\": \"\u00e9\"}".encode("utf-16"), "[1]".encode("utf-16-le"),
    "[1]".encode("utf-16-be"), "[1]".encode("utf-32"), "[1]".encode("utf-32-le"), b"1\x00", b"\x00", b'"\xff"',
    b'"\xed\xa0\x80"', b"[1]", "\"\u00e9\"".encode("latin-1"),
])
def test_bytes_in_every_encoding_json_reads(data):
    assert _outcome(loads, data) == _outcome(json.loads, data)


def test_other_types_are_json_loads_type_error():
    assert _outcome(loads, 12) == _outcome(json.loads, 12)
    assert _outcome(loads, None) == _outcome(json.loads, None)


def _unique(pairs):
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise KeyError(f"twice: {keys}")
    return dict(pairs)


@pytest.mark.parametrize("document", ['{"a": 1, "b": {"c": 2}}', '{"a": 1, "a": 2}', '{"a": {"b": 1, "b": 1}}',
                                      '[{"x": 1}, {"y": 2}]', '{"a": }', "[]"])
def test_object_pairs_hook(document):
    assert _outcome(loads, document, object_pairs_hook=_unique) == _outcome(
        json.loads, document, object_pairs_hook=_unique)
    assert _outcome(loads, document, object_pairs_hook=list) == _outcome(json.loads, document, object_pairs_hook=list)


def test_deep_nesting_is_the_same_recursion_error():
    document = "[" * 100_000 + "]" * 100_000
    assert _outcome(loads, document)[0] is RecursionError is _outcome(json.loads, document)[0]


def test_without_the_c_scanner_json_loads_answers(monkeypatch):
    monkeypatch.setattr(json_read, "_SCAN", None)
    for document in DOCUMENTS:
        assert _outcome(loads, document) == _outcome(json.loads, document)


def test_a_valid_document_does_not_import_json():
    code = ("import sys\nfrom skillbank.runtime.json_read import loads\n"
            "assert loads(' {\"a\": [1, 2.5, NaN, \"\\\\u00e9\"]} ')['a'][3] == '\\u00e9'\n"
            "assert loads(b'{\"b\": true}', object_pairs_hook=dict) == {'b': True}\n"
            "print(sorted({'json', 're'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines()[-1] == "[]"
