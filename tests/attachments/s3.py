"""A local S3-compatible server for the S3 store's tests (moto's, on 127.0.0.1, one per module)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from cli.devserver import free_port
from config.settings import Settings

BUCKET = "rongtuk-attachments"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name="ap-southeast-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    # moto keeps its buckets per process, across servers: an earlier module may have made it already.
    if BUCKET not in [b["Name"] for b in client.list_buckets().get("Buckets", [])]:
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "ap-southeast-1"})
    yield endpoint
    server.stop()


def s3_settings(endpoint: str) -> Settings:
    return Settings(
        env="test",
        attachment_storage="s3",
        s3_bucket=BUCKET,
        s3_endpoint_url=endpoint,
        s3_access_key_id="test",
        s3_secret_access_key="test",
        s3_timeout_seconds=5,
    )


S3_FIELDS = {
    "attachment_storage",
    "s3_bucket",
    "s3_endpoint_url",
    "s3_access_key_id",
    "s3_secret_access_key",
    "s3_timeout_seconds",
}


def bucket_objects(endpoint: str) -> list[dict[str, object]]:
    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name="ap-southeast-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    return list(client.list_objects_v2(Bucket=BUCKET).get("Contents", []))
