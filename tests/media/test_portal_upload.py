"""The owner portal's photo upload: good photos stored clean under their content key,
every hostile file refused with a clear Indonesian message and nothing stored."""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

from engine.common.i18n import t
from engine.models import Product
from engine.umkm.eligibility import product_problems
from tests.media import corpus
from tests.web_helpers import (
    World,
    post_form,
    world_fixture,  # noqa: F401 - the "world" fixture
)

FORM = {"name": "Kopi Foto Mollo", "category": "makanan_olahan", "price": "35.000",
        "description": "Kopi arabika dari Mollo Utara.", "image_url": "", "in_stock": "1"}


def _upload(world: World, name: str, data: bytes, path: str = "/portal/produk/baru",
            form: dict[str, Any] | None = None) -> Any:
    client = world.client("pemilik-a")
    return post_form(client, path, form or FORM, form_page="/portal/produk/baru",
                     files={"photo": (name, data, "image/jpeg")})


def _stored_files(world: World) -> list[Path]:
    root = world.settings.media_root
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _product_named(world: World, name: str) -> Product | None:
    with world.session() as session:
        return session.scalars(select(Product).where(Product.name == name)).first()


def test_an_uploaded_photo_is_stored_clean_and_served(world: World) -> None:
    response = _upload(world, "../../x.jpg", corpus.jpeg(gps=True) + corpus.zip_bytes())
    assert response.status_code == 303, response.text[:500]
    product = _product_named(world, "Kopi Foto Mollo")
    assert product is not None and product.image_url is not None
    assert product.image_url.startswith("/media/") and product.image_url.endswith("/square.jpg")
    files = _stored_files(world)
    assert [p.name for p in files] == ["portrait.jpg", "square.jpg", "thumb.jpg"]
    # The user's name is never used: no x.jpg anywhere near the var directory.
    assert not list(Path(world.settings.var_dir).parent.rglob("x.jpg"))
    for path in files:
        data = path.read_bytes()
        image = Image.open(io.BytesIO(data))
        assert not image.getexif() and b"KameraHP" not in data and b"PK\x03\x04" not in data
    served = world.client().get(product.image_url)
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    assert product_problems(product) == []  # the stored photo passes Pasal 10 huruf c


# An empty file part is what a browser sends when no file was chosen: not a refusal. A
# too-big file is stopped by the body limit before the route (next test).
PORTAL_HOSTILE = [h for h in corpus.hostile_files(15 * 1024 * 1024)
                  if h.data and h.code != "media.too_big"]


@pytest.mark.parametrize("hostile", PORTAL_HOSTILE, ids=lambda h: h.name)
def test_a_hostile_upload_is_refused_and_nothing_is_stored(world: World,
                                                           hostile: corpus.Hostile) -> None:
    response = _upload(world, hostile.name, hostile.data)
    assert response.status_code == 400
    params = {"mp": 40} if hostile.code == "media.too_many_pixels" else {}
    assert html.escape(t(hostile.code, "id", **params)) in response.text
    assert _product_named(world, "Kopi Foto Mollo") is None
    assert _stored_files(world) == []


def test_a_30_mb_upload_is_refused_while_streaming_and_nothing_is_stored(world: World) -> None:
    response = _upload(world, "besar.jpg", corpus.jpeg() + b"\x00" * (30 * 1024 * 1024))
    assert response.status_code == 413
    assert "terlalu besar" in response.text
    assert _product_named(world, "Kopi Foto Mollo") is None
    assert _stored_files(world) == []


def test_a_refused_photo_on_edit_keeps_the_old_one(world: World) -> None:
    product_id = world.ids["product_a"]
    with world.session() as session:
        product = session.get(Product, product_id)
        assert product is not None
        before = product.image_url
        form = {**FORM, "name": product.name, "image_url": before or ""}
    response = _upload(world, "x.svg", corpus.SVG_WITH_SCRIPT, f"/portal/produk/{product_id}",
                       form)
    assert response.status_code == 400 and "<script>alert" not in response.text
    with world.session() as session:
        product = session.get(Product, product_id)
        assert product is not None and product.image_url == before
    assert _stored_files(world) == []
