"""The bank's contract schemas (schemas/*.schema.json) hold for what the runtime really writes."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from skillbank.runtime.sdk import jobs

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"


@pytest.mark.parametrize("path", sorted(SCHEMAS.glob("*.schema.json")), ids=lambda p: p.name)
def test_contract_schemas_are_valid(path):
    jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))


def test_job_records_match_the_job_record_schema(fake_skill, tmp_path):
    schema = json.loads((SCHEMAS / "job_record.schema.json").read_text())
    train = jobs.create_job(str(fake_skill), "train", {"dataset.train_dir": str(tmp_path), "train.num_epochs": 1})
    assert jobs.wait(train, timeout=60) == "Complete"
    failed = jobs.create_job(str(fake_skill), "train", {"dataset.train_dir": str(tmp_path), "train.fail_code": 3})
    assert jobs.wait(failed, timeout=60) == "Error"
    for job_id in (train, failed):
        jsonschema.validate(jobs.get_job(job_id), schema)
        jsonschema.validate(jobs.describe_job(job_id), schema)  # what `jobs show --format json` prints
    assert jobs.get_job(train)["checkpoints"]
    assert jobs.get_job(failed)["failure"]["category"] == "nonzero_exit"
