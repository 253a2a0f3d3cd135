"""The typed job input (workflows.request.JobInput) names exactly the keys the request contract accepts."""

from __future__ import annotations

from workflows import request
from workflows.parameters import PATCHABLE
from workflows.request import GenerateRequest, JobInput, parse_request


def test_job_input_names_every_accepted_key():
    accepted = request._TEST_KEYS | request._DIAGNOSE_KEYS | request._GENERATE_KEYS
    assert set(JobInput.__optional_keys__) == accepted
    assert set(PATCHABLE) <= set(JobInput.__optional_keys__)


def test_a_job_input_built_from_the_type_parses():
    job: JobInput = {"workflow": "smoke_image", "seed": 7, "images": [{"name": "a.png", "image": "eA=="}]}
    parsed = parse_request(job)
    assert isinstance(parsed, GenerateRequest)
    assert parsed.params == {"seed": 7}
    assert [i.name for i in parsed.images] == ["a.png"]
