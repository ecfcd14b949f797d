"""Coverage-guided fuzzing of kyso's parsers of hostile input with atheris (libFuzzer), outside `make test`.

    .venv/bin/pip install atheris
    .venv/bin/python tests/hostile/fuzz_atheris.py TARGET [libFuzzer options, e.g. -runs=200000 -max_len=65536]

Targets: pdf (the upload structure check, then pyHanko opening what passes), tsa (the TimeStampReq parser),
ocsp (the OCSPRequest parsing kyso relies on), csr (PKCS#10 loading), policy (the document-type policy).
Each accepts only the domain's own refusal; any other exception is a crash libFuzzer saves as a
reproducer (``crash-<sha1>``). tests/hostile/test_atheris.py runs each target briefly in `make test`
when atheris is installed.
"""
from __future__ import annotations

import sys

import atheris

# coverage feedback from kyso's own code and the pure-Python parsers it feeds hostile bytes to; instrumenting
# everything (pyHanko, SQLAlchemy, FastAPI...) costs half a minute of start-up per run
with atheris.instrument_imports(include=["api.uploads", "pki.encoding", "policies", "signing.create.timestamping", "yaml",
                                         "asn1crypto.tsp", "asn1crypto.core"]):
    from cryptography.x509 import ocsp

    from api.uploads import check_structure
    from core.errors import KysoError
    from pki.encoding import load_csr
    from policies import documents
    from signing.create import timestamping
    from signing.verify.pdf_facts import open_pdf


def pdf(data: bytes) -> None:
    try:
        check_structure(data)
        if len(data) < 200_000:
            open_pdf(b"%PDF-1.7\n" + data if b"%PDF-" not in data[:1024] else data)
    except KysoError:
        pass


def tsa(data: bytes) -> None:
    try:
        timestamping._parse(data)
    except timestamping._Rejection:
        pass


def ocsp_request(data: bytes) -> None:
    # pki.ocsp.answer turns any failure here into malformedRequest; what must hold is that the parser
    # fails with ValueError only (anything else would still be answered, but is worth knowing)
    try:
        request = ocsp.load_der_ocsp_request(data)
        request.serial_number, request.hash_algorithm, request.issuer_key_hash  # noqa: B018
        list(request.extensions)
    except ValueError:
        pass
    except Exception as exc:
        if type(exc).__name__ != "UnsupportedAlgorithm":
            raise


def csr(data: bytes) -> None:
    try:
        load_csr(data)
    except KysoError:
        pass


def policy(data: bytes) -> None:
    try:
        documents.parse(data)
    except documents.PolicyInvalid:
        pass


TARGETS = {"pdf": pdf, "tsa": tsa, "ocsp": ocsp_request, "csr": csr, "policy": policy}

if __name__ == "__main__":
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()
