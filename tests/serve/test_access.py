"""Access (issue 13): the optional bearer key (from an environment variable or a file, never a flag), CORS
off by default, the body-size limit, and the Host check on loopback."""

from __future__ import annotations

import dataclasses
import logging

import openai
import pytest
from fastapi.testclient import TestClient

from preforch.errors import PreforchError

KEY = "k-3141592653"


def app_client(engine, api_key: str | None = "", base_url: str = "http://localhost", **settings) -> TestClient:
    from preforch.serve.app import create_app
    from preforch.serve.engine import ServeEngine

    variant = ServeEngine(dataclasses.replace(engine.config, **settings), engine.adapter, engine.scorer,
                          engine.policy, engine.policy_name) if settings else engine
    return TestClient(create_app(variant, api_key=api_key), base_url=base_url)


def test_key_from_the_environment_guards_v1_routes(engine, monkeypatch):
    monkeypatch.setenv("PREFORCH_TEST_KEY", KEY)
    with app_client(engine, api_key=None, api_key_env="PREFORCH_TEST_KEY") as client:
        refused = client.post("/v1/weights", json={"prompts": ["hi"]})
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert refused.json()["error"]["type"] == "authentication_error"
        wrong = client.post("/v1/weights", json={"prompts": ["hi"]}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = client.post("/v1/weights", json={"prompts": ["hi"]}, headers={"Authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200
        assert client.get("/v1/models").status_code == 401
        health = client.get("/health")  # liveness and the page stay public
        assert health.status_code == 200 and health.json()["auth"] is True
        assert client.get("/").status_code == 200


def test_key_from_a_file(engine, tmp_path, caplog):
    from preforch.serve.access import read_api_key

    path = tmp_path / "key"
    path.write_text(f"{KEY}\n")
    path.chmod(0o600)
    assert read_api_key(dataclasses.replace(engine.config, api_key_file=str(path))) == KEY
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        assert read_api_key(dataclasses.replace(engine.config, api_key_file=str(path))) == KEY
    assert "readable by other users" in caplog.text and KEY not in caplog.text
    path.write_text("  \n")
    with pytest.raises(PreforchError, match="empty"):
        read_api_key(dataclasses.replace(engine.config, api_key_file=str(path)))


def test_the_key_is_never_a_command_line_flag(capsys):
    from preforch.cli.main import main

    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    assert "--api-key-env" in out and "--api-key-file" in out
    assert "--api-key " not in out and "--api-key\n" not in out


def test_openai_client_sends_the_key(engine, live_server):
    from preforch.serve.app import create_app

    # the live server has no key; check the client's header against an app that wants one
    with TestClient(create_app(engine, api_key=KEY), base_url="http://localhost") as client:
        oai = openai.OpenAI(base_url="http://localhost/v1", api_key=KEY, http_client=client, max_retries=0)
        assert [m.id for m in oai.models.list()] == ["tiny"]
        bad = openai.OpenAI(base_url="http://localhost/v1", api_key="wrong", http_client=client, max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()


def test_cors_is_off_by_default(client):
    response = client.post("/v1/weights", json={"prompts": ["hi"]}, headers={"Origin": "http://evil.example"})
    assert response.status_code == 200 and "access-control-allow-origin" not in response.headers
    preflight = client.options("/v1/weights", headers={"Origin": "http://evil.example",
                                                       "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_allows_only_configured_origins(engine):
    with app_client(engine, cors_origins=["http://localhost:3000"]) as client:
        ok = client.options("/v1/chat/completions", headers={
            "Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "http://localhost:3000"
        other = client.post("/v1/weights", json={"prompts": ["hi"]}, headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_cors_wildcard_is_refused():
    from preforch.serve.config import ServeConfig

    with pytest.raises(PreforchError, match="cors_origins"):
        ServeConfig(adapter="x", cors_origins=["*"])


@pytest.mark.parametrize("host, status", [("localhost:8000", 200), ("127.0.0.1", 200), ("[::1]:8000", 200),
                                          ("evil.example", 400), ("127.0.0.1.evil.example:8000", 400), ("", 400)])
def test_host_header_checked_on_loopback(client, host, status):
    response = client.get("/health", headers={"Host": host})
    assert response.status_code == status
    if status == 400:
        assert response.json()["error"]["param"] == "host"


def test_host_header_not_checked_when_bound_to_all_interfaces(engine):
    with app_client(engine, host="0.0.0.0", base_url="http://server.example") as client:
        assert client.get("/health").status_code == 200


def test_allowed_hosts_extend_the_loopback_names(engine):
    with app_client(engine, allowed_hosts=["preforch.internal"], base_url="http://preforch.internal") as client:
        assert client.get("/health").status_code == 200


def test_body_size_limit(engine):
    with app_client(engine, max_body_bytes=200) as client:
        small = client.post("/v1/weights", json={"prompts": ["hi"]})
        assert small.status_code == 200
        big = client.post("/v1/weights", json={"prompts": ["x" * 300]})
        assert big.status_code == 413 and big.json()["error"]["code"] == "body_too_large"

        def chunks():  # no Content-Length: counted while reading
            yield b'{"prompts": ["'
            for _ in range(10):
                yield b"y" * 50
            yield b'"]}'

        streamed = client.post("/v1/weights", content=chunks(), headers={"content-type": "application/json"})
        assert streamed.status_code == 413
