"""kyso's certificate authority: hierarchy, profiles, issuance, renewal, revocation, CRL, OCSP."""
