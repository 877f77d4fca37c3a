import json

from photochanger.contracts import SPEC_DIR, rendered_contracts


def test_openapi_document_in_spec_matches_the_code():
    expected = rendered_contracts()["openapi.json"]
    assert (SPEC_DIR / "openapi.json").read_text() == expected, "run: python manage.py write_spec"


def test_error_catalogue_in_spec_matches_the_code():
    assert (SPEC_DIR / "errors.json").read_text() == rendered_contracts()["errors.json"], (
        "run: manage.py write_spec"
    )


def test_openapi_documents_every_booth_facing_path_and_error_code():
    document = json.loads((SPEC_DIR / "openapi.json").read_text())
    assert {"/ingest/{slot_id}", "/api/ingest/{slot_id}", "/public/results/{job_id}"} <= set(
        document["paths"]
    )
    ingest = document["paths"]["/ingest/{slot_id}"]["post"]
    assert {"200", "400", "401", "404", "413", "415", "429", "502", "503", "504"} <= set(ingest["responses"])
    fields = ingest["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[-1]
    properties = document["components"]["schemas"][fields]["properties"]
    assert {"fileToUpload", "file", "password", "hash"} <= set(properties)
