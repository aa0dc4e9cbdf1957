"""Images (standard clauses B.2.3.1–B.2.3.6; the image of a server is in
test_compute_cli.py) through the real `openstack` CLI and openstacksdk (Glance v2).

The tests share one image, whose record B.2.3.1 makes and B.2.3.3 deletes at the end
of the module; B.2.3.2 fills it."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import threading
from pathlib import Path

import pytest

from conftest import Cli, unique, wait_for

DATA = b"yunji" * 1000
PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
# Table B.31 (all optional in the standard), as Glance names them.
IMAGE_ELEMENTS = {
    "architecture", "file", "owner", "id", "tags", "visibility", "name", "protected",
    "min_ram", "min_disk", "size", "status", "checksum", "os_hash_algo", "os_hash_value",
    "disk_format", "container_format", "created_at", "updated_at",
}  # fmt: skip


def image_status(sdk, image: str, status: str) -> dict:
    return wait_for(
        lambda: (i := sdk.image.get(f"/images/{image}").json())["status"] == status and i,
        f"image {image} {status}",
    )


def patch(sdk, image: str, *ops: dict):
    return sdk.image.patch(f"/images/{image}", data=json.dumps(list(ops)), headers=PATCH, raise_exc=False)


@pytest.fixture(scope="module")
def record(sdk):
    """B.2.3.1': an image record, without data yet (POST /v2/images; the CLI would
    upload whatever its standard input holds)."""
    body = {
        "name": unique("img"), "disk_format": "raw", "container_format": "bare",
        "visibility": "private", "min_disk": 1, "min_ram": 64, "tags": ["gis"],
        "architecture": "x86_64", "protected": False,
    }  # fmt: skip
    r = sdk.image.post("/images", json=body, raise_exc=False)
    assert r.status_code == 201, r.text
    yield r.json()
    sdk.image.delete_image(r.json()["id"], ignore_missing=True)


@pytest.fixture()
def uploaded(sdk, record) -> str:
    """The record, with DATA uploaded if B.2.3.2 has not yet done it."""
    if sdk.image.get(f"/images/{record['id']}").json()["status"] == "queued":
        sdk.image.put(f"/images/{record['id']}/file", data=DATA, headers={"Content-Type": "application/octet-stream"})
        image_status(sdk, record["id"], "active")
    return record["id"]


def test_b_2_3_1_image_record_is_queued(record):
    """B.2.3.1 (the record POST /v2/images makes): 201, queued, with what was given."""
    assert record["status"] == "queued"
    assert (record["disk_format"], record["container_format"]) == ("raw", "bare")
    assert (record["visibility"], record["min_disk"], record["min_ram"]) == ("private", 1, 64)
    assert (record["tags"], record["architecture"]) == (["gis"], "x86_64")


def test_b_2_3_2_image_upload_and_download(openstack: Cli, sdk, record, tmp_path: Path):
    """B.2.3.2: the image's data, uploaded once (PUT …/file, 204), downloaded again."""
    url = f"/images/{record['id']}/file"
    octets = {"Content-Type": "application/octet-stream"}
    r = sdk.image.put(url, data=DATA, headers=octets, raise_exc=False)
    assert r.status_code == 204, r.text
    shown = image_status(sdk, record["id"], "active")
    assert shown["size"] == len(DATA)
    assert shown["checksum"] == hashlib.md5(DATA).hexdigest()
    assert shown["os_hash_algo"] == "sha512"
    assert shown["os_hash_value"] == hashlib.sha512(DATA).hexdigest()
    again = sdk.image.put(url, data=DATA, headers=octets, raise_exc=False)
    assert again.status_code == 409, again.text
    out = tmp_path / "saved.raw"
    openstack.run("image", "save", "--file", str(out), record["id"])
    assert out.read_bytes() == DATA


