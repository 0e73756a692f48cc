import json

import pytest

from amc.errors import AmcError
from amc.policy import Policy, load_policy, save_policy


def _policy(**over) -> Policy:
    p = Policy(
        model="resnet20",
        checkpoint={"path": "x.pt", "sha256": "ab" * 32},
        dataset="tiny",
        budget={"kind": "macs", "target": 0.5, "max_sparsity": 0.8, "round_to": 1},
        achieved={"macs_ratio": 0.49, "params_ratio": 0.5},
        sparsity={"layer1.0.conv1": 0.5},
        method="uniform",
        criterion="l1",
    )
    for k, v in over.items():
        setattr(p, k, v)
    return p


def test_round_trip(tmp_path):
    path = save_policy(_policy(), tmp_path / "p.json")
    assert load_policy(path) == _policy()


def _write(tmp_path, text):
    (tmp_path / "p.json").write_text(text)
    return tmp_path / "p.json"


GOOD = json.loads(_policy().to_json())


def _variant(change):
    d = json.loads(json.dumps(GOOD))
    change(d)
    return json.dumps(d)


@pytest.mark.parametrize(
    "text,message",
    [
        ("{not json", "not valid JSON"),
        (_policy().to_json()[:40], "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        (_variant(lambda d: d.pop("sparsity")), "missing field 'sparsity'"),
        (_variant(lambda d: d.update(schema="amc-policy/99")), "schema 'amc-policy/99'"),
        (_policy().to_json().replace('"layer1.0.conv1": 0.5', '"layer1.0.conv1": NaN'), "non-finite"),
        (_policy().to_json().replace('"layer1.0.conv1": 0.5', '"layer1.0.conv1": Infinity'), "non-finite"),
        (_variant(lambda d: d["sparsity"].update({"layer1.0.conv1": 1.0})), r"outside \[0, 1\)"),
        (_variant(lambda d: d["sparsity"].update({"layer1.0.conv1": -0.1})), r"outside \[0, 1\)"),
        (_variant(lambda d: d["sparsity"].update({"layer1.0.conv1": "half"})), "finite number"),
        (_variant(lambda d: d.update(extra=1)), "unknown field 'extra'"),
        (_variant(lambda d: d.update(budget={"target": 0.5})), "needs 'kind' and 'target'"),
    ],
)
def test_bad_policies_are_refused_with_the_reason(tmp_path, text, message):
    with pytest.raises(AmcError, match=message):
        load_policy(_write(tmp_path, text))


def test_missing_policy_file(tmp_path):
    with pytest.raises(AmcError, match="does not exist"):
        load_policy(tmp_path / "nope.json")
