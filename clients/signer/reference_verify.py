"""Checks the signatures of interop.py's vectors with the reference's own
verifier (kinto_remote_settings.signer.backends.local_ecdsa), and that the
reference's serializer gives the payload that was signed. Run with the
Python of the reference's venv (../shared/bench/ref-setup.sh):

    reference_verify.py VECTORS
"""

import json
import sys
import tempfile

from kinto_remote_settings.signer.backends.local_ecdsa import ECDSASigner
from kinto_remote_settings.signer.serializer import canonical_json

for line in open(sys.argv[1]):
    vec = json.loads(line)
    payload = canonical_json(vec["records"], vec["timestamp"])
    assert payload == vec["payload"], (payload, vec["payload"])
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as key:
        key.write(vec["public_key"])
        key.flush()
        ECDSASigner(public_key=key.name).verify(payload, vec["signature"])
    print("%s: the reference's serializer and local_ecdsa verifier agree" % vec["name"])
