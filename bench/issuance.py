"""Figure 1: certificates issued per second in process (pki.issuance.issue) vs raw cryptography."""
from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pki.issuance import IssueRequest, issue
from pki.names import SubjectInfo

from . import raw
from .common import Figure, Profiler, Results, interleaved_rates, new_instance, say, workdir

PROFILE, COMMUNE = "specialist", "00004"


def subject(i: int) -> SubjectInfo:
    return SubjectInfo(common_name=f"Nguyễn Thị Hoa {i}", title="Công chức Tư pháp - Hộ tịch",
                       id_number=f"{1190000000 + i:012d}")


def csr_der(i: int) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return (x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Trần Văn Bình {i}")]))
            .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))


def run(results: Results, backends: list[str], *, n_kyso: int, n_raw: int, repeats: int, profiler: Profiler) -> None:
    for backend in backends:
        say(f"[1] issuance on {backend}: {repeats} interleaved rounds of {n_kyso} kyso / {n_raw} raw certificates")
        with workdir("kyso-bench-issue-") as folder:
            inst = new_instance(folder, backend)
            try:
                _measure(results, inst, backend, n_kyso=n_kyso, n_raw=n_raw, repeats=repeats, profiler=profiler)
            finally:
                inst.close()


def _measure(results: Results, inst, backend: str, *, n_kyso: int, n_raw: int, repeats: int,  # type: ignore[no-untyped-def]
             profiler: Profiler) -> None:
    ctx = inst.container.pki
    total = n_kyso * repeats + 10
    keygen_requests = [IssueRequest(profile=PROFILE, subject=subject(i), commune_code=COMMUNE) for i in range(total)]
    csr_requests = [IssueRequest(profile=PROFILE, subject=subject(i), commune_code=COMMUNE, csr=csr_der(i))
                    for i in range(total)]
    counters = {"keygen": 0, "csr": 0}

    def kyso(kind: str, pool: list[IssueRequest]):  # type: ignore[no-untyped-def]
        def one(_: int) -> None:
            issue(ctx, pool[counters[kind]], "bench")
            counters[kind] += 1
        return one

    keygen, from_csr = kyso("keygen", keygen_requests), kyso("csr", csr_requests)
    for i in range(5):  # warm-up: caches of the CA key adapter, parsed CA certificate, compiled queries
        keygen(i)
        from_csr(i)
    template = x509.load_der_x509_certificate(issue(ctx, csr_requests[-1], "bench").certificate.der)
    raw_build = raw.certificate_issuer(template, generate_key=False)
    raw_keygen = raw.certificate_issuer(template, generate_key=True)
    with profiler.section(f"issuance-{backend}"):
        rates = interleaved_rates({
            "raw": (raw_build, n_raw), "raw+keygen": (raw_keygen, n_raw),
            "keygen": (keygen, n_kyso), "csr": (from_csr, n_kyso),
        }, repeats)
    section = f"1. issuance ({backend})"
    results.add(Figure(section, "issue() with server-side P-256 key (soft keystore)", rates["keygen"], "certs/s",
                       "raw P-256 keygen + CertificateBuilder.sign + DER", rates["raw+keygen"],
                       note="kyso: keystore key generation (encrypted PKCS#8 file + fsync), certificate, "
                            "pre-produced OCSP response, credential, 2 audit entries, one transaction"))
    results.add(Figure(section, "issue() from a CSR", rates["csr"], "certs/s",
                       "raw CertificateBuilder.sign + DER", rates["raw"],
                       note="kyso: CSR parse + self-signature check, certificate, pre-produced OCSP response, "
                            "audit entry, one transaction"))
    results.add(Figure(section, "issue() with server-side key, vs raw build+sign only", rates["keygen"], "certs/s",
                       "raw CertificateBuilder.sign + DER", rates["raw"]))
