"""Push a WebAssembly component to an OCI registry as `oras push REF plugin.wasm:application/wasm`
does, with PyPI's oras (the ORAS Python SDK), and print the manifest's digest.

    python oci_push.py 127.0.0.1:5000/plugins/redact:1.0 redact.wasm

Registries on loopback are spoken to over plain HTTP.
"""

import os
import sys

import oras.client


def main() -> None:
    target, path = sys.argv[1], sys.argv[2]
    registry = target.split("/", 1)[0]
    client = oras.client.OrasClient(hostname=registry, insecure=True)
    # oras stores the file under its name (the layer's title annotation); push from its directory.
    os.chdir(os.path.dirname(os.path.abspath(path)))
    response = client.push(
        target=target,
        files=[f"{os.path.basename(path)}:application/wasm"],
        disable_path_validation=True,
    )
    response.raise_for_status()
    print(response.headers["Docker-Content-Digest"])


if __name__ == "__main__":
    main()
