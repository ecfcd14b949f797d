"""Small builders for test inputs (subjects, CSRs, keys)."""
from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from pki.names import SubjectInfo


def specialist(name: str = "Nguyễn Thị Hoa", id_number: str = "001190000001") -> SubjectInfo:
    return SubjectInfo(common_name=name, title="Công chức Tư pháp - Hộ tịch", id_number=id_number)


def csr_pem(key=None, cn: str = "Trần Văn Bình") -> tuple[bytes, object]:  # type: ignore[no-untyped-def]
    key = key or ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM), key


def weak_rsa_csr() -> bytes:
    return csr_pem(rsa.generate_private_key(65537, 1024))[0]


def secp256k1_csr() -> bytes:
    return csr_pem(ec.generate_private_key(ec.SECP256K1()))[0]
