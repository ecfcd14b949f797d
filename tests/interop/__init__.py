"""Interoperability tests: kyso's certificates, CRLs and OCSP answers checked by external tools
(the ``openssl`` command-line tool and pkilint), run as real subprocesses."""
