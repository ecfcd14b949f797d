"""Signature and seal images (PUT /api/v1/credentials/{id}/images/{kind}): a PNG whose header announces
billions of pixels is refused with a 4xx before any decoder opens it (Pillow's DecompressionBombError
was a 500); random bytes and mutated PNGs are refused clearly."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from tests.helpers.hostile import Kyso, assert_refused_clearly

from .strategies import png, pngs


def _put(kyso: Kyso, body: bytes):  # type: ignore[no-untyped-def]
    return kyso.client.put(f"/api/v1/credentials/{kyso.specialist}/images/signature", content=body,
                           headers={**kyso.headers["ca-operator"], "Content-Type": "image/png"})


@pytest.mark.parametrize("size", [(100_000, 100_000), (2**31 - 1, 2**31 - 1), (12_000, 12_000)])
def test_a_png_announcing_too_many_pixels_is_refused(kyso: Kyso, size: tuple[int, int]) -> None:
    error = assert_refused_clearly(_put(kyso, png(*size)), 422)
    assert "pixels" in error["message"] or "megapixels" in error["message"], error


@settings(max_examples=30, deadline=None, derandomize=True, database=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
@given(body=pngs())
def test_any_image_upload_is_enrolled_or_refused(kyso: Kyso, body: bytes) -> None:
    response = _put(kyso, body)
    assert response.status_code == 204 or assert_refused_clearly(response)
