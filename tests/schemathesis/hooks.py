"""Schemathesis hooks for ruvector (loaded through SCHEMATHESIS_HOOKS by run.sh).

Teaches schemathesis the one media type of the API that is not JSON:
partition snapshots, `application/x-ruvector-partition` (a node's
`GET`/`POST /collections/{name}/partitions/{partition}/snapshot`). The
documents describe the body as an array of bytes; a generated array of
byte values is sent as those raw bytes (so the node's snapshot decoder is
fuzzed with them), anything else as its JSON text (still not a snapshot:
the node must refuse it with a 4xx). A response is read back as its list
of byte values, which the document's schema (array of uint8) validates.
"""

import json

import schemathesis

PARTITION_SNAPSHOT = "application/x-ruvector-partition"


@schemathesis.serializer(PARTITION_SNAPSHOT)
def snapshot_body(ctx, value):
    if isinstance(value, list) and all(isinstance(b, int) and 0 <= b <= 255 for b in value):
        return {"data": bytes(value)}
    if isinstance(value, (bytes, bytearray)):
        return {"data": bytes(value)}
    return {"data": json.dumps(value).encode()}


@schemathesis.deserializer(PARTITION_SNAPSHOT)
def snapshot_response(ctx, response):
    return list(response.content)
