"""Issue 15's attack suite: forgeries crafted from kyso-signed documents (``forge.py``), carried through
the verifier for every combination (``test_matrix.py``) and through ``POST /api/v1/verify``, ``kyso
verify`` and the citizen upload for a representative subset (``test_doors.py``); signatures an attacker
makes alone (``test_signers.py``); honest workflows that must stay genuine (``test_honest.py``); and
rendered proof that each visual forgery shows the difference the report names (``test_rendering.py``).
SQLite only (``conftest.py``), except ``test_smoke.py``, which runs on both databases."""
