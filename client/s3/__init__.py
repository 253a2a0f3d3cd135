"""A RunPod network volume over its S3-compatible API, for `volume check | ls | push` (no worker, no GPU).

adapter.py    the boto3 client, one S3 call with its errors named (VolumeError), the paged listing
transfer.py   the resumable multipart upload engine: PushItem in, parts in parallel, sha256 beside them
"""
