"""Policy files from a careless or hostile author: the document-type policy, certificate profiles and the
administrative-unit catalogue are loaded or refused with the domain's error, naming the line and the
reason; never another exception (a RecursionError, a UnicodeDecodeError, a TypeError)."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, Phase, event, given, settings, strategies as st

from policies import documents, units
from policies.documents import DOCUMENTS_FILE
from policies.errors import CatalogueInvalid, PolicyInvalid, ProfileInvalid
from policies.profiles import PROFILES_DIR, load_profile_file
from tests.helpers.hostile import Kyso, assert_refused_clearly

from .strategies import mutated

EXAMPLES = int(os.environ.get("KYSO_HOSTILE_EXAMPLES", "50"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
VALID = DOCUMENTS_FILE.read_bytes()
VALID_DATA = yaml.safe_load(VALID)
PROFILE = (PROFILES_DIR / "specialist.yaml").read_bytes()

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30),
                    st.sampled_from(["B-LT", "B-LTA", "person", "seal", "specialist", "x" * 200]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.one_of(st.text(max_size=12), st.integers()), inner, max_size=4),
                      max_leaves=20)


def _paths(node: object, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


PATHS = _paths(VALID_DATA)


@st.composite
def edited_policies(draw: st.DrawFn) -> bytes:
    """The real policy with one node replaced by a generated value (or removed), dumped as YAML."""
    data = json.loads(json.dumps(VALID_DATA))
    path = draw(st.sampled_from(PATHS[1:]))
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    if draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(values)
    return yaml.safe_dump(data, allow_unicode=True).encode()


POLICIES = st.one_of(
    edited_policies(),
    mutated(VALID, max_edits=3),
    values.map(lambda v: yaml.safe_dump(v).encode()),
    st.builds(lambda depth, opener: b"version: x\ndocument_types: " + opener * depth, st.integers(50, 20_000),
              st.sampled_from([b"[", b"{a: ", b"- "])),
    st.binary(max_size=300),
)


def _refused_with_line_or_reason(message: str) -> None:
    assert message.startswith("policy"), message
    assert re.search(r"line \d+", message) or "not UTF-8" in message, message


@FUZZ
@given(raw=POLICIES)
def test_document_policy_loads_or_is_refused_with_line_and_reason(raw: bytes) -> None:
    try:
        policy = documents.parse(raw)
    except PolicyInvalid as exc:
        _refused_with_line_or_reason(exc.message)
        event("refused")
    else:
        assert policy.version and isinstance(policy.types, dict)
        event("loaded")


@pytest.mark.parametrize("raw", [
    b"version: x\ndocument_types: " + b"[" * 100_000,
    b"version: x\ndocument_types: " + b"{a: " * 100_000 + b"1" + b"}" * 100_000,
    b"version: x\ndocument_types:\n" + b"".join(b" " * i + b"k%d:\n" % i for i in range(1, 2000)),
    b"a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b]\n"
    b"version: x\ndocument_types: {t: {title_vi: a, title_en: b, signers: *c}}",  # aliases, not expanded
    b"version: &v [*v]\ndocument_types: {}",  # a recursive alias
    b"version: !!python/object/apply:os.system [id]\ndocument_types: {}",
    b"\xff\xfe not utf-8",
    b"version: x\ndocument_types:\n  a\x10b: {}\n",  # a control character: PyYAML's ReaderError has no line
], ids=["deep-flow-list", "deep-flow-map", "deep-block-map", "alias-bomb", "recursive-alias", "python-tag",
        "not-utf8", "control-character"])
def test_hostile_policy_files_are_refused_clearly(raw: bytes) -> None:
    with pytest.raises(PolicyInvalid) as refused:
        documents.parse(raw)
    _refused_with_line_or_reason(refused.value.message)


@settings(FUZZ, max_examples=max(1, EXAMPLES // 2))
@given(raw=st.one_of(mutated(PROFILE, max_edits=3), values.map(lambda v: yaml.safe_dump(v).encode()),
                     st.just(b"a:\n" + b"".join(b" " * i + b"k:\n" for i in range(1, 500)))))
def test_certificate_profile_loads_or_is_refused(tmp_path_factory: pytest.TempPathFactory, raw: bytes) -> None:
    path = tmp_path_factory.mktemp("profile") / "specialist.yaml"
    path.write_bytes(raw)
    try:
        load_profile_file(path)
    except ProfileInvalid as exc:
        assert exc.message.startswith("specialist.yaml: "), exc.message


CATALOGUE = json.dumps([{"Code": "01", "AdministrativeUnitShortName": "Thành phố", "Name": "Hà Nội",
                         "FullName": "Thành phố Hà Nội", "NameEn": "Ha Noi",
                         "Wards": [{"Code": "00004", "AdministrativeUnitShortName": "Phường", "Name": "Ba Đình",
                                    "FullName": "Phường Ba Đình", "NameEn": "Ba Dinh"}]}], ensure_ascii=False).encode()


@settings(FUZZ, max_examples=max(1, EXAMPLES // 2))
@given(raw=st.one_of(mutated(CATALOGUE, max_edits=3), values.map(lambda v: json.dumps(v).encode()),
                     st.integers(1000, 200_000).map(lambda n: b"[" * n + b"]" * n)))
def test_unit_catalogue_parses_or_is_refused(raw: bytes) -> None:
    try:
        units.parse_catalogue(raw)
    except CatalogueInvalid as exc:
        assert exc.message


def test_reload_over_http_refuses_a_hostile_file_and_keeps_the_policy(kyso: Kyso) -> None:
    path = Path(kyso.container.settings.policy_file)
    before = kyso.client.get("/api/v1/policies", headers=kyso.headers["policy-admin"]).json()["version"]
    try:
        path.write_bytes(b"version: x\ndocument_types: " + b"{a: " * 50_000)
        response = kyso.client.post("/api/v1/policies/reload", headers=kyso.headers["policy-admin"])
        error = assert_refused_clearly(response, 422)
        assert error["code"] == "policy_invalid" and "line 2" in error["message"], error
    finally:
        path.write_bytes(VALID)
    status = kyso.client.get("/api/v1/policies", headers=kyso.headers["policy-admin"]).json()
    assert status["version"] == before and "nested" in status["last_error"]
