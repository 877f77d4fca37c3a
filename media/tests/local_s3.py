"""A local S3 server (moto in server mode) with an empty bucket, for the tests and the S3 bench.

Imports no pytest (the bench's processes must not take the settings' test mode), so both ``conftest``
and ``bench/s3_latency.py`` start their server here. Reached over HTTP with the real boto3 client.
"""

from __future__ import annotations

import socket
from typing import Any


def local_s3_start(bucket: str, access_key: str, secret_key: str) -> tuple[Any, dict[str, str]]:
    """Start the server on a free port and create ``bucket``; (server, the ``S3_*`` variables)."""
    import boto3
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    values = {
        "MEDIA_STORAGE": "s3",
        "S3_BUCKET": bucket,
        "S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "S3_REGION": "us-east-1",
        "S3_ACCESS_KEY_ID": access_key,
        "S3_SECRET_ACCESS_KEY": secret_key,
    }
    boto3.client(
        "s3",
        endpoint_url=values["S3_ENDPOINT_URL"],
        region_name=values["S3_REGION"],
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
    ).create_bucket(Bucket=bucket)
    return server, values