@pytest.fixture()
def web_server(tmp_path: Path):
    """An HTTP server on 127.0.0.1 serving `tmp_path`; yields its base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_b_2_3_2_image_import_web_download(openstack: Cli, sdk, web_server, tmp_path: Path):
    """B.2.3.2 from a URL (源镜像路径): `image import --method web-download`."""
    data = b"gis-tiles" * 4096
    (tmp_path / "disk.raw").write_bytes(data)
    r = sdk.image.post("/images", json={"name": unique("web"), "disk_format": "raw", "container_format": "bare"})
    image = r.json()["id"]
    try:
        openstack.run("image", "import", "--method", "web-download", "--uri", f"{web_server}/disk.raw", image)
        shown = image_status(sdk, image, "active")
        assert shown["size"] == len(data)
        assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()
    finally:
        sdk.image.delete_image(image, ignore_missing=True)


def test_b_2_3_4_image_show(openstack: Cli, sdk, uploaded: str):
    """B.2.3.4: architecture, file, owner, id, tags, visibility, name, protected,
    min_ram, min_disk, size of one image (and Glance's other attributes)."""
    shown = openstack.json("image", "show", uploaded)
    assert shown["id"] == uploaded and shown["size"] == len(DATA)
    assert shown["visibility"] == "private" and shown["protected"] is False
    assert shown["tags"] == ["gis"] and (shown["min_disk"], shown["min_ram"]) == (1, 64)
    raw = sdk.image.get(f"/images/{uploaded}").json()
    assert IMAGE_ELEMENTS <= set(raw), IMAGE_ELEMENTS - set(raw)
    assert raw["architecture"] == "x86_64" and raw["owner"] == sdk.current_project_id
    assert raw["file"] == f"/v2/images/{uploaded}/file"


def test_b_2_3_5_image_update(openstack: Cli, sdk, uploaded: str):
    """B.2.3.5: JSON-patch replace, add and remove (`image set` / `image unset`
    build them), each answered with the image; sharing with a project."""
    name = unique("img-renamed")
    openstack.run("image", "set", "--name", name, "--min-disk", "2", "--property", "gis_layer=roads", uploaded)
    shown = openstack.json("image", "show", uploaded)
    assert (shown["name"], shown["min_disk"]) == (name, 2)
    assert shown["properties"]["gis_layer"] == "roads"
    openstack.run("image", "unset", "--property", "gis_layer", uploaded)
    assert "gis_layer" not in openstack.json("image", "show", uploaded)["properties"]

    r = patch(
        sdk, uploaded,
        {"op": "add", "path": "/resolution", "value": "1m"},
        {"op": "replace", "path": "/min_ram", "value": 128},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert (r.json()["resolution"], r.json()["min_ram"]) == ("1m", 128)
    r = patch(sdk, uploaded, {"op": "remove", "path": "/resolution"})
    assert r.status_code == 200 and "resolution" not in r.json(), r.text
    # Replace and remove only what is there.
    for op in ({"op": "replace", "path": "/resolution", "value": "2m"}, {"op": "remove", "path": "/resolution"}):
        r = patch(sdk, uploaded, op)
        assert r.status_code == 409, (op, r.status_code, r.text)

    project = sdk.identity.create_project(name=unique("share"), domain_id="default")
    try:
        openstack.run("image", "set", "--shared", uploaded)
        openstack.run("image", "add", "project", uploaded, project.id)
        assert openstack.json("image", "show", uploaded)["visibility"] == "shared"
        members = sdk.image.get(f"/images/{uploaded}/members").json()["members"]
        assert [m["member_id"] for m in members] == [project.id]
    finally:
        sdk.identity.delete_project(project)


def test_b_2_3_5_image_patch_add_only_for_an_absent_attribute(sdk, uploaded: str):
    """B.2.3.5 (表B.33): 添加只能是镜像当前不存在的属性 — in Glance's draft-4 dialect
    (openstack-images-v2.0-json-patch) an `add` of a present attribute is a 409; the
    v2.1 dialect is RFC 6902 as Glance has it (`add` sets), which openstacksdk needs."""
    v20 = {"Content-Type": "application/openstack-images-v2.0-json-patch"}

    def patch20(*ops):
        return sdk.image.patch(f"/images/{uploaded}", data=json.dumps(list(ops)), headers=v20, raise_exc=False)

    # Draft 4 names the operation by its key: {"add": path, "value": …}.
    assert patch20({"add": "/scale", "value": "1:500"}).status_code == 200
    try:
        r = patch20({"add": "/scale", "value": "1:1000"})
        assert r.status_code == 409, (r.status_code, r.text)
        assert sdk.image.get(f"/images/{uploaded}").json()["scale"] == "1:500"
        r = patch(sdk, uploaded, {"op": "add", "path": "/scale", "value": "1:1000"})
        assert r.status_code == 200 and r.json()["scale"] == "1:1000", r.text
    finally:
        patch(sdk, uploaded, {"op": "remove", "path": "/scale"})


def test_b_2_3_6_image_list(openstack: Cli, sdk, uploaded: str, image: str):
    """B.2.3.6: the list, with filters, sorting, and paging by limit and marker."""
    name = sdk.image.get(f"/images/{uploaded}").json()["name"]
    assert [r["ID"] for r in openstack.json("image", "list", "--name", name)] == [uploaded]
    assert uploaded in [r["ID"] for r in openstack.json("image", "list", "--tag", "gis")]
    public = [r["ID"] for r in openstack.json("image", "list", "--public")]
    assert image in public and uploaded not in public
    rows = openstack.json("image", "list", "--sort", "name:asc")
    assert [r["Name"] for r in rows] == sorted(r["Name"] for r in rows)

    everything = [i["id"] for i in sdk.image.get("/images?sort_key=name&sort_dir=asc").json()["images"]]
    first = sdk.image.get("/images?limit=1&sort_key=name&sort_dir=asc").json()
    assert [i["id"] for i in first["images"]] == everything[:1]
    assert f"marker={everything[0]}" in first["next"], first
    second = sdk.image.get(first["next"].removeprefix("/v2")).json()
    assert [i["id"] for i in second["images"]] == everything[1:2]


def test_b_2_3_3_image_delete(openstack: Cli, sdk, record):
    """B.2.3.3: not while protected (403); then the image is gone."""
    openstack.run("image", "set", "--protected", record["id"])
    assert "protected" in openstack.fails("image", "delete", record["id"])
    r = sdk.image.delete(f"/images/{record['id']}", raise_exc=False)
    assert r.status_code == 403, r.text
    openstack.run("image", "set", "--unprotected", record["id"])
    openstack.run("image", "delete", record["id"])
    assert sdk.image.get(f"/images/{record['id']}", raise_exc=False).status_code == 404
    assert record["id"] not in [r["ID"] for r in openstack.json("image", "list")]
