import pytest
from fleet.settings import Settings
from fleet.web import create_app, token_digest

#: The unit tests' API client and its token (the digest is what fleet.toml holds).
TOKEN = "unit-tests-token"
TOKENS = {"unit-tests": token_digest(TOKEN)}


def _client(result_backend):
    # kombu's in-memory transport: unit tests only. Integration tests use the lab's RabbitMQ.
    app = create_app(Settings(broker_urls=("memory://",), result_backend=result_backend, api_tokens=TOKENS))
    app.config["TESTING"] = True
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    return client


@pytest.fixture
def client():
    return _client("cache+memory://")


@pytest.fixture
def client_backend_down():
    # Nothing listens on port 1 of loopback: the result backend is "down".
    return _client("redis://:pw@127.0.0.1:1/0")
