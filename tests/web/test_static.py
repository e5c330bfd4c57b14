"""The web client's blueprint: index.html with the hub's address, files, the page fallback."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from quart_trio import QuartTrio

from server.http.static import NOT_BUILT, create_web


def make_app(dist: Path, **config: object) -> QuartTrio:
    app = QuartTrio(__name__)
    app.config.update(config)
    app.register_blueprint(create_web(dist))
    return app


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text(
        "<!doctype html><html><head><title>t</title></head><body>page</body></html>"
    )
    (tmp_path / "assets" / "app-1234.js").write_text("console.log('app')")
    (tmp_path.parent / "secret.txt").write_text("not for the web")
    return tmp_path


def hub_config(page: str) -> dict[str, object]:
    match = re.search(r'<meta name="hub" content="([^"]*)">', page)
    assert match, page
    return dict(json.loads(match.group(1).replace("&quot;", '"')))


async def test_index_names_the_hub_port(dist: Path) -> None:
    client = make_app(dist, HUB_PORT=4555).test_client()
    response = await client.get("/")
    page = await response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-cache"
    assert hub_config(page) == {"port": 4555, "url": None, "sameOrigin": False}
    assert page.index('<meta name="hub"') < page.index("</head>")


async def test_on_one_port_the_page_uses_its_own_origin(dist: Path) -> None:
    client = make_app(dist).test_client()  # no HUB_PORT: the hub serves the app's port
    page = await (await client.get("/")).get_data(as_text=True)
    assert hub_config(page) == {"port": None, "url": None, "sameOrigin": True}


async def test_hub_url_overrides_for_a_proxy(dist: Path) -> None:
    client = make_app(dist, HUB_PORT=4555, HUB_URL="https://board.example").test_client()
    page = await (await client.get("/")).get_data(as_text=True)
    assert hub_config(page) == {"port": 4555, "url": "https://board.example", "sameOrigin": False}


async def test_behind_a_proxy_the_page_uses_its_own_origin(dist: Path) -> None:
    client = make_app(dist, HUB_PORT=4555).test_client()
    for header in ({"X-Forwarded-For": "10.0.0.1"}, {"Forwarded": "for=10.0.0.1"}):
        page = await (await client.get("/", headers=header)).get_data(as_text=True)
        assert hub_config(page) == {"port": 4555, "url": None, "sameOrigin": True}


async def test_files_of_the_build_are_served_and_assets_cached(dist: Path) -> None:
    client = make_app(dist).test_client()
    response = await client.get("/assets/app-1234.js")
    assert response.status_code == 200
    assert await response.get_data(as_text=True) == "console.log('app')"
    assert response.cache_control.max_age == 365 * 24 * 3600


async def test_other_paths_get_the_page_but_api_paths_are_not_matched(dist: Path) -> None:
    client = make_app(dist).test_client()
    page = await client.get("/projects/3/tasks/9")
    assert page.status_code == 200
    assert "page" in await page.get_data(as_text=True)
    for method in ("GET", "POST", "PUT"):
        api = await client.open("/api/nothing-here", method=method)
        assert api.status_code == 404, method
    assert (await client.get("/api")).status_code == 404


async def test_paths_leaving_the_build_are_not_files(dist: Path) -> None:
    client = make_app(dist).test_client()
    for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/assets/..%2f..%2fsecret.txt"):
        response = await client.get(path)
        assert "not for the web" not in await response.get_data(as_text=True), path


async def test_without_a_build_every_page_says_how_to_build(tmp_path: Path) -> None:
    client = make_app(tmp_path / "missing").test_client()
    for path in ("/", "/projects/1"):
        response = await client.get(path)
        assert response.status_code == 404
        assert await response.get_data(as_text=True) == NOT_BUILT
